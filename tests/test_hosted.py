"""Hosted mode's library parts: mode detection, per-session workspaces (idle removal, disk caps), the
download zip (equal to the export), copying a prepared workspace."""

from __future__ import annotations

import csv
import filecmp
import io
import os
import time
import zipfile
from pathlib import Path

import pytest

from cleaning.data.bundle import csv_bytes, decisions_frame, export_zip
from cleaning.data.files import export_dataset
from cleaning.data.hosted import QuotaError, SessionWorkspaces, WorkspaceGone, copy_workspace, detect_mode
from cleaning.data.workspace import Workspace
from cleaning.errors import CleaningError
from tests.hostile import make_image_tree


def test_mode_setting_wins_over_detection(tmp_path: Path) -> None:
    assert detect_mode({"CLEANING_MODE": "hosted"}, tmp_path) == "hosted"
    assert detect_mode({"CLEANING_MODE": "LOCAL", "HOSTNAME": "streamlit"}, "/mount/src/app") == "local"
    assert detect_mode({}, tmp_path) == "local"
    with pytest.raises(CleaningError, match="not a mode"):
        detect_mode({"CLEANING_MODE": "cloud"}, tmp_path)


def test_community_cloud_is_detected() -> None:
    assert detect_mode({}, "/mount/src/image-cleaning") == "hosted"
    assert detect_mode({"HOSTNAME": "streamlit"}, "/home/me/app") == "hosted"
    assert detect_mode({"USER": "appuser", "HOME": "/home/appuser"}, "/app") == "hosted"
    assert detect_mode({"HOSTNAME": "laptop", "USER": "me"}, "/home/me/app") == "local"


def test_sessions_get_their_own_folders(tmp_path: Path) -> None:
    mgr = SessionWorkspaces(tmp_path / "scratch")
    a, b = mgr.new_token(), mgr.new_token()
    assert a != b and len(a) == 32
    for tok in (a, b):
        assert mgr.dataset_root(tok) is None
        mgr.install(tok, lambda r: make_image_tree(r, {"cat": 2}))
    ra, rb = mgr.dataset_root(a), mgr.dataset_root(b)
    assert ra and rb and ra != rb
    assert mgr.folder(a) in ra.parents and mgr.folder(b) in rb.parents
    with pytest.raises(WorkspaceGone):
        mgr.folder("../../etc")
    assert not mgr.exists("../x")


def test_a_failed_install_keeps_the_previous_data_set(tmp_path: Path) -> None:
    mgr = SessionWorkspaces(tmp_path / "scratch")
    tok = mgr.new_token()
    mgr.install(tok, lambda r: make_image_tree(r, {"cat": 2}))
    before = mgr.dataset_root(tok)

    def fail(root: Path) -> None:
        make_image_tree(root, {"dog": 1})
        raise CleaningError("refused")

    with pytest.raises(CleaningError):
        mgr.install(tok, fail)
    assert mgr.dataset_root(tok) == before
    assert sorted(p.name for p in mgr.folder(tok).iterdir() if p.is_dir()) == [before.parent.name]
    mgr.install(tok, lambda r: make_image_tree(r, {"dog": 1}))
    after = mgr.dataset_root(tok)
    assert after != before and not before.exists() and (after / "dog").is_dir()


def test_idle_workspaces_are_removed(tmp_path: Path) -> None:
    mgr = SessionWorkspaces(tmp_path / "scratch", idle_seconds=3600)
    old, new = mgr.new_token(), mgr.new_token()
    for tok in (old, new):
        mgr.install(tok, lambda r: make_image_tree(r, {"cat": 1}))
    past = time.time() - 7200
    os.utime(mgr.folder(old) / ".last-seen", (past, past))
    (mgr.root / "_demo").mkdir()  # the shared demo template is never swept
    removed = mgr.sweep(every=0)
    assert removed == [mgr.folder(old)]
    assert not mgr.exists(old) and mgr.exists(new) and (mgr.root / "_demo").is_dir()


def test_disk_caps_give_a_clear_message(tmp_path: Path) -> None:
    mgr = SessionWorkspaces(tmp_path / "scratch", max_total_bytes=300_000, max_session_bytes=200_000)
    a, b = mgr.new_token(), mgr.new_token()
    mgr.install(a, lambda r: make_image_tree(r, {"cat": 20}, size=128))
    used = mgr.usage(a).session_bytes
    assert used > 50_000
    with pytest.raises(QuotaError, match="of your workspace's"):
        mgr.check_space(a, 200_000)
    mgr.create(b)
    with pytest.raises(QuotaError, match="scratch space is full") as e:
        mgr.check_space(b, 300_000 - used + 1)
    assert "removed after 2 h" in (e.value.hint or "")
    mgr.check_space(b, 1000)


@pytest.fixture
def cleaned_ws(tmp_path: Path) -> Workspace:
    make_image_tree(tmp_path / "data", {"cat": 4, "coffee": 3})
    ws = Workspace.open(tmp_path / "data")
    ws.store.record([ws.store.find_item("cat/img_0.jpg")], "delete")
    ws.store.record([ws.store.find_item("cat/img_1.jpg")], "relabel", label="coffee")
    return ws


def test_download_zip_equals_the_export(cleaned_ws: Workspace, tmp_path: Path) -> None:
    ws = cleaned_ws
    ref = export_dataset(ws, tmp_path / "ref")
    rep = export_zip(ws, tmp_path / "dl" / "clean.zip", scratch=tmp_path / "scratch")
    assert rep.n_images == ref.n_images == 6 and rep.per_label == ref.per_label == {"cat": 2, "coffee": 4}
    out = tmp_path / "unzipped"
    with zipfile.ZipFile(rep.out) as zf:
        names = set(zf.namelist())
        zf.extractall(out)
    want = {p.relative_to(ref.out).as_posix() for p in ref.out.rglob("*") if p.is_file()}
    assert names == want and "labels.csv" in names and "coffee/img_1.jpg" in names
    for name in want - {"labels.csv"}:
        assert filecmp.cmp(out / name, ref.out / name, shallow=False)
    rows = list(csv.DictReader(io.StringIO((out / "labels.csv").read_text())))
    assert list(rows[0])[:2] == ["path", "label"]
    assert {(r["path"], r["label"]) for r in rows} == {(n, n.split("/")[0]) for n in want - {"labels.csv"}}
    assert os.listdir(tmp_path / "scratch") == []  # the temporary export is gone
    assert sorted(os.listdir(tmp_path / "dl")) == ["clean.zip"]


def test_decisions_log(cleaned_ws: Workspace) -> None:
    df = decisions_frame(cleaned_ws)
    assert df["action"].tolist() == ["delete", "relabel"] and df["label"].tolist()[1] == "coffee"
    text = csv_bytes(df).decode()
    assert text.splitlines()[0].startswith("seq,batch,item_id,action,label")


def test_copy_workspace_keeps_items_and_caches(cleaned_ws: Workspace, tmp_path: Path) -> None:
    (cleaned_ws.cache_dir / "emb-x.npz").parent.mkdir(parents=True, exist_ok=True)
    (cleaned_ws.cache_dir / "emb-x.npz").write_bytes(b"x")
    dst = copy_workspace(cleaned_ws.root, tmp_path / "copy" / "data")
    ws2 = Workspace.open(dst)
    assert ws2.items_frame()["item_id"].tolist() == cleaned_ws.items_frame()["item_id"].tolist()
    assert ws2.store.decision_count() == 2 and (ws2.cache_dir / "emb-x.npz").exists()
    ws2.store.record([ws2.store.find_item("cat/img_2.jpg")], "delete")
    assert cleaned_ws.store.decision_count() == 2  # the copy is independent


def test_a_visitors_demo_is_a_copy_of_the_servers_template(tmp_path: Path) -> None:
    from cleaning.review.prepare import demo_template

    template = demo_template(tmp_path / "scratch", warm=False)
    assert template == demo_template(tmp_path / "scratch", warm=False)  # prepared once
    mgr = SessionWorkspaces(tmp_path / "scratch")
    tok = mgr.new_token()
    mgr.install(tok, lambda r: copy_workspace(template, r))
    ws = Workspace.open(mgr.dataset_root(tok))
    frame = ws.items_frame()
    assert len(frame) == 129 and frame["source_query"].notna().any()  # provenance came along
    ws.store.record([frame["item_id"].iloc[0]], "delete")
    assert Workspace.open(template).store.decision_count() == 0  # the template is never written to
    assert mgr.sweep(every=0) == []  # neither the template nor an active visitor is swept


def test_memory_helpers_run_on_glibc() -> None:
    import platform

    from cleaning.data.hosted import limit_malloc_arenas, trim_memory

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc only")
    assert limit_malloc_arenas(2) is True
    assert trim_memory(min_interval=0) in (True, False)  # 1 if memory was released
    assert trim_memory(min_interval=3600) is False  # throttled
