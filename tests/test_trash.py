"""The Deleted view: the pure frame of deleted/quarantined images, and the page through AppTest."""

from __future__ import annotations

import hashlib
from pathlib import Path

from streamlit.testing.v1 import AppTest

from cleaning.data.files import apply_decisions
from cleaning.data.workspace import Workspace
from cleaning.review.trash import deleted_frame
from tests.hostile import make_image_tree

REPO = Path(__file__).resolve().parent.parent


def _ws(tmp_path: Path) -> Workspace:
    make_image_tree(tmp_path / "ds", {"cat": 3, "dog": 3})
    ws = Workspace.open(tmp_path / "ds")
    ws.refresh()
    return ws


def test_deleted_frame_states_search_and_order(tmp_path: Path) -> None:
    ws = _ws(tmp_path)
    a, b, c = (ws.item_id_for_path(p) for p in ("cat/img_0.jpg", "dog/img_1.jpg", "dog/img_2.jpg"))
    ws.store.record([a], "delete", note="blurry")
    ws.store.record([b, c], "delete", source="bulk")
    apply_decisions(ws)  # all three to the quarantine
    ws.store.record([c], "restore")  # back on the next apply
    f = deleted_frame(ws.items_frame(), ws.store.history())
    assert dict(zip(f["path"], f["state"])) == {"cat/img_0.jpg": "quarantined", "dog/img_1.jpg": "quarantined",
                                                "dog/img_2.jpg": "restoring"}
    assert list(f["path"])[0].startswith("dog/")  # newest delete first
    assert f.set_index("path").loc["cat/img_0.jpg", "note"] == "blurry"
    assert list(deleted_frame(ws.items_frame(), ws.store.history(), "BLUR")["path"]) == ["cat/img_0.jpg"]
    assert list(deleted_frame(ws.items_frame(), ws.store.history(), "dog img_1")["path"]) == ["dog/img_1.jpg"]
    assert deleted_frame(ws.items_frame(), ws.store.history(), "nothing-like-this").empty
    ws.store.record([a, b], "restore")
    apply_decisions(ws)
    assert deleted_frame(ws.items_frame(), ws.store.history()).empty


def test_deleted_page_search_restore_one_and_all_in_one_batch(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    ws = _ws(tmp_path)
    monkeypatch.setenv("CLEANING_ROOT", str(ws.root))
    ids = [ws.item_id_for_path(p) for p in ("cat/img_0.jpg", "cat/img_1.jpg", "dog/img_0.jpg", "dog/img_1.jpg")]
    sha = {i: hashlib.sha256((ws.root / ws.store.item(i)["path"]).read_bytes()).hexdigest() for i in ids}
    ws.store.record(ids, "delete", source="bulk")
    apply_decisions(ws)
    at = AppTest.from_file(str(REPO / "dashboard.py"), default_timeout=120).run()
    at.switch_page("pages/deleted.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert {m.label: m.value for m in at.metric}["In the quarantine"] == "4"
    at.text_input(key="del_search").set_value("dog").run()
    assert {m.label: m.value for m in at.metric}["Shown"] == "2"
    at.button(key=f"del_grid_restore_{ids[2]}").click().run()  # one
    assert not ws.store.current()[ids[2]].deleted and ws.store.current()[ids[3]].deleted
    at.text_input(key="del_search").set_value("").run()
    at.button(key="del_all").click().run()  # all (three left), after a confirmation
    assert ws.store.current()[ids[0]].deleted
    at.button(key="del_all_yes").click().run()
    assert not any(ws.store.current()[i].deleted for i in ids)
    last = [d for d in ws.store.history() if d.state == "active"][-3:]
    assert len({d.batch for d in last}) == 1 and {d.action for d in last} == {"restore"}
    apply_decisions(ws)
    for i in ids:  # back, byte-identical
        assert hashlib.sha256((ws.root / ws.store.item(i)["path"]).read_bytes()).hexdigest() == sha[i]
    ws.store.undo()  # the bulk restore is one undo
    assert sum(ws.store.current()[i].deleted for i in ids) == 3


def test_deleted_page_reruns_without_reading_the_history_again(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """The deleted images are folded from the history once per data-set version (at 100,000 images with
    10,000 deleted, twice per rerun cost seconds); a rerun that changes nothing reads nothing again."""
    from cleaning.data.store import Store

    ws = _ws(tmp_path)
    monkeypatch.setenv("CLEANING_ROOT", str(ws.root))
    ids = [ws.item_id_for_path(p) for p in ("cat/img_0.jpg", "dog/img_1.jpg")]
    ws.store.record(ids, "delete", source="bulk")
    reads = []
    real = Store.history
    monkeypatch.setattr(Store, "history", lambda self, *a, **k: reads.append(1) or real(self, *a, **k))
    at = AppTest.from_file(str(REPO / "dashboard.py"), default_timeout=120).run()
    at.switch_page("pages/deleted.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert {m.label: m.value for m in at.metric}["Deleted"] == "2"
    n = len(reads)
    at.button(key="del_all").click().run()  # a rerun: the confirmation shows, nothing is recorded
    at.run()
    assert len(reads) == n == 1
    at.button(key="del_all_yes").click().run()
    assert not any(ws.store.current()[i].deleted for i in ids) and len(reads) == 2  # a new version: read again
