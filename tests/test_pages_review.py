"""The Embedding and Confusion pages and the shared review component through AppTest.

AppTest cannot click a chart, so a click is injected as the chart's selection in session state (exactly
what the frontend would send: a map point's ``customdata`` is its row in the map's points, under the chart key
of that map) before ``run()``; the dialog's widgets are then driven like any other.
Embeddings, out-of-sample probabilities and the map are computed once per module by the library and the
state folder is copied with the data set for every test.
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from cleaning.data.workspace import Workspace
from tests.apptest import open_page


@pytest.fixture
def ws(mapped_ws: Workspace) -> Workspace:  # the session's scanned demo with its map, a private copy
    return mapped_ws


def map_ids(ws: Workspace) -> list[str]:
    """The item id of each row of the Embedding map's points now (what its ``customdata`` numbers)."""
    from cleaning.model.projection import load_or_compute_projection
    from cleaning.review.selection import embedding_points

    proj = load_or_compute_projection(ws, "umap")
    return list(embedding_points(ws.items_frame(), proj.item_ids, proj.xy, live_only=True)["item_id"])


def chart(ws: Workspace, gen: int = 0) -> str:
    """The map chart's key now (it names the map: data-set version and method) after ``gen`` dismissals."""
    from pages._writes import data_version
    from pages.embedding import chart_key

    return chart_key(data_version(ws), "umap", gen)


def click(ws: Workspace, item_id: str) -> dict:
    return {"selection": {"points": [{"curve_number": 0, "point_index": 0,
                                      "customdata": map_ids(ws).index(item_id)}],
                          "point_indices": [0], "box": [], "lasso": []}}


def area(ws: Workspace, item_ids: list[str]) -> dict:
    rows = map_ids(ws)
    return {"selection": {"points": [{"curve_number": 0, "point_index": n, "customdata": rows.index(i)}
                                     for n, i in enumerate(item_ids)],
                          "point_indices": list(range(len(item_ids))),
                          "box": [{"xref": "x", "yref": "y", "x": [0, 1], "y": [0, 1]}], "lasso": []}}


def keys(at: AppTest) -> set[str]:
    return {b.key for b in at.button if b.key}


def test_click_opens_the_dialog_and_relabel_is_recorded_once(ws: Workspace) -> None:
    iid = ws.item_id_for_path("bird/bird_0004.jpg")  # a planted flower in the bird folder
    at = open_page("pages/embedding.py")
    at.session_state[chart(ws, 0)] = click(ws, iid)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"dlg_{iid}_relabel" in keys(at)
    assert "New label" in [s.label for s in at.selectbox]
    at.selectbox(key=f"dlg_{iid}_new").select("flower").run()
    at.button(key=f"dlg_{iid}_relabel").click().run()
    assert not at.exception, [e.value for e in at.exception]
    hist = ws.store.history()
    assert [(d.item_id, d.action, d.label, d.source) for d in hist] == [(iid, "relabel", "flower", "user")]
    # the chart got a fresh key, so the old click is gone: more reruns never reopen the dialog
    assert at.session_state["emb_gen"] == 1
    at.run()
    assert f"dlg_{iid}_relabel" not in keys(at)


def test_the_dialog_stays_open_across_full_reruns_and_closes_by_a_new_chart_key(ws: Workspace) -> None:
    iid = ws.item_id_for_path("bird/bird_0006.jpg")
    at = open_page("pages/embedding.py")
    at.session_state[chart(ws, 0)] = click(ws, iid)
    at.run().run()
    assert f"dlg_{iid}_delete" in keys(at)
    at.session_state["emb_gen"] = 1  # what dismissing the dialog (Esc, ×) does through on_dismiss
    at.run()
    assert f"dlg_{iid}_delete" not in keys(at) and not ws.store.history()


def dialog_item(at: AppTest, prefix: str = "dlg") -> str:
    """The image the dialog shows now (its Delete or Restore button carries the id)."""
    shown = [k[len(prefix) + 1:].rsplit("_", 1)[0] for k in keys(at)
             if k.startswith(prefix + "_") and k.endswith(("_delete", "_restore"))]
    assert len(shown) == 1, shown
    return shown[0]


def test_next_and_previous_walk_the_images_nearest_the_clicked_point(ws: Workspace) -> None:
    from cleaning.model.projection import load_or_compute_projection
    from cleaning.review.selection import embedding_points, nearest_on_map

    iid = ws.item_id_for_path("bird/bird_0006.jpg")
    proj = load_or_compute_projection(ws, "umap")
    walk = nearest_on_map(embedding_points(ws.items_frame(), proj.item_ids, proj.xy), iid)
    assert walk[0] == iid and len(walk) == 100
    at = open_page("pages/embedding.py")
    at.session_state[chart(ws, 0)] = click(ws, iid)
    at.run()
    assert dialog_item(at) == iid and at.button(key="dlg_nav_prev").disabled
    assert any("Image 1 of 100 nearest on the map" in c.value for c in at.caption)
    at.button(key="dlg_nav_next").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert dialog_item(at) == walk[1]  # the next image, with its own widgets
    assert any("Image 2 of 100" in c.value for c in at.caption)
    at.button(key="dlg_nav_next").click().run()
    assert dialog_item(at) == walk[2]
    at.button(key="dlg_nav_prev").click().run()
    assert dialog_item(at) == walk[1]
    at.button(key=f"dlg_{walk[1]}_delete").click().run()  # a decision acts on the image shown
    assert [(d.item_id, d.action) for d in ws.store.history()] == [(walk[1], "delete")]
    at.run()
    assert not any(k.startswith("dlg_") for k in keys(at))  # the write closed the dialog and ended the walk
    at.session_state[chart(ws, 1)] = click(ws, iid)
    at.run()
    assert dialog_item(at) == iid  # a new click starts a new walk at the clicked image


def test_a_click_on_a_stale_item_opens_nothing(ws: Workspace) -> None:
    iid = ws.item_id_for_path("bird/bird_0006.jpg")
    old_key, old_click = chart(ws, 0), click(ws, iid)
    ws.store.record([iid], "delete")
    at = open_page("pages/embedding.py")
    at.session_state[old_key] = old_click  # a click on the map before the delete: another map's key
    at.run()
    assert not at.exception and f"dlg_{iid}_delete" not in keys(at) and f"dlg_{iid}_restore" not in keys(at)
    assert iid not in map_ids(ws)
    for stale in (len(map_ids(ws)), "no-such-item", -1):  # no row of this map
        at.session_state[chart(ws, 0)] = {"selection": {"points": [{"customdata": stale}], "box": [], "lasso": []}}
        at.run()
        assert not at.exception and not any(k.startswith("dlg_") for k in keys(at))


def test_delete_and_looks_fine_from_the_dialog(ws: Workspace) -> None:
    a, b = ws.item_id_for_path("bird/bird_0006.jpg"), ws.item_id_for_path("bird/bird_0001.jpg")
    at = open_page("pages/embedding.py")
    at.session_state[chart(ws, 0)] = click(ws, a)
    at.run().button(key=f"dlg_{a}_delete").click().run()
    at.session_state[chart(ws, 1)] = click(ws, b)
    at.run().button(key=f"dlg_{b}_keep").click().run()
    assert not at.exception, [e.value for e in at.exception]
    state = ws.store.current()
    assert state[a].deleted and state[b].kept and not state[b].deleted


def test_box_selection_bulk_delete_needs_confirmation_and_is_one_batch(ws: Workspace) -> None:
    ids = [ws.item_id_for_path(p) for p in ("bird/bird_0001.jpg", "bird/bird_0002.jpg", "bird/bird_0003.jpg")]
    at = open_page("pages/embedding.py")
    at.session_state[chart(ws, 0)] = area(ws, ids)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "emb_bulk_delete" in keys(at) and not any(b.key and "_dlg_" in b.key for b in at.button)
    at.button(key="emb_bulk_delete").click().run()
    assert not any(s.deleted for s in ws.store.current().values())  # nothing until confirmed
    assert any("Delete 3 image(s)" in w.value for w in at.warning)
    at.button(key="emb_bulk_confirm").click().run()
    hist = ws.store.history()
    assert {d.item_id for d in hist} == set(ids) and {d.batch for d in hist} == {hist[0].batch}
    assert {d.source for d in hist} == {"bulk"}
    assert at.session_state["emb_gen"] == 1
    ws.store.undo()
    assert not any(s.deleted for s in ws.store.current().values())


def test_bulk_relabel_is_one_confirmed_batch(ws: Workspace) -> None:
    ids = [ws.item_id_for_path(p) for p in ("fruit/fruit_0001.jpg", "fruit/fruit_0002.jpg")]
    at = open_page("pages/embedding.py")
    at.session_state[chart(ws, 0)] = area(ws, ids)
    at.run()
    at.selectbox(key="emb_bulk_label").select("flower").run()
    at.button(key="emb_bulk_relabel").click().run()
    at.button(key="emb_bulk_confirm").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [ws.store.current()[i].label for i in ids] == ["flower", "flower"]


def _cell_click(given: str, predicted: str, count: int) -> dict:
    return {"selection": {"points": [{"curve_number": 1, "point_index": 0,
                                      "customdata": [given, predicted, str(count)]}],
                          "point_indices": [0], "box": [], "lasso": []}}


def test_confusion_cell_click_shows_its_images_and_counts_follow_decisions(ws: Workspace) -> None:
    from cleaning.model.oos import load_or_compute_oos
    from cleaning.review.selection import Predictions, confusion_from_items

    oos = load_or_compute_oos(ws)
    conf = confusion_from_items(ws.items_frame(), Predictions(oos.item_ids, oos.vocab, oos.pred_probs))
    assert conf.n == 129
    g, p, n = conf.most_confused()[0]
    at = open_page("pages/confusion.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images"] == "129" and int(metrics["Disagree"]) == conf.n - int(conf.counts.trace())
    at.session_state["conf_chart_0"] = _cell_click(g, p, n)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = {k.rsplit("_", 1)[1] for k in keys(at) if "_open_" in k}
    assert shown == set(conf.ids(g, p))
    victim = sorted(shown)[0]
    at.button(key=f"conf_grid_{g}_{p}_del_{victim}").click().run()
    assert ws.store.current()[victim].deleted
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images"] == "128" and int(metrics["Disagree"]) == conf.n - int(conf.counts.trace()) - 1
    assert f"conf_grid_{g}_{p}_open_{victim}" not in keys(at)  # it left the cell


def test_confusion_open_card_dialog_and_pick_bulk(ws: Workspace) -> None:
    at = open_page("pages/confusion.py")
    at.button(key="conf_go_bird_mammal").click().run() if "conf_go_bird_mammal" in keys(at) else None
    at.session_state["conf_chart_0"] = _cell_click("bird", "bird", 0)
    at.run()
    ids = sorted(k.rsplit("_", 1)[1] for k in keys(at) if k.startswith("conf_grid_bird_bird_open_"))
    assert len(ids) >= 2
    at.button(key=f"conf_grid_bird_bird_open_{ids[0]}").click().run()
    assert f"conf_grid_bird_bird_dlg_{ids[0]}_relabel" in keys(at)
    at.checkbox(key=f"conf_grid_bird_bird_pick_{ids[0]}").check().run()
    at.checkbox(key=f"conf_grid_bird_bird_pick_{ids[1]}").check().run()
    assert any("2 image(s) selected" in m.value for m in at.markdown)
    at.button(key="conf_bulk_bird_bird_delete").click().run()
    at.button(key="conf_bulk_bird_bird_confirm").click().run()
    assert not at.exception, [e.value for e in at.exception]
    state = ws.store.current()
    assert state[ids[0]].deleted and state[ids[1]].deleted and ws.store.decision_count() == 2
