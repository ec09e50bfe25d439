"""Two things at once: the workspace lock, recover() leaving live work alone, rescan during apply,
two applies, the store migration that repairs duplicate rows (issue 14)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cleaning.data.files import apply_decisions, export_dataset
from cleaning.data.lock import WorkspaceBusy
from cleaning.data.store import SCHEMA_VERSION
from cleaning.data.workspace import Workspace
from tests.hostile import make_image_tree

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    make_image_tree(tmp_path / "ds", {"cat": 8, "dog": 8})
    return Workspace.open(tmp_path / "ds")


def store_integrity(ws: Workspace) -> None:
    """No path held twice on disk, nothing falsely missing, every item's file where the store says."""
    dup = ws.store.query("SELECT path, COUNT(*) n FROM items WHERE location='root' GROUP BY path HAVING n > 1")
    assert not dup, [tuple(r) for r in dup]
    assert not ws.store.query("SELECT 1 FROM items WHERE location='missing'")
    for r in ws.items_frame().itertuples():
        assert Path(r.abs_path).is_file(), r.path


def test_export_is_complete_when_another_process_opens_the_workspace(ws: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "out"

    def meanwhile(done: int, total: int) -> None:
        if done == 3:  # `info`, `history`, a second app server ... open the workspace: recover() runs
            Workspace.open(ws.root)

    rep = export_dataset(ws, out, progress=meanwhile)
    files = [p for p in out.rglob("*.jpg")]
    assert rep.n_images == 16 == len(files)
    assert len((out / "labels.csv").read_text().splitlines()) == 17


def test_recover_leaves_a_live_apply_alone(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process opening the workspace mid-move (a cross-device copy under way) used to delete
    the live move's ``.partial`` copy, and the apply died with a raw FileNotFoundError."""
    import shutil

    import cleaning.data.files as files

    ids = [ws.store.find_item(f"cat/img_{i}.jpg") for i in range(4)]
    ws.store.record(ids, "delete")
    settled: list[int] = []

    def cross_device_move(src: Path, dst: Path) -> None:
        dst.parent.mkdir(parents=True, exist_ok=True)
        partial = dst.with_name(dst.name + ".partial")
        shutil.copy2(src, partial)
        settled.append(files.recover(Workspace.open(ws.root)))  # e.g. `history` in another terminal
        os.rename(partial, dst)
        os.remove(src)

    monkeypatch.setattr(files, "_move", cross_device_move)
    apply_decisions(ws)
    assert settled == [0, 0, 0, 0]
    store_integrity(ws)
    assert (ws.items_frame().set_index("item_id").loc[ids, "location"] == "quarantine").all()


def test_second_apply_refuses_naming_the_holder_or_waits(ws: Workspace) -> None:
    ids = [ws.store.find_item(f"dog/img_{i}.jpg") for i in range(5)]
    ws.store.record(ids, "relabel", label="cat")
    other = Workspace.open(ws.root)
    refused: list[str] = []
    waited: list[str] = []
    results: list[object] = []

    def meanwhile(done: int, total: int) -> None:
        if done == 2:
            with pytest.raises(WorkspaceBusy) as e:
                apply_decisions(other, wait=0)
            refused.append(str(e.value))
            t = threading.Thread(target=lambda: results.append(
                apply_decisions(other, wait=30, on_wait=waited.append)))
            t.start()
            time.sleep(0.3)
            results.append(t)

    apply_decisions(ws, progress=meanwhile)
    t = results.pop(0)
    assert isinstance(t, threading.Thread)
    t.join(30)
    assert f"pid {os.getpid()}" in refused[0] and "apply" in refused[0] and "since" in refused[0]
    assert waited and "waiting for apply" in waited[0]
    assert results[0].n_changes == 0  # type: ignore[attr-defined]  # the first one did the work
    store_integrity(ws)


def test_rescan_never_runs_inside_an_apply(ws: Workspace) -> None:
    """A rescan that reads the store, then walks while files move, used to mark moved files missing and
    add duplicate rows. Now an apply cannot start while a rescan holds the folder (and vice versa)."""
    ids = [ws.store.find_item(f"cat/img_{i}.jpg") for i in range(3)]
    ids += [ws.store.find_item(f"dog/img_{i}.jpg") for i in range(3)]
    ws.store.record(ids[:3], "delete")
    ws.store.record(ids[3:], "relabel", label="cat")
    other = Workspace.open(ws.root)
    outcome: list[str] = []

    def during_walk(done: int, total: int) -> None:
        if done == 1:
            try:
                apply_decisions(other, wait=0)
                outcome.append("applied")
            except WorkspaceBusy:
                outcome.append("busy")

    ws.refresh(progress=during_walk)
    assert outcome == ["busy"]
    apply_decisions(other)
    ws.refresh()
    store_integrity(ws)
    assert ws.store.query("SELECT COUNT(*) FROM items")[0][0] == 16


def test_a_killed_holder_releases_the_lock(ws: Workspace) -> None:
    code = ("import os, time\nfrom cleaning.data.workspace import Workspace\n"
            f"ws = Workspace.open({str(ws.root)!r})\n"
            "with ws.lock.hold('apply'):\n    print('held', flush=True)\n    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(WorkspaceBusy, match=f"apply \\(pid {proc.pid}"):
            with ws.lock.hold("export", exclusive=False, wait=0.2):
                pass
    finally:
        proc.kill()
        proc.wait()
    with ws.lock.hold("export", exclusive=False, wait=2):
        pass  # the kernel released the dead process's lock


# ---- the store migration ----------------------------------------------------------------------
V1_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE items(item_id TEXT PRIMARY KEY, path TEXT NOT NULL,
    location TEXT NOT NULL DEFAULT 'root' CHECK(location IN ('root','quarantine','missing')), qpath TEXT,
    orig_path TEXT NOT NULL, orig_label TEXT NOT NULL, size INTEGER, mtime_ns INTEGER, width INTEGER,
    height INTEGER, format TEXT, mode TEXT, n_frames INTEGER, sha256 TEXT, phash TEXT,
    source_query TEXT, source_url TEXT, added_at TEXT, first_seen TEXT NOT NULL);
CREATE INDEX items_path ON items(path);
CREATE INDEX items_sha ON items(sha256);
CREATE TABLE bad_files(path TEXT PRIMARY KEY, reason TEXT NOT NULL, kind TEXT NOT NULL);
CREATE TABLE decisions(seq INTEGER PRIMARY KEY AUTOINCREMENT, batch INTEGER NOT NULL,
    item_id TEXT NOT NULL REFERENCES items(item_id),
    action TEXT NOT NULL CHECK(action IN ('relabel','delete','restore','keep')), label TEXT,
    source TEXT NOT NULL, note TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'active' CHECK(state IN ('active','undone','discarded')), changed_at TEXT);
CREATE INDEX decisions_batch ON decisions(batch);
CREATE TABLE file_ops(op_id INTEGER PRIMARY KEY AUTOINCREMENT, item_id TEXT NOT NULL, src TEXT NOT NULL,
    dst TEXT NOT NULL, new_location TEXT NOT NULL, new_path TEXT NOT NULL, new_qpath TEXT,
    status TEXT NOT NULL DEFAULT 'pending' CHECK(status IN ('pending','done','abandoned')),
    created_at TEXT NOT NULL);
INSERT INTO meta VALUES('schema_version', '1');
"""


def _v1_store_with_duplicates(path: Path, root: Path) -> None:
    """A schema-1 store (as the code before issue 14 wrote it) in the state a racing rescan left."""
    c = sqlite3.connect(path)
    c.executescript(V1_SCHEMA)
    c.execute("PRAGMA journal_mode=WAL")
    rows = []
    for p in sorted(root.rglob("*.jpg")):
        rel = p.relative_to(root).as_posix()
        sha = hashlib.sha256(p.read_bytes()).hexdigest()
        rows.append((hashlib.sha1(rel.encode()).hexdigest()[:16], rel, "root", rel, rel.split("/")[0], sha))
    c.executemany("INSERT INTO items(item_id, path, location, orig_path, orig_label, sha256, first_seen) "
                  "VALUES(?,?,?,?,?,?,'2026-01-01')", rows)
    # item A was moved cat/img_0 -> dog/img_0-x by an apply; the racing rescan marked A missing and
    # added B for the same file at the same path (no provenance); A keeps the user's decision
    a = rows[0][0]
    c.execute("UPDATE items SET path='dog/moved.jpg', location='missing', source_url='http://x/a.jpg' "
              "WHERE item_id=?", (a,))
    c.execute("INSERT INTO items(item_id, path, location, orig_path, orig_label, sha256, first_seen) "
              "VALUES('bbbbbbbbbbbbbbbb','dog/moved.jpg','root','dog/moved.jpg','dog',?, '2026-01-02')", (rows[0][5],))
    c.execute("INSERT INTO decisions(batch, item_id, action, label, source, created_at) "
              "VALUES(1, ?, 'relabel', 'dog', 'user', '2026-01-01')", (a,))
    # two rows on disk at one path
    c.execute("INSERT INTO items(item_id, path, location, orig_path, orig_label, sha256, first_seen) "
              "VALUES('cccccccccccccccc',?,'root',?,'cat',?, '2026-01-03')", (rows[1][1], rows[1][1], rows[1][5]))
    c.commit()
    c.close()
    (root / rows[0][1]).rename(root / "dog" / "moved.jpg")


def test_migration_repairs_duplicate_rows_and_adds_the_unique_index(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    make_image_tree(root, {"cat": 3, "dog": 3})
    state = tmp_path / "state"
    state.mkdir()
    _v1_store_with_duplicates(state / "store.sqlite", root)
    ws = Workspace.open(root, state_dir=state)
    assert ws.store.query("SELECT value FROM meta WHERE key='schema_version'")[0][0] == str(SCHEMA_VERSION)
    idx = ws.store.query("SELECT sql FROM sqlite_master WHERE name='items_root_path'")
    assert idx and "UNIQUE" in idx[0][0].upper()
    store_integrity(ws)
    assert ws.store.query("SELECT COUNT(*) FROM items")[0][0] == 6
    a = ws.store.find_item("dog/moved.jpg")
    assert a != "bbbbbbbbbbbbbbbb"  # the original item (with the decision and provenance) survived
    assert ws.store.item(a)["source_url"] == "http://x/a.jpg"
    assert [d.item_id for d in ws.store.history()] == [a]
    with pytest.raises(sqlite3.IntegrityError):
        with ws.store.transaction() as c:
            c.execute("UPDATE items SET path='dog/moved.jpg' WHERE item_id!=? AND location='root'", (a,))


def test_rescan_keeps_provenance_when_the_same_bytes_come_back(ws: Workspace) -> None:
    """INSERT OR REPLACE used to wipe an item's provenance (and its quarantine location) when a copy
    of a quarantined file reappeared at its original path."""
    iid = ws.store.find_item("cat/img_0.jpg")
    ws.store.set_provenance(iid, query="cats", url="http://example.org/cat.jpg")
    data = (ws.root / "cat/img_0.jpg").read_bytes()
    ws.store.record([iid], "delete")
    apply_decisions(ws)
    (ws.root / "cat/img_0.jpg").write_bytes(data)  # e.g. a cross-device restore died after the copy
    ws.refresh()
    row = ws.store.item(iid)
    assert row["source_url"] == "http://example.org/cat.jpg" and row["location"] == "quarantine"
    assert (ws.state_dir / row["qpath"]).exists()
    assert ws.store.query("SELECT COUNT(*) FROM items")[0][0] == 17  # the copy is a new item


def test_cross_device_restore_killed_between_copy_and_remove_is_finished(ws: Workspace) -> None:
    iid = ws.store.find_item("dog/img_3.jpg")
    digest = hashlib.sha256((ws.root / "dog/img_3.jpg").read_bytes()).hexdigest()
    ws.store.record([iid], "delete")
    apply_decisions(ws)
    ws.store.record([iid], "restore")
    code = ("import os, errno, cleaning.data.files as f\n"
            "from cleaning.data.workspace import Workspace\n"
            "real = os.rename\n"
            "def rename(a, b):\n"
            "    if str(a).endswith('.partial'):\n"
            "        real(a, b); os._exit(9)  # copied and renamed into place, source not removed yet\n"
            "    raise OSError(errno.EXDEV, 'cross-device link')\n"
            "f.os.rename = rename\n"
            f"f.apply_decisions(Workspace.open({str(ws.root)!r}))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO)
    assert proc.returncode == 9
    again = Workspace.open(ws.root)
    row = again.store.item(iid)
    assert row["location"] == "root" and row["path"] == "dog/img_3.jpg"
    copies = [p for p in list(again.root.rglob("*.jpg")) + list(again.quarantine_dir.rglob("*.jpg"))
              if hashlib.sha256(p.read_bytes()).hexdigest() == digest]
    assert copies == [again.root / "dog/img_3.jpg"]  # exactly once, nothing untracked in quarantine
