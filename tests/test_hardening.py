"""Regression tests for the smaller findings of issue 14: label bytes / NFC / invisible characters, CSV
formula escaping, stale part files, per-image provenance, export refusing swapped files, Netpbm images."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from cleaning.data.files import apply_decisions, export_dataset
from cleaning.data.tree import validate_label, walk_tree
from cleaning.data.workspace import Workspace
from cleaning.errors import ExportError, LabelError
from tests.hostile import make_image_tree

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    make_image_tree(tmp_path / "ds", {"cat": 3, "dog": 3})
    return Workspace.open(tmp_path / "ds")


# ---- labels --------------------------------------------------------------------------------------
def test_label_is_checked_in_bytes_not_characters(ws: Workspace) -> None:
    emoji = "\U0001f600" * 70  # 70 characters, 280 bytes: passed the old 100-character check
    with pytest.raises(LabelError, match="bytes"):
        validate_label(emoji)
    with pytest.raises(LabelError, match="bytes"):
        ws.store.record([ws.store.find_item("cat/img_0.jpg")], "relabel", label=emoji)
    assert validate_label("\u00e9" * 100) == "\u00e9" * 100  # 200 bytes: fine


def test_collision_suffix_never_pushes_a_name_over_the_limit(ws: Workspace) -> None:
    long = "a" * 251 + ".jpg"  # 255 bytes: the longest name the file system allows
    (ws.root / "cat" / "img_0.jpg").rename(ws.root / "cat" / long)
    (ws.root / "dog" / long).write_bytes((ws.root / "dog" / "img_0.jpg").read_bytes())
    (ws.root / "dog" / "img_0.jpg").unlink()
    ws.refresh()
    ws.store.record([ws.store.find_item(f"dog/{long}")], "relabel", label="cat")
    plan = apply_decisions(ws)
    assert len(plan.move) == 1
    names = [p.name for p in (ws.root / "cat").iterdir()]
    assert len(names) == 4 and all(len(n.encode()) <= 255 for n in names)
    assert export_dataset(ws, ws.root.parent / "out").n_images == 6


def test_labels_are_nfc_and_refuse_invisible_characters(ws: Workspace) -> None:
    nfd, nfc = "cafe\u0301", "caf\u00e9"
    assert validate_label(nfd) == nfc
    iid = ws.store.find_item("cat/img_0.jpg")
    ws.store.record([iid], "relabel", label=nfd)
    assert ws.store.current()[iid].label == nfc
    assert ws.store.record([iid], "relabel", label=nfc) is None  # the same label, not a second class
    for bad in ("gnp.exe\u202e", "ca\u200bt", "\u2066dog", "do\u200dg", "cat\ufeff", "a\u2028b"):
        with pytest.raises(LabelError, match="invisible or control"):
            validate_label(bad)


def test_nfd_and_nfc_folders_are_one_class(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    make_image_tree(root, {"caf\u00e9": 2, "dog": 2})
    (root / "cafe\u0301").mkdir()
    (root / "dog" / "img_1.jpg").rename(root / "cafe\u0301" / "x.jpg")
    ws = Workspace.open(root)
    assert ws.vocab == ["caf\u00e9", "dog"]
    apply_decisions(ws)  # the look-alike folder's image moves into the one class folder
    assert sorted(p.name for p in (root / "caf\u00e9").iterdir()) == ["img_0.jpg", "img_1.jpg", "x.jpg"]


# ---- CSV -----------------------------------------------------------------------------------------
def test_labels_csv_escapes_spreadsheet_formulas(ws: Workspace, tmp_path: Path) -> None:
    iid = ws.store.find_item("cat/img_0.jpg")
    ws.store.set_provenance(iid, query="=HYPERLINK(\"http://evil\",\"x\")", url="@SUM(1+1)")
    ws.store.record([ws.store.find_item("dog/img_0.jpg")], "relabel", label="+cmd")
    rep = export_dataset(ws, tmp_path / "out")
    rows = list(csv.DictReader(open(rep.out / "labels.csv", encoding="utf-8")))
    mine = next(r for r in rows if r["item_id"] == iid)
    assert mine["source_query"].startswith("'=") and mine["source_url"] == "'@SUM(1+1)"
    plus = [r for r in rows if r["label"].endswith("cmd")]
    assert plus and all(r["label"] == "'+cmd" and r["path"].startswith("'+cmd/") for r in plus)
    for r in rows:
        for v in r.values():
            assert not v.startswith(("=", "+", "-", "@")), v


def test_scan_csv_escapes_formulas_but_not_numbers(tmp_path: Path) -> None:
    from cleaning.cli.scan import write_csv

    df = pd.DataFrame({"path": ["-x/a.jpg", "ok/b.jpg"], "reason": ["=1+1", "fine"], "severity": [-0.5, 0.25]})
    write_csv(df, ["path", "reason", "severity"], str(tmp_path / "x.csv"))
    back = pd.read_csv(tmp_path / "x.csv", keep_default_na=False)
    assert list(back["path"]) == ["'-x/a.jpg", "ok/b.jpg"] and list(back["reason"]) == ["'=1+1", "fine"]
    assert list(back["severity"]) == [-0.5, 0.25]


# ---- scraping leftovers and provenance -------------------------------------------------------------
def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_part_files_of_a_killed_scrape_are_removed_on_next_open(ws: Workspace) -> None:
    dead = ws.root / "cat" / f".0123456789abcdef.jpg.{_dead_pid()}-140000.part"
    old = ws.root / "dog" / ".fedcba9876543210.jpg.139999.part"  # naming before issue 14 (no pid)
    live = ws.root / "dog" / f".aaaaaaaaaaaaaaaa.jpg.{os.getpid()}-1.part"  # a scrape running right now
    for p in (dead, old, live):
        p.write_bytes(b"\xff\xd8half a jpeg")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    Workspace.open(ws.root)
    assert not dead.exists() and not old.exists() and live.exists()


def test_killed_scrape_keeps_query_and_url_for_every_image(tmp_path: Path) -> None:
    from tests.httpserver import image_server

    root = tmp_path / "ds"
    make_image_tree(root, {"cat": 1})
    names = ["cat.jpg", "coffee.png", "astronaut.webp", "rocket.jpg"]
    with image_server() as srv:
        urls = [srv.url(f"/img/{n}") for n in names]
        code = ("import os, sys\nimport cleaning.scrape.run as r\nfrom cleaning.scrape.fetch import DownloadConfig\n"
                "from cleaning.data.workspace import Workspace\n"
                "def killed(ws, outcomes):\n    os._exit(9)  # kill -9 before the run's end\n"
                "r._finish = killed\n"
                f"ws = Workspace.open({str(root)!r})\n"
                f"r.download_url_list(ws, 'web', {urls!r}, config=DownloadConfig(workers=2, "
                "allowed_networks=('127.0.0.0/8',)))\n")
        proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 9, proc.stderr
        from cleaning.scrape.fetch import DownloadConfig
        from cleaning.scrape.run import download_url_list

        ws = Workspace.open(root)
        rep = download_url_list(ws, "web", urls, config=DownloadConfig(allowed_networks=("127.0.0.0/8",)))
    assert {o.status for o in rep.outcomes} == {"skipped"}  # resume fetched nothing again
    df = ws.items_frame()
    web = df[df["label"] == "web"]
    assert len(web) == 4
    assert sorted(web["source_url"]) == sorted(urls)


# ---- export refuses what changed since the scan -------------------------------------------------
def test_export_does_not_follow_a_file_swapped_for_a_symlink(ws: Workspace, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the data set")
    victim = ws.root / "cat" / "img_1.jpg"
    victim.unlink()
    victim.symlink_to(secret)
    with pytest.raises(ExportError, match="symbolic link"):
        export_dataset(ws, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".cleaning-export-partial")]


def test_export_refuses_a_file_whose_bytes_changed_since_the_scan(ws: Workspace, tmp_path: Path) -> None:
    victim = ws.root / "dog" / "img_2.jpg"
    victim.write_bytes((ws.root / "cat" / "img_0.jpg").read_bytes())
    with pytest.raises(ExportError, match="sha256"):
        export_dataset(ws, tmp_path / "out")
    ws.refresh()
    assert export_dataset(ws, tmp_path / "out").n_images == 6


# ---- images ----------------------------------------------------------------------------------------
def test_netpbm_images_are_images(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    (root / "grey").mkdir(parents=True)
    base = Image.effect_mandelbrot((48, 40), (-2, -1.2, 1, 1.2), 60)
    base.convert("RGB").save(root / "grey" / "a.ppm")
    base.save(root / "grey" / "b.pgm")
    base.convert("1").save(root / "grey" / "c.pbm")
    res = walk_tree(root)
    assert not res.bad, res.bad
    assert sorted(im.path for im in res.images) == ["grey/a.ppm", "grey/b.pgm", "grey/c.pbm"]
    assert {im.info.format for im in res.images} == {"PPM"}


# ---- downloads -----------------------------------------------------------------------------------
@pytest.mark.parametrize("addr, words", [
    ("2002:7f00:1::", "6to4 address of 127.0.0.1"),
    ("2002:a9fe:a9fe::1", "cloud metadata"),
    ("2002:c0a8:0101::", "6to4 address of 192.168.1.1"),
    ("64:ff9b::7f00:1", "NAT64 address of 127.0.0.1"),
    ("64:ff9b::a00:1", "NAT64 address of 10.0.0.1"),
    ("64:ff9b:1::a00:1", "NAT64"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
])
def test_ssrf_guard_sees_ipv4_inside_ipv6(addr: str, words: str) -> None:
    import ipaddress

    from cleaning.scrape.fetch import blocked_reason

    why = blocked_reason(ipaddress.ip_address(addr))
    assert why is not None and words in why, why


def test_ssrf_guard_still_allows_public_6to4_and_metadata_stays_refused() -> None:
    import ipaddress

    from cleaning.scrape.fetch import blocked_reason

    assert blocked_reason(ipaddress.ip_address("2002:0808:0808::1")) is None  # 8.8.8.8
    assert blocked_reason(ipaddress.ip_address("64:ff9b::a9fe:a9fe"), allow_private=True) is not None


def test_server_dripping_its_headers_is_a_timeout_not_an_empty_body() -> None:
    import socket
    import threading

    from cleaning.scrape.fetch import DownloadConfig, Rejected, decode_image_bytes, fetch_bytes

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    stop = threading.Event()

    def drip() -> None:
        conn, _ = srv.accept()
        try:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            for b in b"Content-Type: image/jpeg\r\nX-Slow: " + b"a" * 200:
                if stop.wait(0.1):
                    break
                conn.sendall(bytes([b]))
        except OSError:
            pass
        finally:
            conn.close()

    t = threading.Thread(target=drip, daemon=True)
    t.start()
    cfg = DownloadConfig(timeout=1.0, total_timeout=1.5, allowed_networks=("127.0.0.0/8",))
    t0 = time.monotonic()
    try:
        with pytest.raises(Rejected) as e:
            decode_image_bytes(fetch_bytes(f"http://127.0.0.1:{srv.getsockname()[1]}/x.jpg", config=cfg).body,
                               config=cfg)
    finally:
        stop.set()
        srv.close()
    assert "timed out" in e.value.reason and e.value.transient
    assert time.monotonic() - t0 < 5


def test_decisions_csv_download_escapes_formulas(ws: Workspace) -> None:
    from cleaning.data.bundle import csv_bytes, decisions_frame

    ws.store.record([ws.store.find_item("cat/img_2.jpg")], "delete", note="=cmd|' /C calc'!A0")
    text = csv_bytes(decisions_frame(ws)).decode()
    assert "'=cmd" in text and ",=cmd" not in text
