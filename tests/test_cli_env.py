"""Environmental failures end in one ``error:`` line with a hint and exit status 2, never a traceback:
a read-only state folder (``history`` still works), a read-only ROOT, a full disk, a corrupt store.

Read-only and full file systems are real: each command runs in its own mount namespace (``unshare -m``,
root only) with a read-only bind mount or a tiny tmpfs.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cleaning.data.workspace import Workspace
from tests.hostile import make_image_tree

REPO = Path(__file__).resolve().parent.parent
PY = shlex.quote(sys.executable)


def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


needs_ns = pytest.mark.skipif(not _can_unshare(), reason="needs root and unshare -m for real read-only mounts")


def in_namespace(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def ro(path: Path) -> str:
    p = shlex.quote(str(path))
    return f"mount --bind {p} {p} && mount -o remount,bind,ro {p}"


def cli(*args: object) -> str:
    return f"{PY} -m cleaning " + " ".join(shlex.quote(str(a)) for a in args)


def one_error_line(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


def hashes(*folders: Path) -> list[str]:
    return sorted(hashlib.sha256(p.read_bytes()).hexdigest() for f in folders for p in f.rglob("*.jpg"))


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    make_image_tree(tmp_path / "ds", {"cat": 3, "dog": 3})
    w = Workspace.open(tmp_path / "ds")
    w.store.record([w.store.find_item("cat/img_0.jpg")], "delete", note="blurry")
    return w


@needs_ns
def test_history_works_on_a_read_only_state_folder_and_writes_refuse(ws: Workspace) -> None:
    hist = in_namespace(f"{ro(ws.state_dir)} && {cli('history', ws.root)}")
    assert hist.returncode == 0, hist.stderr
    assert "delete" in hist.stdout and "blurry" in hist.stdout
    info = in_namespace(f"{ro(ws.state_dir)} && {cli('info', ws.root)}")
    assert info.returncode == 0 and "6 images, 1 deleted" in info.stdout, info.stderr
    rel = in_namespace(f"{ro(ws.state_dir)} && {cli('relabel', ws.root, 'dog/img_0.jpg', 'cat')}")
    one_error_line(rel, "read-only")
    assert len(ws.store.history()) == 1


@needs_ns
def test_apply_on_a_read_only_root_loses_nothing(ws: Workspace) -> None:
    before = hashes(ws.root)
    proc = in_namespace(f"{ro(ws.root)} && {cli('apply', ws.root)}")
    one_error_line(proc, "read-only")
    again = Workspace.open(ws.root)
    assert hashes(again.root, again.quarantine_dir) == before  # every file exactly once
    assert not again.store.query("SELECT 1 FROM file_ops WHERE status='pending'")
    assert len(again.items_frame()) == 6


@needs_ns
def test_full_disk_is_one_error_line(tmp_path: Path) -> None:
    make_image_tree(tmp_path / "src" / "ds", {"cat": 3, "dog": 3})
    disk = tmp_path / "disk"
    disk.mkdir()
    d = shlex.quote(str(disk))
    script = (f"mount -t tmpfs -o size=600k tmpfs {d} && cp -r {shlex.quote(str(tmp_path / 'src' / 'ds'))} {d}/ds "
              f"&& {cli('info', disk / 'ds')} >/dev/null && (dd if=/dev/zero of={d}/fill bs=4k 2>/dev/null; true) "
              f"&& {cli('delete', disk / 'ds', 'cat/img_0.jpg', 'cat/img_1.jpg', 'dog/img_0.jpg')}")
    one_error_line(in_namespace(script), "full")


def test_corrupt_store_is_one_error_line(ws: Workspace) -> None:
    ws.store.close()
    for suffix in ("", "-wal", "-shm"):
        Path(str(ws.state_dir / "store.sqlite") + suffix).unlink(missing_ok=True)
    (ws.state_dir / "store.sqlite").write_bytes(b"this is not a database " * 200)
    for args in (("history", ws.root), ("apply", ws.root), ("info", ws.root)):
        proc = subprocess.run([sys.executable, "-m", "cleaning", *map(str, args)], cwd=REPO, capture_output=True,
                              text=True, timeout=60)
        one_error_line(proc, "corrupt")
