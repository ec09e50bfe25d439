"""The rough edges a new user hit (issue 12), each with the check that would have caught it.

Page checks run through AppTest on one scanned copy of the demo (its caches computed once per module);
library checks run on small generated data.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from cleaning.data.workspace import Workspace
from tests.apptest import REPO, demo_copy, open_page, scanned_demo


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scanned_demo(tmp_path_factory.mktemp("rough"))


@pytest.fixture
def ws(prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    return Workspace.open(demo_copy(prepared, tmp_path, monkeypatch))


def texts(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "info", "warning", "success")
                     for e in getattr(at, kind))


# ---- Overview ------------------------------------------------------------------------------------------
def test_overview_shows_kind_and_reason_of_unusable_files_in_full(ws: Workspace) -> None:
    at = open_page("pages/overview.py")
    df = next(d for d in at.dataframe if "reason" in d.value.columns)
    assert list(df.value.columns) == ["kind", "file", "reason"]  # the kind is not hidden at the far right
    assert df.value.iloc[0]["kind"] == "corrupt" and "mammal_0035.jpg" in df.value.iloc[0]["file"]
    assert '"reason"' in df.proto.columns and "large" in df.proto.columns  # the reason gets the room


# ---- Scrape ----------------------------------------------------------------------------------------------
def test_scrape_says_the_number_is_a_total_and_what_a_run_adds(ws: Workspace) -> None:
    from cleaning.scrape.run import scraped_counts

    have = scraped_counts(ws)["bird"]
    assert have > 30  # the demo's birds all came from a (simulated) scrape
    at = open_page("pages/scrape.py")
    box = at.number_input(key="scrape_per_class")
    assert "in total" in box.label and "not how many to add" in box.label
    assert any(f"This run adds up to: bird 0 more (has {have})" in c.value for c in at.caption)
    box.set_value(have + 2).run()
    assert any(f"bird 2 more (has {have})" in c.value for c in at.caption)


# ---- Issues -------------------------------------------------------------------------------------------
def test_unreadable_file_card_names_the_real_rescan_button(ws: Workspace) -> None:
    from pages._common import RESCAN_LABEL

    at = open_page("pages/issues.py")
    at.multiselect(key="iss_types").set_value(["corrupt"]).run()
    card = [c.value for c in at.caption if "cannot show or track this file" in c.value]
    assert card and RESCAN_LABEL in card[0]
    assert RESCAN_LABEL in [b.label for b in at.sidebar.button]


def test_a_blank_white_image_gets_a_visible_frame(tmp_path: Path) -> None:
    from pages._common import thumb

    p = tmp_path / "white.png"
    Image.new("RGB", (100, 80), "white").save(p)
    im = np.asarray(Image.open(io.BytesIO(thumb(str(p), 64))).convert("L"), dtype=int)
    assert im[0].max() < 220 and im[:, 0].max() < 220  # the border is grey, not white
    assert im[im.shape[0] // 2, im.shape[1] // 2] > 245  # the image itself is untouched


# ---- Confusion grid and every icon button ---------------------------------------------------------------
def test_grid_cards_show_file_names_and_buttons_say_what_they_do(ws: Workspace) -> None:
    at = open_page("pages/confusion.py")
    at.session_state["conf_cell"] = ("bird", "flower")
    at.run()
    caps = [c.value for c in at.caption if "`bird`" in c.value]
    assert caps and any("bird_0004.jpg" in c for c in caps)  # the file name, not only in a tooltip
    grid = [b for b in at.button if b.key and "_open_" in b.key]
    assert grid and all(b.label == "Open" for b in grid)


@pytest.mark.parametrize("page", ["pages/overview.py", "pages/issues.py", "pages/confusion.py",
                                  "pages/sources.py", "pages/export.py", "pages/history.py", "pages/grid.py",
                                  "pages/deleted.py"])
def test_every_button_has_a_text_label(ws: Workspace, page: str) -> None:
    """Screen readers announce a button by its label: an icon-only button reads as "open_in_full icon"."""
    ws.store.record([ws.item_id_for_path("bird/bird_0004.jpg")], "delete")
    at = open_page(page)
    if page == "pages/confusion.py":
        at.session_state["conf_cell"] = ("bird", "bird")
        at.run()
    unlabelled = [b.key for b in at.button if not str(b.label).strip()]
    assert at.button and not unlabelled, unlabelled


# ---- Embedding -----------------------------------------------------------------------------------------
def test_map_leaves_room_for_the_toolbar_above_the_legend() -> None:
    import pandas as pd

    from cleaning.review.figures import embedding_figure

    pts = pd.DataFrame({"item_id": ["a", "b"], "x": [0.0, 1.0], "y": [0.0, 1.0], "path": ["c/a", "c/b"],
                        "label": ["c", "d"], "deleted": [False, False], "pred": ["c", "c"],
                        "confidence": [0.9, 0.8], "issue": ["no issue", "label"]})
    fig = embedding_figure(pts)
    assert fig.layout.margin.t >= 40  # plotly's mode bar is ~30 px high and sits in the top margin
    assert fig.layout.legend.y == 1 and fig.layout.legend.yanchor == "top"


# ---- Sources -------------------------------------------------------------------------------------------
def test_sources_thumbnails_open_the_review_dialog_and_by_chance_is_explained(ws: Workspace) -> None:
    at = open_page("pages/sources.py")
    assert any("**by chance**: if problems fell on every image alike" in c.value for c in at.caption)
    opens = [b for b in at.button if b.key and b.key.startswith("src_open_")]
    assert opens
    iid = opens[0].key.removeprefix("src_open_")
    opens[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"src_dlg_{iid}_delete" in {b.key for b in at.button}  # the review dialog of that image


# ---- Export --------------------------------------------------------------------------------------------
def test_export_relative_path_lands_next_to_the_data_set(ws: Workspace) -> None:
    from pages.export import resolve_export_path

    assert resolve_export_path(ws, "clean-copy") == (ws.root.parent / "clean-copy").resolve()
    assert resolve_export_path(ws, "/tmp/x") == Path("/tmp/x")
    at = open_page("pages/export.py")
    at.text_input(key="exp_out").set_value("clean-copy").run()
    assert any(f"Will write to `{(ws.root.parent / 'clean-copy').resolve()}`" in c.value for c in at.caption)
    assert not any(str(REPO) in c.value for c in at.caption if "Will write" in c.value)


def test_export_says_the_unreadable_file_is_left_out(ws: Workspace) -> None:
    at = open_page("pages/export.py")
    assert any("unusable file" in w.value and "mammal/mammal_0035.jpg" in w.value for w in at.warning)


# ---- History -------------------------------------------------------------------------------------------
def test_history_is_newest_first_as_it_says_with_thumbnails(ws: Workspace) -> None:
    a, b = ws.item_id_for_path("bird/bird_0004.jpg"), ws.item_id_for_path("fruit/fruit_0004.jpg")
    ws.store.record([a], "relabel", label="flower")
    ws.store.record([b], "delete")
    at = open_page("pages/history.py")
    assert any("newest first" in c.value for c in at.caption)
    assert not any("oldest first" in c.value for c in at.caption)
    df = at.dataframe[0].value
    assert list(df["#"]) == sorted(df["#"], reverse=True)
    assert df.iloc[0]["image"] == "fruit/fruit_0004.jpg"
    head, data = df.iloc[0]["thumbnail"].split(",", 1)
    assert head == "data:image/jpeg;base64"
    assert Image.open(io.BytesIO(base64.b64decode(data))).size[0] <= 64 + 4


# ---- Train: the count of decisions between two runs --------------------------------------------------------
def test_decisions_in_between_counts_only_active_ones(ws: Workspace) -> None:
    from cleaning.model.runs import compare_runs, record_run
    from tests.test_runs import _metrics

    ids = list(ws.items_frame()["item_id"])
    record_run(ws, "before", _metrics([0, 1], [0, 1], ["bird", "fruit"]), "/m1",
               created_at="2026-01-01T00:00:00.000+00:00")
    for i in ids[:9]:
        ws.store.record([i], "delete")
    ws.store.undo()
    ws.store.undo()
    record_run(ws, "after", _metrics([0, 1], [0, 1], ["bird", "fruit"]), "/m2",
               created_at="2026-01-02T00:00:00.000+00:00")
    cmp = compare_runs(ws, "before", "after")
    # 9 recorded in between, 2 of them undone before the second run: 7 changed what the runs saw
    assert len(cmp.decisions) == 7 and len(cmp.active_decisions) == 7


# ---- a look-alike class name asks first ----------------------------------------------------------------
def test_relabel_to_a_look_alike_class_asks_for_confirmation(ws: Workspace) -> None:
    at = open_page("pages/issues.py")
    box = next(s for s in at.selectbox if s.key and s.key.startswith("iss_item:") and s.key.endswith("_new"))
    k = box.key.removesuffix("_new")
    iid = k.removeprefix("iss_item:")
    label = ws.store.current()[iid].label
    other = next(lab for lab in ws.vocab if lab != label)
    from pages import _review

    # AppTest cannot type a new option into the box: call what the Relabel button calls, in a script run
    assert _review.similar_label(other.upper(), ws.vocab) == other
    at.session_state[f"{k}_alike"] = (other.upper(), other, [iid])  # what relabel_or_ask leaves pending
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert ws.store.current()[iid].label == label  # nothing recorded yet
    assert any(f"A class **“{other}”** already exists" in w.value for w in at.warning)
    at.button(key=f"{k}_alike_use").click().run()
    assert ws.store.current()[iid].label == other  # the existing class, not a second one
    assert other.upper() not in ws.vocab


# ---- autofix in the app ----------------------------------------------------------------------------------
def test_autofix_box_shows_the_plan_then_records_one_batch(ws: Workspace) -> None:
    from cleaning.review.analysis import load_or_find_issues
    from cleaning.review.autofix import plan_autofix

    plan = plan_autofix(load_or_find_issues(ws), ws.items_frame(), "balanced")
    assert plan.n_images > 0
    at = open_page("pages/issues.py")
    assert not [s for s in at.select_slider if s.key == "autofix_level"]  # closed: no plan computed
    at.session_state["autofix_box"] = True  # open the box (the browser's click on it)
    at.run()
    at.select_slider(key="autofix_level").set_value("balanced").run()
    assert ws.store.decision_count() == 0  # nothing before the click
    assert any("expected precision" in m.value for m in at.markdown)
    btn = at.button(key="autofix_apply")
    assert btn.label == f"Apply these {plan.n_images} fixes as one batch"
    btn.click().run()
    assert not at.exception, [e.value for e in at.exception]
    active = [d for d in ws.store.history() if d.state == "active"]
    assert len(active) == plan.n_images and len({d.batch for d in active}) == 1
    assert any("Autofix (balanced) recorded" in s.value for s in at.success)
    ws.store.undo()
    assert ws.store.decision_count() == 0


# ---- grid review ----------------------------------------------------------------------------------------
def test_grid_review_by_class_one_click_delete_is_recorded_and_undoable(ws: Workspace) -> None:
    at = open_page("pages/grid.py")
    at.selectbox(key="grid_class").set_value("bird").run()
    opens = [b for b in at.button if b.key and b.key.startswith("grid_class_normal_open_")]
    assert len(opens) == min(30, int((ws.items_frame()["label"] == "bird").sum()))
    first = opens[0].key.removeprefix("grid_class_normal_open_")
    assert first == ws.item_id_for_path("bird/bird_0004.jpg") or ws.store.current()[first].label == "bird"
    at.button(key=f"grid_class_normal_del_{first}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert ws.store.current()[first].deleted
    ws.store.undo()
    assert not ws.store.current()[first].deleted
    at.segmented_control(key="grid_size").set_value("large").run()
    assert len([b for b in at.button if b.key and b.key.startswith("grid_class_large_open_")]) == 12


def test_grid_review_by_issue_kind(ws: Workspace) -> None:
    at = open_page("pages/grid.py")
    at.segmented_control(key="grid_by").set_value("issue").run()
    at.selectbox(key="grid_kind").set_value("label").run()
    assert not at.exception, [e.value for e in at.exception]
    ids = [b.key.removeprefix("grid_issue_normal_fine_") for b in at.button
           if b.key and b.key.startswith("grid_issue_normal_fine_")]
    assert ids
    at.button(key=f"grid_issue_normal_fine_{ids[0]}").click().run()
    assert ws.store.current()[ids[0]].kept
