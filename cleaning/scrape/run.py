"""Scraping runs: search → download on a bounded pool → dedupe → save → provenance → report.

:func:`download_all` is the pool (independent of the workspace); :func:`scrape_classes` and
:func:`download_url_list` run it against a :class:`~cleaning.data.workspace.Workspace` and record where each
kept image came from; :class:`ScrapeProgress` is what a page polls while a run works in a background
thread; :func:`add_scrape_parser` / :func:`run_scrape_cli` are the ``scrape`` sub-command.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data.tree import validate_label
from ..errors import CleaningError
from .fetch import (
    DownloadConfig,
    FetchLog,
    KnownImages,
    Rejected,
    Resolver,
    decode_image_bytes,
    fetch_bytes,
    system_resolver,
)
from .search import (
    DEFAULT_TEMPLATES,
    OVERSAMPLE,
    DdgsProvider,
    SearchError,
    SearchProvider,
    describe_search_error,
    plan_queries,
    search_candidates,
)

if TYPE_CHECKING:
    from ..data.workspace import Workspace

logger = logging.getLogger(__name__)
LOG_NAME = "scrape_log.jsonl"


@dataclass(frozen=True)
class DownloadJob:
    url: str
    label: str
    query: str | None = None
    source_page: str | None = None


@dataclass
class Outcome:
    """What happened to one URL. ``status``: downloaded | duplicate | rejected | skipped."""

    url: str
    label: str
    status: str
    path: str | None = None  # relative to ROOT, for downloaded
    duplicate_of: str | None = None
    duplicate_label: str | None = None  # the class of the image it duplicates (a conflict if != label)
    kind: str | None = None  # exact | near
    distance: int | None = None
    reason: str | None = None
    query: str | None = None
    seconds: float = 0.0


def download_all(jobs: Iterable[DownloadJob], dest_root: Path, *, config: DownloadConfig | None = None,
                 known: KnownImages | None = None, log: FetchLog | None = None,
                 resolver: Resolver = system_resolver, targets: Mapping[str, int] | None = None,
                 on_outcome: Callable[[Outcome], None] | None = None, stop: threading.Event | None = None,
                 retry_transient: bool = False) -> list[Outcome]:
    """Download ``jobs`` with ``config.workers`` threads into ``dest_root/<label>/<sha256[:16]>.jpg``.

    A URL in ``log`` is skipped (resume); a duplicate of anything in ``known`` is not saved; once
    ``targets[label]`` images of a class are kept its remaining URLs are left untouched (not logged).
    Returns one :class:`Outcome` per URL handled, in completion order.
    """
    config = config or DownloadConfig()
    known = known if known is not None else KnownImages(config.phash_max_distance)
    log = log if log is not None else FetchLog(None)
    kept: dict[str, int] = {}
    lock = threading.Lock()

    def full(label: str) -> bool:
        return targets is not None and kept.get(label, 0) >= targets.get(label, 0)

    def reserve(label: str) -> bool:  # called under known's lock: check and count in one step
        with lock:
            if full(label):
                return False
            kept[label] = kept.get(label, 0) + 1
            return True

    def one(job: DownloadJob) -> Outcome | None:
        if (stop is not None and stop.is_set()) or full(job.label):
            return None
        prev = log.get(job.url, retry_transient=retry_transient)
        if prev is not None:
            return Outcome(job.url, job.label, "skipped", path=_s(prev.get("path")), query=job.query,
                           reason=f"already {prev.get('status')} in an earlier run"
                                  + (f": {prev['reason']}" if prev.get("reason") else ""))
        t0 = time.monotonic()
        try:
            img = decode_image_bytes(fetch_bytes(job.url, config=config, resolver=resolver).body,
                                     config=config)
        except Rejected as e:
            log.record(job.url, "rejected", label=job.label, reason=e.reason, transient=e.transient)
            return Outcome(job.url, job.label, "rejected", reason=e.reason, query=job.query,
                           seconds=time.monotonic() - t0)
        rel = f"{job.label}/{img.sha256[:16]}.jpg"
        try:
            m = known.claim([img.source_sha256, img.sha256], img.phash, ref=rel, label=job.label,
                            allow=lambda: reserve(job.label))
        except LookupError:  # the class filled up while this one was downloading
            return None
        if m is not None:
            log.record(job.url, "duplicate", label=job.label, duplicate_of=m.ref, kind=m.kind)
            return Outcome(job.url, job.label, "duplicate", duplicate_of=m.ref, duplicate_label=m.label,
                           kind=m.kind, distance=m.distance, query=job.query,
                           reason=f"{m.kind} duplicate of {m.ref}" + (" (deleted)" if m.deleted else ""),
                           seconds=time.monotonic() - t0)
        _write_atomic(dest_root / rel, img.jpeg)
        log.record(job.url, "downloaded", label=job.label, path=rel, query=job.query)
        return Outcome(job.url, job.label, "downloaded", path=rel, query=job.query,
                       seconds=time.monotonic() - t0)

    jobs = list(jobs)
    for job in jobs:
        validate_label(job.label)
    unique = list({j.url: j for j in reversed(jobs)}.values())[::-1]  # first occurrence wins
    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=max(1, config.workers), thread_name_prefix="download") as pool:
        futures = [pool.submit(one, j) for j in unique]
        try:
            for fut in as_completed(futures):
                out = fut.result()
                if out is not None:
                    outcomes.append(out)
                    if on_outcome is not None:
                        on_outcome(out)
        except BaseException:  # e.g. the disk is full: stop the queue, let the error out
            for f in futures:
                f.cancel()
            raise
    return outcomes


def _s(v: object) -> str | None:
    return None if v is None else str(v)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # hidden (the scanner skips it); the pid lets the next run remove it if this process was killed
    tmp = path.parent / f".{path.name}.{os.getpid()}-{threading.get_ident()}.part"
    tmp.write_bytes(data)
    os.replace(tmp, path)


# --- runs against a workspace -------------------------------------------------------------------


@dataclass
class ScrapeReport:
    outcomes: list[Outcome] = field(default_factory=list)
    searches: list[dict[str, Any]] = field(default_factory=list)  # {label, query, results}
    error: CleaningError | None = None  # a search that failed after its retries ended the run early

    def by_status(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    def to_dict(self) -> dict[str, Any]:
        """The REPORT.json shape: downloaded / duplicates / rejected (+ skipped, searches, error)."""
        return {
            "downloaded": [{"url": o.url, "path": o.path, "label": o.label, "query": o.query}
                           for o in self.by_status("downloaded")],
            "duplicates": [{"url": o.url, "duplicate_of": o.duplicate_of, "label": o.label,
                            "duplicate_label": o.duplicate_label, "kind": o.kind, "distance": o.distance}
                           for o in self.by_status("duplicate")],
            "rejected": [{"url": o.url, "reason": o.reason, "label": o.label}
                         for o in self.by_status("rejected")],
            "skipped": [{"url": o.url, "reason": o.reason, "label": o.label} for o in self.by_status("skipped")],
            "searches": self.searches,
            "error": str(self.error) if self.error else None,
        }


class ScrapeProgress:
    """Thread-safe state of a run for a UI to poll: per-class counts, newest images, messages."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.stop = threading.Event()
        self.state = "running"  # running | done | failed
        self.classes: dict[str, dict[str, Any]] = {}
        self.recent: deque[tuple[str, str]] = deque(maxlen=24)  # (label, relative path)
        self.messages: deque[str] = deque(maxlen=50)
        self.error: str | None = None
        self.report: ScrapeReport | None = None

    def begin_class(self, label: str, target: int | None, phase: str = "searching") -> None:
        with self._lock:
            self.classes[label] = {"target": target, "phase": phase, "candidates": 0, "downloaded": 0,
                                   "duplicate": 0, "rejected": 0, "skipped": 0}

    def update_class(self, label: str, **kw: Any) -> None:  # noqa: ANN401
        with self._lock:
            self.classes.setdefault(label, {}).update(kw)

    def on_outcome(self, o: Outcome) -> None:
        with self._lock:
            c = self.classes.setdefault(o.label, {})
            c[o.status] = c.get(o.status, 0) + 1
            if o.status == "downloaded" and o.path:
                self.recent.appendleft((o.label, o.path))

    def note(self, msg: str) -> None:
        with self._lock:
            self.messages.append(msg)

    def finish(self, report: ScrapeReport) -> None:
        with self._lock:
            self.report, self.state = report, "failed" if report.error else "done"
            self.error = str(report.error) if report.error else None

    def fail(self, message: str) -> None:
        with self._lock:
            self.state, self.error = "failed", message

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy: ``{state, classes, recent, messages, error}``."""
        with self._lock:
            return {"state": self.state, "classes": {k: dict(v) for k, v in self.classes.items()},
                    "recent": list(self.recent), "messages": list(self.messages), "error": self.error}


def run_in_background(fn: Callable[[ScrapeProgress], ScrapeReport],
                      progress: ScrapeProgress | None = None) -> ScrapeProgress:
    """Start ``fn(progress)`` in a daemon thread; its result or error lands in the returned progress."""
    progress = progress or ScrapeProgress()

    def main() -> None:
        try:
            progress.finish(fn(progress))
        except CleaningError as e:
            progress.fail(str(e))
        except Exception as e:  # a bug: keep it loud in the log and visible in the UI
            logger.exception("scrape run crashed")
            progress.fail(f"unexpected error (a bug): {type(e).__name__}: {e}")

    threading.Thread(target=main, name="scrape-run", daemon=True).start()
    return progress


def scraped_counts(ws: Workspace) -> dict[str, int]:
    """Images per class that came from a scrape (have a source URL) and are not deleted: what a run
    tops up to its per-class target."""
    df = ws.items_frame()
    live = df[~df["deleted"].astype(bool) & df["source_url"].notna()]
    return {str(k): int(v) for k, v in live["label"].value_counts().items()}


def _finish(ws: Workspace, outcomes: Sequence[Outcome]) -> None:
    """Scan the new files into the store (their provenance was noted as each one landed)."""
    for o in outcomes:
        if o.status == "downloaded" and o.path:
            ws.store.note_provenance(o.path, o.query, o.url)
    ws.refresh()


def _noting(ws: Workspace, then: Callable[[Outcome], None]) -> Callable[[Outcome], None]:
    """An ``on_outcome`` that records each downloaded image's query and URL in the store as it lands."""
    def on_outcome(o: Outcome) -> None:
        if o.status == "downloaded" and o.path:
            ws.store.note_provenance(o.path, o.query, o.url)
        then(o)
    return on_outcome


def _backfill(ws: Workspace, log: FetchLog) -> None:
    """Provenance of images an earlier, killed run downloaded (from its log) for items that lack it."""
    have = ws.store.scraped_paths()
    for e in log.entries():
        path = e.get("path")
        if e.get("status") == "downloaded" and isinstance(path, str) and path not in have:
            ws.store.note_provenance(path, _s(e.get("query")), _s(e.get("url")))


def _setup(ws: Workspace, config: DownloadConfig) -> tuple[KnownImages, FetchLog]:
    ws.refresh()  # also removes part files a killed run left behind
    log = FetchLog(Path(ws.state_dir) / LOG_NAME)
    _backfill(ws, log)
    known = KnownImages.from_frame(ws.items_frame(), config.phash_max_distance)
    return known, log


def scrape_classes(ws: Workspace, labels: Sequence[str], *, per_class: int,
                   templates: Sequence[str] = DEFAULT_TEMPLATES, negative_terms: Sequence[str] = (),
                   provider: SearchProvider | None = None, config: DownloadConfig | None = None,
                   progress: ScrapeProgress | None = None, resolver: Resolver = system_resolver) -> ScrapeReport:
    """Search and download until each class holds ``per_class`` scraped images (live images with a
    source URL), so a rerun tops up instead of doubling. A search failure after its retries ends the
    run early; what was downloaded until then is kept and reported (``report.error``)."""
    config = config or DownloadConfig()
    plan = plan_queries([validate_label(lb) for lb in labels], templates, negative_terms)
    progress = progress or ScrapeProgress()
    provider = provider or DdgsProvider(on_retry=lambda n, delay, e: progress.note(
        f"search failed: {describe_search_error(e)}; retry {n} in {delay:.0f} s"))
    known, log = _setup(ws, config)
    have = scraped_counts(ws)
    report = ScrapeReport()
    try:
        for label, queries in plan.items():
            if progress.stop.is_set():
                break
            target = max(0, per_class - have.get(label, 0))
            progress.begin_class(label, target)
            if target == 0:
                progress.update_class(label, phase="done")
                progress.note(f"{label}: already has {have.get(label, 0)} scraped images")
                continue
            try:
                # URLs seen in earlier runs come back from the search too: ask for that many more
                want = max(10, math.ceil(target * OVERSAMPLE)) + log.count(label)
                hits = search_candidates(provider, queries, want)
            except SearchError as e:
                report.error = e
                progress.update_class(label, phase="search failed")
                break
            for q in queries:
                report.searches.append({"label": label, "query": q,
                                        "results": sum(h.query == q for h in hits)})
            progress.update_class(label, phase="downloading", candidates=len(hits))
            jobs = [DownloadJob(h.url, label, h.query, h.source_page) for h in hits]
            report.outcomes += download_all(jobs, ws.root, config=config, known=known, log=log,
                                            resolver=resolver, targets={label: target},
                                            on_outcome=_noting(ws, progress.on_outcome), stop=progress.stop)
            progress.update_class(label, phase="done")
    finally:
        _finish(ws, report.outcomes)
    return report


def download_url_list(ws: Workspace, label: str, urls: Sequence[str], *, config: DownloadConfig | None = None,
                      progress: ScrapeProgress | None = None, resolver: Resolver = system_resolver) -> ScrapeReport:
    """Download exactly ``urls`` into class ``label`` (no search), deduped, resumable, with provenance."""
    config = config or DownloadConfig()
    label = validate_label(label)
    progress = progress or ScrapeProgress()
    known, log = _setup(ws, config)
    progress.begin_class(label, len(urls), "downloading")
    report = ScrapeReport()
    try:
        report.outcomes = download_all([DownloadJob(u, label) for u in urls], ws.root, config=config,
                                       known=known, log=log, resolver=resolver,
                                       on_outcome=_noting(ws, progress.on_outcome), stop=progress.stop)
        progress.update_class(label, phase="done")
    finally:
        _finish(ws, report.outcomes)
    return report
