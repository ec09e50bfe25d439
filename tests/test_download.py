"""The safe downloader against a real HTTP server on 127.0.0.1: hostile cases, SSRF guard, dedupe, resume."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from cleaning.scrape import fetch as download
from cleaning.scrape.fetch import (
    DownloadConfig,
    FetchLog,
    KnownImages,
    Rejected,
    blocked_reason,
    check_host,
    decode_image_bytes,
    fetch_bytes,
)
from cleaning.scrape.run import DownloadJob, download_all
from tests.httpserver import CAP, GOOD, HOSTILE, ImageServer, encode, image_server, photo

pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")

# the loopback server is reachable through an explicit allow-list, so "private" still means refused
CFG = DownloadConfig(timeout=0.5, total_timeout=1, max_bytes=CAP, allowed_networks=("127.0.0.0/8",))


@pytest.fixture(scope="module")
def srv() -> Iterator[ImageServer]:
    with image_server() as s:
        yield s


@pytest.fixture
def sockets(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every TCP connection the downloader opens, as (ip, port)."""
    opened: list[tuple[str, int]] = []
    real = download._open_socket

    def spy(ip: str, port: int, timeout: float):  # noqa: ANN202
        opened.append((ip, port))
        return real(ip, port, timeout)

    monkeypatch.setattr(download, "_open_socket", spy)
    return opened


def fake_resolver(table: dict[str, list[str]]):  # noqa: ANN201
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]
    return resolve


# --- SSRF guard ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ip", ["10.0.0.1", "169.254.169.254", "127.0.0.1", "192.168.1.20", "172.16.5.4",
                                "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "fd00::1", "fe80::1",
                                "::ffff:10.0.0.1", "fd00:ec2::254"])
def test_guard_refuses_before_any_connection(srv: ImageServer, sockets: list, ip: str) -> None:
    before = srv.connections
    with pytest.raises(Rejected, match="blocked address") as e:
        fetch_bytes(f"http://evil.test:{srv.port}/img/cat.jpg", config=DownloadConfig(timeout=0.5),
                    resolver=fake_resolver({"evil.test": [ip]}))
    assert "SSRF" in e.value.reason
    assert sockets == [] and srv.connections == before


def test_guard_refuses_if_any_answer_is_private(sockets: list) -> None:
    with pytest.raises(Rejected, match="10.0.0.1"):
        fetch_bytes("http://mixed.test/x.jpg", resolver=fake_resolver({"mixed.test": ["93.184.216.34", "10.0.0.1"]}))
    assert sockets == []


def test_literal_loopback_url_refused_by_default(srv: ImageServer, sockets: list) -> None:
    before = srv.connections
    with pytest.raises(Rejected, match="loopback"):
        fetch_bytes(srv.url("/img/cat.jpg"))
    assert sockets == [] and srv.connections == before


def test_metadata_refused_even_when_private_hosts_allowed(sockets: list) -> None:
    cfg = DownloadConfig(allow_private_hosts=True)
    with pytest.raises(Rejected, match="cloud metadata"):
        fetch_bytes("http://169.254.169.254/latest/meta-data/", config=cfg)
    assert blocked_reason(ipaddress.ip_address("10.0.0.1"), allow_private=True) is None
    assert sockets == []


def test_blocked_reason_table() -> None:
    ip = ipaddress.ip_address
    assert blocked_reason(ip("93.184.216.34")) is None
    assert blocked_reason(ip("2606:4700::1111")) is None
    assert blocked_reason(ip("10.1.2.3")) == "private"
    assert blocked_reason(ip("127.0.0.2")) == "loopback"
    assert blocked_reason(ip("169.254.1.1")) == "link-local"
    assert blocked_reason(ip("::ffff:127.0.0.1")) == "loopback"
    assert blocked_reason(ip("127.0.0.1"), allowed_networks=["127.0.0.0/8"]) is None


def test_connects_to_the_checked_ip_with_original_host_header(srv: ImageServer, sockets: list) -> None:
    """The name resolves once, through the guard; the socket goes to exactly that IP (no rebinding)."""
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"] if len(calls) == 1 else ["10.0.0.1"]  # a rebinding attacker's second answer

    got = fetch_bytes(f"http://images.test:{srv.port}/img/cat.jpg", config=CFG, resolver=resolver)
    assert got.body[:3] == b"\xff\xd8\xff"
    assert calls == ["images.test"] and sockets == [("127.0.0.1", srv.port)]


def test_redirect_to_private_name_refused_before_connecting(srv: ImageServer, sockets: list) -> None:
    resolver = fake_resolver({"intranet.test": ["192.168.1.5"]})
    with pytest.raises(Rejected, match="blocked address 192.168.1.5"):
        fetch_bytes(srv.url("/redirect/intranet"), config=CFG, resolver=resolver)
    assert sockets == [("127.0.0.1", srv.port)]  # the first hop only


def test_unresolvable_host_and_bad_schemes(sockets: list) -> None:
    with pytest.raises(Rejected, match="cannot resolve") as e:
        fetch_bytes("http://nowhere.test/x.jpg", resolver=fake_resolver({}))
    assert e.value.transient
    for url, why in (("file:///etc/passwd", "scheme"), ("ftp://example.com/x.jpg", "scheme"),
                     ("http:///x.jpg", "no host"), ("http://[::1/x", "malformed"), ("gopher://x", "scheme")):
        with pytest.raises(Rejected, match=why):
            fetch_bytes(url, resolver=fake_resolver({}))
    assert sockets == []


def test_check_host_returns_first_allowed_ip() -> None:
    assert check_host("a.test", 80, config=DownloadConfig(),
                      resolver=fake_resolver({"a.test": ["93.184.216.34", "93.184.216.35"]})) == "93.184.216.34"


# --- hostile downloads --------------------------------------------------------------------------


def test_every_hostile_case_rejected_with_its_reason_and_good_ones_kept(srv: ImageServer, tmp_path: Path) -> None:
    jobs = [DownloadJob(srv.url(p), "thing") for p in [*HOSTILE, *GOOD]]
    t0 = time.monotonic()
    outcomes = download_all(jobs, tmp_path, config=CFG)
    assert time.monotonic() - t0 < 5
    by_path = {o.url.split(str(srv.port), 1)[1]: o for o in outcomes}
    assert len(by_path) == len(jobs)
    for path, phrase in HOSTILE.items():
        o = by_path[path]
        assert o.status == "rejected", (path, o)
        assert phrase.lower() in (o.reason or "").lower(), (path, o.reason)
    for path in GOOD:
        o = by_path[path]
        assert o.status == "downloaded", (path, o.reason)
        saved = tmp_path / o.path
        data = saved.read_bytes()
        assert saved.name == hashlib.sha256(data).hexdigest()[:16] + ".jpg"
        with Image.open(saved) as im:
            assert im.format == "JPEG" and im.mode == "RGB" and min(im.size) >= 32
    assert by_path["/go/hubble"].status == "downloaded"  # valid image behind a redirect
    with Image.open(tmp_path / by_path["/img/rotated.jpg"].path) as im:
        assert im.size == (60, 120)  # EXIF orientation 6 applied: stored 120×60
    assert not any(p.name.startswith(".") for p in tmp_path.rglob("*"))  # no temp files left


def test_decode_rejects_type_lies_and_keeps_bytes_over_headers() -> None:
    jpeg = encode(photo("coffee"))
    img = decode_image_bytes(jpeg)
    assert img.source_format == "JPEG" and img.width == 160
    assert decode_image_bytes(encode(photo("coffee"), "PNG")).source_format == "PNG"
    with pytest.raises(Rejected, match="HTML"):
        decode_image_bytes(b"  <html><head></head></html>")
    with pytest.raises(Rejected, match="truncated"):
        decode_image_bytes(jpeg[: len(jpeg) // 3])
    with pytest.raises(Rejected, match="corrupt|truncated"):
        decode_image_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)


# --- duplicates ---------------------------------------------------------------------------------


def test_duplicates_under_other_urls_exact_and_near(srv: ImageServer, tmp_path: Path) -> None:
    first = download_all([DownloadJob(srv.url("/img/cat.jpg"), "cat")], tmp_path, config=CFG)
    assert first[0].status == "downloaded"
    known = KnownImages()
    known.add([hashlib.sha256((tmp_path / first[0].path).read_bytes()).hexdigest()], None,
              ref=first[0].path, label="cat")
    out = download_all([DownloadJob(srv.url(p), "cat") for p in ("/img/cat-copy.jpg", "/img/cat.jpg")],
                       tmp_path / "again", config=CFG, known=known)
    assert {o.status for o in out} == {"duplicate"}
    assert all(o.kind == "exact" and o.duplicate_of == first[0].path for o in out)


def test_near_duplicate_in_another_class_is_a_recorded_conflict(srv: ImageServer, tmp_path: Path) -> None:
    jobs = [DownloadJob(srv.url("/img/cat.jpg"), "cat")]
    known = KnownImages(max_distance=CFG.phash_max_distance)
    assert download_all(jobs, tmp_path, config=CFG, known=known)[0].status == "downloaded"
    out = download_all([DownloadJob(srv.url("/img/cat-near.jpg"), "dog")], tmp_path, config=CFG, known=known)
    o = out[0]
    assert o.status == "duplicate" and o.kind == "near" and o.distance <= CFG.phash_max_distance
    assert o.duplicate_label == "cat" and o.label == "dog"
    assert not (tmp_path / "dog").exists()  # not kept in both classes


def test_same_image_twice_in_one_parallel_run_is_kept_once(srv: ImageServer, tmp_path: Path) -> None:
    urls = [srv.url("/img/cat.jpg"), srv.url("/img/cat-copy.jpg"), srv.url("/img/cat-near.jpg")]
    out = download_all([DownloadJob(u, "cat") for u in urls], tmp_path, config=CFG)
    assert sorted(o.status for o in out) == ["downloaded", "duplicate", "duplicate"]
    assert len(list((tmp_path / "cat").iterdir())) == 1


def test_known_images_from_items_frame_includes_deleted() -> None:
    im = photo("rocket")
    ph = download.imagehash.phash(im)
    frame = pd.DataFrame([{"path": "rocket/a.jpg", "label": "rocket", "sha256": "ab" * 32, "phash": str(ph),
                           "deleted": True},
                          {"path": "x/b.jpg", "label": "x", "sha256": "cd" * 32, "phash": None, "deleted": False}])
    known = KnownImages.from_frame(frame)
    m = known.match(["zz"], int(str(ph), 16) ^ 0b101)  # 2 bits off
    assert m is not None and m.kind == "near" and m.distance == 2 and m.deleted and m.ref == "rocket/a.jpg"
    assert known.match(["cd" * 32], None).ref == "x/b.jpg"
    assert known.match(["zz"], int(str(ph), 16) ^ 0xFFFF) is None


# --- resume, targets, throughput ----------------------------------------------------------------


def test_rerun_does_not_fetch_again(srv: ImageServer, tmp_path: Path) -> None:
    paths = ["/img/coffee.png", "/404.jpg", "/500.jpg", "/go/hubble", "/empty.jpg"]
    log_path = tmp_path / "state" / "scrape_log.jsonl"
    jobs = [DownloadJob(srv.url(p), "a") for p in paths]
    first = download_all(jobs, tmp_path / "root", config=CFG, log=FetchLog(log_path))
    assert sorted(o.status for o in first) == ["downloaded", "downloaded", "rejected", "rejected", "rejected"]
    hits = dict(srv.hits)
    second = download_all(jobs, tmp_path / "root", config=CFG, log=FetchLog(log_path))
    assert {o.status for o in second} == {"skipped"} and dict(srv.hits) == hits
    assert "already downloaded" in next(o.reason for o in second if o.url.endswith("coffee.png"))
    # transient failures (5xx, timeouts) can be retried on request; the rest stay skipped
    third = download_all(jobs, tmp_path / "root", config=CFG, log=FetchLog(log_path), retry_transient=True)
    assert [o.url for o in third if o.status != "skipped"] == [srv.url("/500.jpg")]
    with open(log_path, "a") as f:
        f.write('{"url": "torn')  # a crash mid-write must not break the next run
    assert len(FetchLog(log_path)) == len(paths)
    assert all(json.loads(line)["url"] for line in log_path.read_text().splitlines()[:-1])


def test_per_class_target_stops_early_and_leaves_the_rest_unfetched(srv: ImageServer, tmp_path: Path) -> None:
    log = FetchLog(None)
    jobs = [DownloadJob(srv.url(p), "a") for p in GOOD]
    out = download_all(jobs, tmp_path, config=DownloadConfig(**{**CFG.__dict__, "workers": 2}),
                       targets={"a": 3}, log=log)
    assert sum(o.status == "downloaded" for o in out) == 3
    assert len(list((tmp_path / "a").iterdir())) == 3
    assert len(log) < len(GOOD)  # untouched URLs are not marked as seen


def test_stop_event_cancels_queued_downloads(srv: ImageServer, tmp_path: Path) -> None:
    stop = threading.Event()
    stop.set()
    assert download_all([DownloadJob(srv.url("/img/cat.jpg"), "a")], tmp_path, config=CFG, stop=stop) == []


def test_bad_label_refused(tmp_path: Path) -> None:
    from cleaning.errors import LabelError

    for bad in ("../up", "a/b", "", ".hidden"):
        with pytest.raises(LabelError):
            download_all([DownloadJob("http://x.test/a.jpg", bad)], tmp_path, config=CFG)
