"""Scrape: search the web per class (or paste URLs), download safely in the background, read the report.

The run works in a background thread (:func:`cleaning.scrape.run.run_in_background`); this page only
polls its :class:`~cleaning.scrape.run.ScrapeProgress` once a second, so the rest of the app stays usable
on what is already there. One run per data set at a time, shared by every browser session.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from cleaning.errors import CleaningError
from cleaning.scrape.fetch import DownloadConfig
from cleaning.scrape.run import (
    ScrapeProgress,
    ScrapeReport,
    download_url_list,
    run_in_background,
    scrape_classes,
    scraped_counts,
)
from cleaning.scrape.search import DEFAULT_TEMPLATES, SearchProvider, parse_classes, plan_queries
from pages._common import get_workspace, run_page, show_error, thumb

#: session-state keys a test or a demo may set to swap the search provider / download limits
PROVIDER_KEY = "scrape_provider"
CONFIG_KEY = "scrape_download_config"
STATUS_ICON = {"downloaded": "✅", "duplicate": "♊", "rejected": "⛔", "skipped": "⏭️"}


@st.cache_resource(show_spinner=False)
def scrape_jobs() -> dict[str, ScrapeProgress]:
    """``{dataset root: progress of its latest run}`` for the whole server."""
    return {}


def _provider() -> SearchProvider | None:
    """None means the default: DuckDuckGo image search through ``ddgs`` (retries shown as messages)."""
    return st.session_state.get(PROVIDER_KEY)


def _config() -> DownloadConfig:
    return st.session_state.get(CONFIG_KEY) or DownloadConfig()


def _split_terms(text: str) -> list[str]:
    return [t.strip() for t in text.replace("\n", ",").split(",") if t.strip()]


def report_frame(report: ScrapeReport) -> pd.DataFrame:
    """One row per URL: status, class, URL, saved path or what it duplicates, reason."""
    return pd.DataFrame([{
        "status": f"{STATUS_ICON.get(o.status, '')} {o.status}", "class": o.label, "url": o.url,
        "saved as / duplicate of": o.path or o.duplicate_of or "",
        "reason": o.reason or ("conflict: already in class " + o.duplicate_label
                               if o.duplicate_label and o.duplicate_label != o.label else ""),
        "query": o.query or ""} for o in report.outcomes],
        columns=["status", "class", "url", "saved as / duplicate of", "reason", "query"])


def top_up_text(classes: list[str] | dict, have: dict[str, int], per_class: int) -> str:
    """One line saying how many images a run would add per class (the target is a total, not an increment)."""
    parts = [f"{lab} {max(0, per_class - have.get(lab, 0))} more (has {have.get(lab, 0)})" for lab in classes]
    return "This run adds up to: " + "; ".join(parts)


def _search_form(running: bool) -> None:
    ws = get_workspace()
    classes_text = st.text_area("Classes (comma-separated or one per line)", value=", ".join(ws.vocab),
                                key="scrape_classes", placeholder="grizzly bear, black bear, teddy bear")
    c1, c2 = st.columns(2)
    templates_text = c1.text_area("Query templates, one per line (`{label}` becomes the class name)",
                                  value="\n".join(DEFAULT_TEMPLATES), key="scrape_templates")
    negative_text = c2.text_input("Negative terms (excluded from every query)", key="scrape_negative",
                                  placeholder="drawing, cartoon, sun")
    per_class = int(c2.number_input("Scraped images per class, in total (not how many to add)", 1, 1000, 30,
                                    key="scrape_per_class",
                                    help="A class is topped up to this number of scraped images: one that "
                                         "already has 20 from earlier runs gets at most 10 more for 30"))
    if not classes_text.strip():
        st.info("Type the class names to search for.")
        return
    templates = [t.strip() for t in templates_text.splitlines() if t.strip()]
    negatives = _split_terms(negative_text)
    try:
        plan = plan_queries(parse_classes(classes_text), templates, negatives)
    except CleaningError as e:
        show_error(e)
        return
    c2.caption(top_up_text(plan, scraped_counts(ws), per_class))
    st.caption("These exact queries will be searched:")
    st.dataframe(pd.DataFrame([{"class": k, "query": q} for k, qs in plan.items() for q in qs]),
                 hide_index=True, width="stretch", height=min(300, 38 + 35 * sum(map(len, plan.values()))))
    if st.button("Start scraping", type="primary", disabled=running, key="scrape_start"):
        provider, config = _provider(), _config()
        scrape_jobs()[str(ws.root)] = run_in_background(
            lambda p: scrape_classes(ws, list(plan), per_class=per_class, templates=templates,
                                     negative_terms=negatives, provider=provider, config=config, progress=p))
        st.rerun()


def _url_form(running: bool) -> None:
    ws = get_workspace()
    label = st.text_input("Class to download into", key="scrape_url_label")
    urls_text = st.text_area("Image URLs, one per line", key="scrape_urls", height=150)
    if st.button("Download these URLs", disabled=running, key="scrape_url_start"):
        urls = [u.strip() for u in urls_text.splitlines() if u.strip() and not u.strip().startswith("#")]
        try:
            [lb] = parse_classes(label) if label.strip() else [""]
            if not lb or not urls:
                raise CleaningError("give one class and at least one URL")
        except (CleaningError, ValueError) as e:
            show_error(e if isinstance(e, CleaningError) else CleaningError("give exactly one class name"))
            return
        config = _config()
        scrape_jobs()[str(ws.root)] = run_in_background(
            lambda p: download_url_list(ws, lb, urls, config=config, progress=p))
        st.rerun()


def _live(root: str, polling: bool) -> None:
    """Progress bars, newest thumbnails and (when finished) the report of the data set's latest run."""
    job = scrape_jobs().get(root)
    if job is None:
        return
    snap = job.snapshot()
    if polling and snap["state"] != "running":
        st.rerun()  # finished: redraw the page once without the timer
    st.subheader("Current run" if snap["state"] == "running" else "Last run")
    for label, c in snap["classes"].items():
        target, kept = c.get("target"), c.get("downloaded", 0)
        frac = min(1.0, kept / target) if target else (1.0 if c.get("phase") == "done" else 0.0)
        st.progress(frac, text=f"**{label}** — {c.get('phase', '')}: {kept}{f'/{target}' if target else ''} kept, "
                               f"{c.get('duplicate', 0)} duplicates, {c.get('rejected', 0)} rejected, "
                               f"{c.get('skipped', 0)} seen before · {c.get('candidates', 0)} search hits")
    if snap["state"] == "running":
        st.button("Stop after the downloads in flight", on_click=job.stop.set, key="scrape_stop")
    for msg in snap["messages"][-5:]:
        st.caption(msg)
    if snap["recent"]:
        cols = st.columns(8)
        for i, (label, rel) in enumerate(snap["recent"][:16]):
            cols[i % 8].image(thumb(str(Path(root) / rel), 160), caption=label, width="stretch")
    if snap["error"]:
        st.error(snap["error"], icon="⚠️")
    if job.report is not None:
        rep = job.report
        n = {s: len(rep.by_status(s)) for s in STATUS_ICON}
        summary = (f"{n['downloaded']} downloaded, {n['duplicate']} duplicates skipped, "
                   f"{n['rejected']} rejected, {n['skipped']} seen in an earlier run.")
        if snap["state"] == "done":
            st.success("Done: " + summary)
        else:
            st.info("Stopped early; kept so far: " + summary)
        df = report_frame(rep)
        show = st.multiselect("Show", list(STATUS_ICON), default=[s for s in STATUS_ICON if s != "skipped"],
                              key="scrape_report_filter")
        df = df[df["status"].str.split(" ").str[-1].isin(show)]
        st.dataframe(df, hide_index=True, width="stretch",
                     column_config={"url": st.column_config.LinkColumn("url")})


def render() -> None:
    ws = get_workspace()
    st.title("Scrape")
    st.caption("Search the web for images of each class, or download a list of URLs. Downloads are checked "
               "(type from the bytes, full decode, size and pixel caps, private addresses refused), duplicates "
               "of anything already in the data set are skipped, and each kept image remembers its query and "
               "URL. A rerun does not fetch the same URLs again.")
    root = str(ws.root)
    job = scrape_jobs().get(root)
    running = job is not None and job.snapshot()["state"] == "running"
    tab_search, tab_urls = st.tabs(["Search the web", "Download a URL list"])
    with tab_search:
        _search_form(running)
    with tab_urls:
        _url_form(running)
    st.fragment(_live, run_every=1.0 if running else None)(root, running)


if __name__ == "__main__":
    run_page(render)
