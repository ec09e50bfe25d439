"""Hosted mode through AppTest: each session its own workspace, no server paths, uploads through the
hostile-file checks, downloads equal to the export."""

from __future__ import annotations

import csv
import filecmp
import io
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cleaning.data.files import export_dataset
from cleaning.data.workspace import Workspace
from tests.hostile import make_image_tree
from tests.zips import HOSTILE, good_members, zip_bytes

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLEANING_MODE", "hosted")
    monkeypatch.setenv("CLEANING_SCRATCH", str(tmp_path / "scratch"))
    monkeypatch.setenv("CLEANING_WARM", "0")  # no background demo warming in these tests
    return tmp_path / "scratch"


def new_session() -> AppTest:
    at = AppTest.from_file(str(REPO / "dashboard.py"), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    up = [u for u in at.get("file_uploader") if u.proto.label.startswith("A .zip")]
    assert up, "the Overview shows no zip uploader"
    up[0].set_value((name, data, "application/zip")).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def session_root(at: AppTest) -> Path:
    return Path(at.session_state["dataset_root"])


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_upload_a_zip_and_see_the_data_set(scratch: Path) -> None:
    at = new_session()
    assert not at.metric  # no data set yet: only the way in
    assert any("none yet" in c.value for c in at.sidebar.caption)
    upload(at, "pets.zip", zip_bytes({f"pets/{k}": v for k, v in good_members(4).items()}))
    assert any("Loaded **pets.zip**: 8 image files in 2 classes" in s.value for s in at.success)
    m = metrics(at)
    assert m["Images"] == "8" and m["Classes"] == "2"
    shown = " ".join(md.value for md in at.markdown)
    assert "**cat** · 4 images" in shown and "**coffee** · 4 images" in shown
    root = session_root(at)
    assert scratch in root.parents and sorted(p.name for p in root.iterdir()) == ["cat", "coffee"]


def test_two_sessions_do_not_share_decisions_or_undo(scratch: Path) -> None:
    a, b = new_session(), new_session()
    for at in (a, b):
        upload(at, "pets.zip", zip_bytes(good_members(3)))
    ra, rb = session_root(a), session_root(b)
    assert ra != rb and a.session_state["ws_token"] != b.session_state["ws_token"]
    ws_a = Workspace.open(ra)
    ws_a.store.record([ws_a.store.find_item("cat/cat_0.jpg")], "delete")
    a.run()
    b.run()
    assert metrics(a)["Deleted"] == "1" and metrics(b)["Deleted"] == "0"
    assert not a.sidebar.button(key="frame_undo").disabled
    assert b.sidebar.button(key="frame_undo").disabled  # B has nothing to undo
    b.switch_page("pages/history.py").run()
    assert any("No decisions yet" in i.value for i in b.info)
    a.sidebar.button(key="frame_undo").click().run()
    assert metrics(a)["Deleted"] == "0" and Workspace.open(ra).store.can_redo()
    assert len(Workspace.open(rb).store.history()) == 0 and not Workspace.open(rb).store.can_redo()


def test_hosted_mode_refuses_a_server_path(scratch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = tmp_path / "server_data"
    make_image_tree(server, {"cat": 2})
    monkeypatch.setenv("CLEANING_ROOT", str(server))
    at = new_session()
    assert not at.metric and not at.get("popover")  # not opened, and no way to ask for a path
    at.session_state["dataset_root"] = str(server)  # as if a widget had asked for it
    at.run()
    assert any("not offered in hosted mode" in e.value for e in at.error)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["scratch", "server_data"])  # no store written


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_upload_is_refused_with_its_error(case: str, scratch: Path, tmp_path: Path) -> None:
    build, message = HOSTILE[case]
    src = tmp_path / "hostile.zip"
    build(src)
    at = new_session()
    before = {p for p in tmp_path.rglob("*") if scratch not in p.parents and p != scratch}
    upload(at, "hostile.zip", src.read_bytes())
    errors = [e.value for e in at.error]
    assert any(message in e for e in errors), errors
    assert not at.metric  # no data set was installed
    tok = at.session_state["ws_token"]
    assert [p.name for p in (scratch / tok).iterdir() if p.is_dir()] == []  # nothing kept in the workspace
    after = {p for p in tmp_path.rglob("*") if scratch not in p.parents and p != scratch}
    assert after == before  # nothing written outside the workspace
    assert not Path("/tmp/evil-absolute.jpg").exists()
    at.run()  # a rerun shows the same error without reading the file again
    assert any(message in e.value for e in at.error)


def test_export_page_offers_the_zip_and_it_equals_the_export(scratch: Path, tmp_path: Path) -> None:
    at = new_session()
    upload(at, "pets.zip", zip_bytes(good_members(3)))
    ws = Workspace.open(session_root(at))
    ws.store.record([ws.store.find_item("cat/cat_0.jpg")], "delete")
    ws.store.record([ws.store.find_item("coffee/coffee_1.jpg")], "relabel", label="cat")
    at.switch_page("pages/export.py").run()
    assert not at.exception
    labels = [b.proto.label for b in at.get("download_button")]
    assert any("zip" in lab for lab in labels), labels
    assert not at.text_input  # no server folder to export to
    from pages._downloads import zip_bytes as page_zip

    data = page_zip(ws)
    ref = export_dataset(ws, tmp_path / "ref")
    out = tmp_path / "unzipped"
    zipfile.ZipFile(io.BytesIO(data)).extractall(out)
    want = sorted(p.relative_to(ref.out).as_posix() for p in ref.out.rglob("*") if p.is_file())
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == want
    assert "cat/coffee_1.jpg" in want and "cat/cat_0.jpg" not in want
    assert all(filecmp.cmp(out / n, ref.out / n, shallow=False) for n in want)
    rows = list(csv.reader(io.StringIO((out / "labels.csv").read_text())))
    assert rows[0][:2] == ["path", "label"] and len(rows) == 1 + 5
    leftovers = [p for p in session_root(at).parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # the temporary export and zip are gone


def test_images_dropped_onto_a_class(scratch: Path) -> None:
    from tests.zips import small_jpeg

    at = new_session()
    upload(at, "pets.zip", zip_bytes(good_members(2)))
    at.selectbox(key="datain_cls").set_value("coffee").run()
    drop = [u for u in at.get("file_uploader") if u.proto.label == "Drop images here"][0]
    drop.set_value([("new.jpg", small_jpeg("coffee", 40), "image/jpeg"),
                    ("../../x.jpg", small_jpeg("coffee", 44), "image/jpeg")]).run()
    at.button(key="datain_add").click().run()
    assert not at.exception
    assert any("Added 2 image(s) to **coffee**" in s.value for s in at.success)
    assert metrics(at)["Images"] == "6"
    names = sorted(p.name for p in (session_root(at) / "coffee").iterdir())
    assert names == ["coffee_0.jpg", "coffee_1.jpg", "new.jpg", "x.jpg"]
    assert not (scratch / "x.jpg").exists()


@pytest.mark.parametrize("page", ["pages/issues.py", "pages/train.py", "pages/export.py", "pages/history.py"])
def test_pages_before_any_data_say_where_to_start(page: str, scratch: Path) -> None:
    at = new_session()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("no data set yet" in e.value for e in at.error)


def test_a_swept_workspace_says_so(scratch: Path) -> None:
    import shutil

    at = new_session()
    upload(at, "pets.zip", zip_bytes(good_members(2)))
    shutil.rmtree(session_root(at).parent)  # what the idle sweep does
    at.run()
    assert not at.metric and not at.exception
    assert any("removed after 2 h without a visit" in c.value for c in at.sidebar.caption)
    at.run()
    assert any("none yet" in c.value for c in at.sidebar.caption)
    assert not any("removed after" in c.value for c in at.sidebar.caption)  # said once
