"""Search providers, query templates, backoff, scraping runs against a workspace, the CLI and the page."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cleaning.errors import CleaningError, LabelError
from cleaning.scrape.fetch import DownloadConfig
from cleaning.scrape.run import ScrapeProgress, download_url_list, run_in_background, scrape_classes
from cleaning.scrape.search import (
    DdgsProvider,
    FakeProvider,
    SearchError,
    SearchResult,
    build_queries,
    check_template,
    parse_classes,
    plan_queries,
    results_from_records,
    retry_with_backoff,
    search_candidates,
)
from tests.httpserver import CAP, ImageServer, encode, image_server, photo

pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
CFG = DownloadConfig(timeout=0.5, total_timeout=3, max_bytes=CAP, allowed_networks=("127.0.0.0/8",))

# the shape ddgs 9.x returns from DDGS().images(): DuckDuckGo gives ints, Bing strings for the size
DDG_RECORDS = [
    {"title": "Grizzly bear - Wikipedia", "image": "https://upload.example.org/grizzly.jpg",
     "thumbnail": "https://tse2.mm.bing.net/th?id=OIP.x", "url": "https://en.wikipedia.org/wiki/Grizzly_bear",
     "height": 1200, "width": 1800, "source": "Bing"},
    {"title": "A bear", "image": "https://img.example.com/b.png", "thumbnail": "", "url": "https://example.com/b",
     "height": "600", "width": "800", "source": "Bing"},
    {"title": "broken", "image": "", "url": "https://example.com/c"},
    {"title": "data uri", "image": "data:image/png;base64,AAAA", "url": "https://example.com/d"},
    {"title": "dup", "image": "https://img.example.com/b.png", "url": "https://example.com/e"},
]


@pytest.fixture(scope="module")
def srv() -> Iterator[ImageServer]:
    with image_server() as s:
        yield s


# --- queries ------------------------------------------------------------------------------------


def test_build_queries_with_templates_and_negative_terms() -> None:
    assert build_queries("dog", ["{label}", "{label} photo"], ["sun", "-cartoon", "line drawing", " "]) == [
        'dog -sun -cartoon -"line drawing"', 'dog photo -sun -cartoon -"line drawing"']
    assert build_queries("grizzly bear", ["{label}", "{label}  "]) == ["grizzly bear"]  # same query once
    assert plan_queries(["a", "b"], ["wild {label}"]) == {"a": ["wild a"], "b": ["wild b"]}


@pytest.mark.parametrize("bad", ["photo", "{label} {other}", "{0} photo", "{label", "{}"])
def test_bad_templates_refused(bad: str) -> None:
    with pytest.raises(CleaningError, match="template"):
        check_template(bad)


def test_parse_classes_validates_labels() -> None:
    assert parse_classes("grizzly bear, black bear\nteddy bear,grizzly bear") == [
        "grizzly bear", "black bear", "teddy bear"]
    for bad in ("../etc", "a/b", ".hidden", "x\\y"):
        with pytest.raises(LabelError):
            parse_classes(bad)
    with pytest.raises(CleaningError, match="no class"):
        parse_classes(" , ")


def test_search_candidates_interleaves_queries_without_repeats() -> None:
    fake = FakeProvider({"q1": ["u1", "u2", "u3"], "q2": ["u2", "v1"]})
    hits = search_candidates(fake, ["q1", "q2"], 6)
    assert [h.url for h in hits] == ["u1", "u2", "v1", "u3"]
    assert fake.calls == [("q1", 3), ("q2", 3)]
    assert hits[2].query == "q2"


# --- the ddgs adapter, without the network --------------------------------------------------------


def test_results_from_ddgs_records() -> None:
    res = results_from_records(DDG_RECORDS, "grizzly bear")
    assert [r.url for r in res] == ["https://upload.example.org/grizzly.jpg", "https://img.example.com/b.png"]
    assert res[0] == SearchResult(url="https://upload.example.org/grizzly.jpg", title="Grizzly bear - Wikipedia",
                                  source_page="https://en.wikipedia.org/wiki/Grizzly_bear",
                                  thumbnail="https://tse2.mm.bing.net/th?id=OIP.x", width=1800, height=1200,
                                  query="grizzly bear")
    assert (res[1].width, res[1].height) == (800, 600)


@pytest.fixture
def ddgs_images(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """Replace ``DDGS.images`` with a script of answers/exceptions; returns the list of calls."""
    import ddgs.ddgs

    calls: list[tuple[str, dict]] = []
    script: list = []

    def images(self, query: str, **kw):  # noqa: ANN001, ANN202
        calls.append((query, kw))
        step = script.pop(0) if script else DDG_RECORDS
        if isinstance(step, BaseException):
            raise step
        return step

    monkeypatch.setattr(ddgs.ddgs.DDGS, "images", images)
    return calls, script


def test_ddgs_provider_maps_records_and_passes_options(ddgs_images) -> None:
    calls, _ = ddgs_images
    res = DdgsProvider(region="uk-en", safesearch="on").search_images("grizzly bear", 1)
    assert [r.url for r in res] == ["https://upload.example.org/grizzly.jpg"]
    assert calls == [("grizzly bear", {"max_results": 1, "region": "uk-en", "safesearch": "on"})]


def test_ddgs_rate_limit_retried_with_exponential_backoff(ddgs_images) -> None:
    from ddgs.exceptions import RatelimitException

    calls, script = ddgs_images
    script += [RatelimitException("202 Ratelimit"), RatelimitException("202 Ratelimit")]
    slept: list[float] = []
    notes: list[int] = []
    p = DdgsProvider(base_delay=0.01, jitter=0, sleep=slept.append, on_retry=lambda n, d, e: notes.append(n))
    assert len(p.search_images("bear", 10)) == 2
    assert slept == [0.01, 0.02] and notes == [1, 2] and len(calls) == 3


def test_ddgs_rate_limit_gives_up_with_a_clear_message(ddgs_images) -> None:
    from ddgs.exceptions import RatelimitException

    calls, script = ddgs_images
    script += [RatelimitException("202 Ratelimit")] * 5
    slept: list[float] = []
    p = DdgsProvider(retries=3, base_delay=0.001, max_delay=0.003, sleep=slept.append)
    with pytest.raises(SearchError, match="rate limited") as e:
        p.search_images("bear", 10)
    assert "run again" in (e.value.hint or "") and len(calls) == 4
    assert len(slept) == 3 and all(0.001 <= s <= 0.003 * 1.25 for s in slept)


def test_ddgs_network_error_and_no_results(ddgs_images) -> None:
    from ddgs.exceptions import DDGSException, TimeoutException

    _, script = ddgs_images
    fast = {"retries": 1, "base_delay": 0, "sleep": lambda s: None}
    script += [DDGSException("DNSError: error resolving DNS")] * 2
    with pytest.raises(SearchError, match="cannot reach the search service .DNSError; offline"):
        DdgsProvider(**fast).search_images("bear", 5)
    script += [TimeoutException("timed out")] * 2
    with pytest.raises(SearchError, match="timed out"):
        DdgsProvider(**fast).search_images("bear", 5)
    script += [DDGSException("No results found.")] * 2
    assert DdgsProvider(**fast).search_images("bear", 5) == []


def test_a_bug_is_not_retried() -> None:
    slept: list[float] = []

    def boom() -> None:
        raise TypeError("bug")

    with pytest.raises(TypeError):
        retry_with_backoff(boom, is_retryable=lambda e: isinstance(e, OSError), sleep=slept.append)
    assert slept == []


# --- runs against a workspace -------------------------------------------------------------------


@pytest.fixture
def ws(tmp_path: Path):  # noqa: ANN201
    from cleaning.data.workspace import Workspace

    root = tmp_path / "animals"
    (root / "dog").mkdir(parents=True)
    # the data set already holds the cat photo, filed under "dog": scraping it for "cat" is a conflict
    (root / "dog" / "old.jpg").write_bytes(encode(photo("chelsea", 200), quality=80))
    return Workspace.open(root)


def test_scrape_classes_end_to_end_with_provenance_and_resume(srv: ImageServer, ws) -> None:
    u = srv.url
    cat1, cat2 = [u("/img/cat.jpg"), u("/404.jpg"), u("/img/coffee.png")], [u("/img/camera.gif"), u("/img/rocket.jpg")]
    fake = FakeProvider({
        "cat": cat1, "cat photo": cat2, "cat -drawing": cat1, "cat photo -drawing": cat2,
        "coffee -drawing": [u("/img/cat-copy.jpg"), u("/go/hubble"), u("/img/astronaut.webp")],
        "coffee photo -drawing": [u("/img/mislabelled.bin")]}, default=[])
    rep = scrape_classes(ws, ["cat"], per_class=2, templates=["{label}", "{label} photo"], provider=fake, config=CFG)
    assert len(rep.by_status("downloaded")) == 2 and rep.error is None
    dup = rep.by_status("duplicate")
    assert dup and dup[0].url == u("/img/cat.jpg") and dup[0].duplicate_label == "dog"  # cross-class conflict
    df = ws.items_frame().set_index("path")
    for o in rep.by_status("downloaded"):
        assert df.loc[o.path, "label"] == "cat"
        assert df.loc[o.path, "source_url"] == o.url and df.loc[o.path, "source_query"] in ("cat", "cat photo")
    d = rep.to_dict()
    assert {"downloaded", "duplicates", "rejected"} <= d.keys()
    assert set(d["downloaded"][0]) >= {"url", "path"} and set(d["duplicates"][0]) >= {"url", "duplicate_of"}

    hits = sum(srv.hits.values())
    again = scrape_classes(ws, ["cat"], per_class=2, provider=fake, config=CFG)  # already full: no fetch
    assert again.outcomes == [] and sum(srv.hits.values()) == hits
    before = dict(srv.hits)
    more = scrape_classes(ws, ["cat", "coffee"], per_class=3, provider=fake, config=CFG, negative_terms=["drawing"])
    seen = [o.url.split(str(srv.port), 1)[1] for o in rep.outcomes]  # logged in the first run
    assert "/img/cat.jpg" in seen
    for p in seen:  # not fetched again
        assert srv.hits[p] == before[p], p
    assert [o.status for o in more.outcomes if o.label == "cat"].count("downloaded") == 1
    live = ws.items_frame()
    assert (live["label"] == "cat").sum() == 3 and (live["label"] == "coffee").sum() == 3
    assert live["source_url"].notna().sum() == 6


def test_search_failure_ends_the_run_early_but_keeps_what_was_downloaded(srv: ImageServer, ws) -> None:
    class Flaky:
        def search_images(self, query: str, max_results: int) -> list[SearchResult]:
            if query.startswith("b"):
                raise SearchError("image search for 'b' was rate limited (4 tries)", "wait")
            return [SearchResult(srv.url("/img/rocket.jpg"), query=query)]

    rep = scrape_classes(ws, ["a", "b", "c"], per_class=1, templates=["{label}"], provider=Flaky(), config=CFG)
    assert isinstance(rep.error, SearchError) and [o.label for o in rep.outcomes] == ["a"]
    assert "rate limited" in rep.to_dict()["error"]
    assert (ws.items_frame()["label"] == "a").sum() == 1


def test_background_run_reports_progress(srv: ImageServer, ws) -> None:
    urls = [srv.url(p) for p in ("/img/coffee.png", "/slow.jpg", "/img/rocket.jpg", "/html.jpg")]
    progress = run_in_background(lambda p: download_url_list(ws, "stuff", urls, config=CFG, progress=p))
    assert isinstance(progress, ScrapeProgress)
    deadline = time.monotonic() + 10
    while progress.snapshot()["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    snap = progress.snapshot()
    assert snap["state"] == "done", snap
    c = snap["classes"]["stuff"]
    assert (c["downloaded"], c["rejected"], c["phase"]) == (2, 2, "done")
    assert {label for label, _ in snap["recent"]} == {"stuff"}
    assert progress.report is not None and len(progress.report.outcomes) == 4


def test_background_run_turns_errors_into_a_message() -> None:
    p = run_in_background(lambda p: (_ for _ in ()).throw(CleaningError("no network", "try later")))
    for _ in range(100):
        if p.snapshot()["state"] != "running":
            break
        time.sleep(0.01)
    snap = p.snapshot()
    assert snap["state"] == "failed" and snap["error"] == "no network (try later)"


# --- CLI ----------------------------------------------------------------------------------------


def test_cli_urls_file_writes_the_report(srv: ImageServer, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from cleaning.cli import main

    urls = tmp_path / "urls.txt"
    urls.write_text("# bears\n" + "\n".join(srv.url(p) for p in (
        "/img/cat.jpg", "/img/cat-copy.jpg", "/500.jpg", "/vector.svg", "/go/hubble")) + "\n\n")
    report = tmp_path / "out" / "report.json"
    root = tmp_path / "new-set"  # created by the command
    code = main(["scrape", str(root), "--label", "black bear", "--urls-file", str(urls), "--allow-private-hosts",
                 "--report", str(report), "--timeout", "0.5", "--workers", "1"])
    assert code == 0, capsys.readouterr().err
    d = json.loads(report.read_text())
    assert sorted(x["url"] for x in d["downloaded"]) == [srv.url("/go/hubble"), srv.url("/img/cat.jpg")]
    assert all((root / x["path"]).is_file() and x["path"].startswith("black bear/") for x in d["downloaded"])
    assert [x["url"] for x in d["duplicates"]] == [srv.url("/img/cat-copy.jpg")]
    assert d["duplicates"][0]["duplicate_of"] == next(x["path"] for x in d["downloaded"] if "cat" in x["url"])
    assert {x["url"]: x["reason"] for x in d["rejected"]}[srv.url("/500.jpg")] == "HTTP 500"
    assert "black bear: 2 downloaded, 1 duplicates, 2 rejected" in capsys.readouterr().out


def test_cli_search_mode_uses_templates(monkeypatch: pytest.MonkeyPatch, srv: ImageServer, tmp_path: Path) -> None:
    from cleaning.cli import main
    from cleaning.scrape import run as scrape_run

    fake = FakeProvider(default=[srv.url("/img/rocket.jpg"), srv.url("/img/camera.gif")])
    monkeypatch.setattr(scrape_run, "DdgsProvider", lambda **kw: fake)
    root = tmp_path / "set"
    code = main(["scrape", str(root), "--classes", "rocket ship", "--per-class", "1", "--template", "{label} launch",
                 "--negative", "toy", "--allow-private-hosts", "--timeout", "0.5"])
    assert code == 0
    assert [q for q, _ in fake.calls] == ["rocket ship launch -toy"]
    assert len(list((root / "rocket ship").iterdir())) == 1


@pytest.mark.parametrize("argv, phrase", [
    (["--label", "../x", "--urls-file", "URLS"], "label"),
    (["--label", "a/b", "--urls-file", "URLS"], "separator"),
    (["--label", ".hidden", "--urls-file", "URLS"], "hidden"),
    (["--classes", "a,..", "--per-class", "3"], "hidden or a relative path"),
    (["--classes", "a", "--label", "b", "--urls-file", "URLS"], "either --classes"),
    (["--label", "b"], "go together"),
    (["--label", "b", "--urls-file", "missing.txt"], "cannot read URL file"),
    (["--label", "b", "--urls-file", "EMPTY"], "has no URLs"),
    (["--classes", "a", "--template", "photo"], "must contain {label}"),
    (["--classes", "a", "--per-class", "0"], "must be positive"),
])
def test_cli_bad_input_is_one_line_and_nonzero(tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str],
                                               phrase: str) -> None:
    from cleaning.cli import main

    (tmp_path / "urls.txt").write_text("http://example.com/a.jpg\n")
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    argv = [str(tmp_path / "urls.txt") if a == "URLS" else str(tmp_path / "empty.txt") if a == "EMPTY"
            else str(tmp_path / a) if a == "missing.txt" else a for a in argv]
    assert main(["scrape", str(tmp_path / "root"), *argv]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1 and phrase in err


# --- the page -----------------------------------------------------------------------------------


def test_scrape_page_runs_a_scrape_in_the_background(srv: ImageServer, ws, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setattr(sys, "argv", ["streamlit"])
    monkeypatch.setenv("CLEANING_ROOT", str(ws.root))
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "dashboard.py"), default_timeout=30)
    at.session_state["scrape_provider"] = FakeProvider(default=[srv.url("/img/rocket.jpg"), srv.url("/404.jpg")])
    at.session_state["scrape_download_config"] = CFG
    at.run()
    at.switch_page("pages/scrape.py").run()
    assert not at.exception
    at.text_area(key="scrape_classes").set_value("rocket, ../bad").run()
    assert any("hidden or a relative path" in e.value for e in at.error)
    at.text_area(key="scrape_classes").set_value("rocket").run()
    at.text_input(key="scrape_negative").set_value("toy").run()
    assert "rocket photo -toy" in at.dataframe[0].value["query"].tolist()
    at.button(key="scrape_start").click().run()
    for _ in range(100):
        if any("Done:" in s.value for s in at.success):
            break
        time.sleep(0.1)
        at.run()
    assert not at.exception
    assert any("1 downloaded" in s.value for s in at.success)
    assert (ws.items_frame()["label"] == "rocket").sum() == 1


def test_offline_search_error_is_one_plain_sentence(ddgs_images) -> None:
    """What ddgs really raises offline: ``DNSError('error sending request for url (…)')`` — the page and the
    retry notes must not show that raw text (issue 12)."""
    from ddgs.exceptions import DDGSException

    from cleaning.scrape.search import describe_search_error

    raw = DDGSException("DNSError('error sending request for url (https://duckduckgo.com/?q=bear&iax=images)')")
    assert describe_search_error(raw) == "cannot reach the search service (DNSError; offline?)"
    _, script = ddgs_images
    script += [raw] * 2
    notes: list[str] = []
    p = DdgsProvider(retries=1, base_delay=0, sleep=lambda s: None,
                     on_retry=lambda n, d, e: notes.append(describe_search_error(e)))
    with pytest.raises(SearchError) as e:
        p.search_images("bear", 5)
    assert "error sending request" not in str(e.value) and "(https" not in str(e.value)
    assert "cannot reach the search service" in str(e.value)
    assert notes == ["cannot reach the search service (DNSError; offline?)"]
