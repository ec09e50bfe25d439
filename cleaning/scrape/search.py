"""Image search: query templates, search providers behind one interface, retry with backoff.

A provider is anything with ``search_images(query, max_results) -> list[SearchResult]``.
:class:`DdgsProvider` wraps ``ddgs.DDGS().images`` (DuckDuckGo/Bing image search, no API key);
:class:`FakeProvider` answers from a dict (tests, demos, offline use). Queries come from templates
such as ``"{label} photo"`` plus negative terms (``-drawing``), so the user sees and edits exactly
what is searched — the seed's ``f"{o} sun photo"`` put photos of the sun into *dog*.
"""

from __future__ import annotations

import logging
import math
import random
import re
import string
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from ..data.tree import validate_label
from ..errors import CleaningError

logger = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_TEMPLATES: tuple[str, ...] = ("{label}", "{label} photo")
#: results asked for per class = per_class × this, spread over the queries (many get rejected)
OVERSAMPLE = 2.0


class SearchError(CleaningError):
    """Image search failed (rate limit, network) after all retries."""


@dataclass(frozen=True)
class SearchResult:
    """One image hit: ``url`` of the image itself, ``source_page`` it was found on."""

    url: str
    title: str = ""
    source_page: str = ""
    thumbnail: str = ""
    width: int | None = None
    height: int | None = None
    query: str = ""


class SearchProvider(Protocol):
    """Anything that turns a query string into image URLs."""

    def search_images(self, query: str, max_results: int) -> list[SearchResult]: ...


# --- queries -------------------------------------------------------------------------------------


def parse_classes(text: str) -> list[str]:
    """``"grizzly bear, black bear"`` (commas or new lines) → validated, de-duplicated labels.

    Raises:
        LabelError: a name that cannot be a class folder (empty, hidden, contains a slash).
        CleaningError: no class given.
    """
    labels = [validate_label(p.strip()) for p in text.replace("\n", ",").split(",") if p.strip()]
    if not labels:
        raise CleaningError("no class names given", "pass e.g. --classes 'grizzly bear,black bear'")
    return list(dict.fromkeys(labels))


def check_template(template: str) -> str:
    """Return ``template`` if ``{label}`` is its only placeholder; raise :class:`CleaningError` otherwise."""
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as e:
        raise CleaningError(f"query template {template!r} is malformed: {e}",
                            "use {label} as the placeholder, e.g. '{label} photo'") from e
    if fields != {"label"}:
        raise CleaningError(f"query template {template!r} must contain {{label}} and no other placeholder",
                            "e.g. '{label} photo' or 'wild {label}'")
    return template


def build_queries(label: str, templates: Sequence[str] = DEFAULT_TEMPLATES,
                  negative_terms: Iterable[str] = ()) -> list[str]:
    """The final search strings for one class: each template filled in, negative terms appended.

    >>> build_queries("dog", ["{label} photo"], ["sun", "cartoon drawing"])
    ['dog photo -sun -"cartoon drawing"']
    """
    negs = [t.strip().lstrip("-").strip() for t in negative_terms]
    suffix = "".join(f' -"{t}"' if " " in t else f" -{t}" for t in negs if t)
    queries = [" ".join(check_template(t).format(label=label).split()) + suffix for t in templates]
    if not queries:
        raise CleaningError("no query templates given", "add at least one template such as '{label}'")
    return list(dict.fromkeys(queries))


def plan_queries(labels: Sequence[str], templates: Sequence[str] = DEFAULT_TEMPLATES,
                 negative_terms: Iterable[str] = ()) -> dict[str, list[str]]:
    """``{label: [query, ...]}`` for every class: what the preview shows and the run searches."""
    negs = list(negative_terms)
    return {label: build_queries(label, templates, negs) for label in labels}


def search_candidates(provider: SearchProvider, queries: Sequence[str], n: int) -> list[SearchResult]:
    """Run every query for one class and interleave the hits round-robin, without repeated URLs.

    Asks for about ``n`` results in total (spread over the queries). Raises :class:`SearchError`.
    """
    per_query = max(1, math.ceil(n / max(1, len(queries))))
    lists = [provider.search_images(q, per_query) for q in queries]
    seen: set[str] = set()
    out: list[SearchResult] = []
    for i in range(max((len(x) for x in lists), default=0)):
        for hits in lists:
            if i < len(hits) and hits[i].url not in seen:
                seen.add(hits[i].url)
                out.append(hits[i])
    return out


# --- retry --------------------------------------------------------------------------------------


def retry_with_backoff(fn: Callable[[], T], *, is_retryable: Callable[[BaseException], bool],
                       retries: int = 3, base_delay: float = 2.0, max_delay: float = 60.0,
                       jitter: float = 0.25, sleep: Callable[[float], None] = time.sleep,
                       on_retry: Callable[[int, float, BaseException], None] | None = None) -> T:
    """Call ``fn``; on a retryable exception wait ``base_delay × 2**attempt`` (capped, plus up to
    ``jitter`` × delay at random) and try again, at most ``retries`` more times; then re-raise."""
    for attempt in range(retries + 1):
        try:
            return fn()
        except Exception as e:
            if attempt >= retries or not is_retryable(e):
                raise
            delay = min(max_delay, base_delay * 2**attempt)
            delay += random.uniform(0, jitter * delay) if jitter else 0.0
            if on_retry is not None:
                on_retry(attempt + 1, delay, e)
            logger.info("search failed (%s); retry %d/%d in %.1f s", e, attempt + 1, retries, delay)
            sleep(delay)
    raise AssertionError("unreachable")


# --- providers ----------------------------------------------------------------------------------


def _int_or_none(v: Any) -> int | None:  # noqa: ANN401 - ddgs gives str, int or None
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def results_from_records(records: Iterable[Mapping[str, Any]], query: str = "") -> list[SearchResult]:
    """Convert ddgs image records (keys ``image``, ``title``, ``url``, ``thumbnail``, ``width``,
    ``height``, ``source``) to :class:`SearchResult`; records without an http(s) image URL are dropped."""
    out, seen = [], set()
    for r in records:
        url = str(r.get("image") or "").strip()
        if not url.lower().startswith(("http://", "https://")) or url in seen:
            continue
        seen.add(url)
        out.append(SearchResult(url=url, title=str(r.get("title") or ""),
                                source_page=str(r.get("url") or ""),
                                thumbnail=str(r.get("thumbnail") or ""),
                                width=_int_or_none(r.get("width")), height=_int_or_none(r.get("height")),
                                query=query))
    return out


class DdgsProvider:
    """Image search through the ``ddgs`` package, with retries and a clear error when it gives up.

    ddgs raises ``RatelimitException`` / ``TimeoutException`` / ``DDGSException`` (network errors,
    and "No results found." when the engine answered 403 — in practice also a rate limit). All are
    retried with exponential backoff; after the last retry a :class:`SearchError` says what happened,
    except that "no results" returns an empty list.
    """

    def __init__(self, *, region: str = "us-en", safesearch: str = "moderate", timeout: int = 10,
                 retries: int = 3, base_delay: float = 2.0, max_delay: float = 60.0, jitter: float = 0.25,
                 sleep: Callable[[float], None] = time.sleep,
                 on_retry: Callable[[int, float, BaseException], None] | None = None,
                 client_factory: Callable[[], Any] | None = None) -> None:
        self.region, self.safesearch, self.timeout = region, safesearch, timeout
        self.retries, self.base_delay, self.max_delay, self.jitter = retries, base_delay, max_delay, jitter
        self.sleep, self.on_retry = sleep, on_retry
        self._client_factory = client_factory

    def _client(self) -> Any:  # noqa: ANN401
        if self._client_factory is not None:
            return self._client_factory()
        from ddgs import DDGS

        return DDGS(timeout=self.timeout)

    def search_images(self, query: str, max_results: int) -> list[SearchResult]:
        """Up to ``max_results`` image hits for ``query``. Raises :class:`SearchError`."""
        from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException

        client = self._client()

        def call() -> list[dict[str, Any]]:
            return client.images(query, max_results=max_results, region=self.region,
                                 safesearch=self.safesearch)

        try:
            records = retry_with_backoff(
                call, is_retryable=lambda e: isinstance(e, DDGSException), retries=self.retries,
                base_delay=self.base_delay, max_delay=self.max_delay, jitter=self.jitter, sleep=self.sleep,
                on_retry=self.on_retry)
        except RatelimitException as e:
            raise SearchError(f"image search for {query!r} was rate limited ({self.retries + 1} tries)",
                              "wait a few minutes and run again; URLs already fetched are not fetched again"
                              ) from e
        except TimeoutException as e:
            raise SearchError(f"image search for {query!r} timed out ({self.retries + 1} tries)",
                              "check the internet connection and run again") from e
        except DDGSException as e:
            msg = str(e)
            if "no results" in msg.lower():
                logger.warning("no results for %r (the search engine may be rate limiting)", query)
                return []
            if _is_network(msg):
                raise SearchError(f"image search for {query!r} failed: {describe_search_error(e)}",
                                  "check the internet connection and run again") from e
            raise SearchError(f"image search for {query!r} failed: {msg[:200]}",
                              "check the internet connection (or wait if rate limited) and run again") from e
        return results_from_records(records, query)[:max_results]


def _is_network(msg: str) -> bool:
    return any(w in msg for w in ("DNS", "Connect", "connect", "resolve", "error sending request"))


def describe_search_error(e: BaseException) -> str:
    """One plain sentence for a failed search call, without the raw exception text of the HTTP client.

    ``DNSError('error sending request for url (…)')`` → ``cannot reach the search service (DNSError;
    offline?)``; a time-out and a rate limit say so; anything else keeps its first 120 characters.
    """
    msg = str(e)
    name = type(e).__name__
    if "ratelimit" in (name + msg).lower():
        return "the search service is rate limiting"
    if "timeout" in (name + msg).lower() or "timed out" in msg.lower():
        return "the search service did not answer in time"
    if _is_network(msg):
        m = re.match(r"\s*([A-Za-z_]\w*)", msg)
        kind = m.group(1) if m and m.group(1).endswith("Error") else "network error"
        return f"cannot reach the search service ({kind}; offline?)"
    return f"{name}: {msg[:120]}"


class FakeProvider:
    """A provider that answers from ``{query: [url, ...]}`` (or ``default`` for other queries).

    Records every call in ``calls`` as ``(query, max_results)``. For tests, demos and offline runs.
    """

    def __init__(self, results: Mapping[str, Sequence[str]] | None = None,
                 default: Sequence[str] = ()) -> None:
        self.results = dict(results or {})
        self.default = list(default)
        self.calls: list[tuple[str, int]] = []

    def search_images(self, query: str, max_results: int) -> list[SearchResult]:
        self.calls.append((query, max_results))
        urls = self.results.get(query, self.default)
        return [SearchResult(url=u, title=f"{query} #{i}", query=query)
                for i, u in enumerate(urls[:max_results])]
