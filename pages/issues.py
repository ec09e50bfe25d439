"""Issues: the scan's whole ranked queue, paged and filtered; one click fixes or dismisses an entry.

Every action is a decision (``ws.store.record``): accept the suggestion, relabel, delete, mark as fine,
or for a duplicate pair keep one copy. A reviewed image leaves the queue at once; Undo in the sidebar
brings it back. Nothing here moves a file (the Export page does).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cleaning.data.workspace import Workspace
from cleaning.review.queue import (
    ISSUE_NAMES,
    ISSUE_TYPES,
    UNKNOWN_SOURCE,
    filter_queue,
    page_of,
    queue_counts,
)
from cleaning.review.requeue import LiveQueue
from cleaning.review.sources import normalise_query, source_host
from cleaning.review.state import analysis_of
from pages import _autofix, _keyboard
from pages import _review as review
from pages._common import RESCAN_LABEL, get_workspace, open_workspace, run_page, show_error, thumb
from pages._retrain import retrain_box

PAGE_SIZES = (10, 25, 50, 100)
K = "iss"  # widget-key prefix of this page


def _reset_page() -> None:
    st.session_state[f"{K}_page"] = 1


def _step_page(by: int) -> None:
    st.session_state[f"{K}_page"] = int(st.session_state.get(f"{K}_page", 1)) + by


@st.cache_resource(show_spinner=False, max_entries=4)
def _live_queue(root: str, token: str, _table: pd.DataFrame) -> LiveQueue:
    """The queue of the issue table ``token`` names (``_table``, not hashed), kept up to date across
    decisions: a decision rebuilds only the entries of the images it changed (:mod:`cleaning.review.requeue`)."""
    return LiveQueue(_table)


@st.cache_resource(show_spinner=False, max_entries=4)
def _queue_at(root: str, version: str, token: str, _table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int],
                                                                                   list[str]]:
    """(the queue, its counts per issue type, the source queries of the images) once per data-set version
    and issue table for the whole server: a rerun (a page turn, a pick) rebuilds nothing. ``_table`` is
    the issue table ``token`` names (not hashed). Shared objects: do not modify them."""
    items = review.items(open_workspace(root))
    queue = _live_queue(root, token, _table).queue(items)
    queries = sorted({normalise_query(q) for q in items["source_query"].unique().tolist()} - {UNKNOWN_SOURCE})
    return queue, queue_counts(queue), queries + [UNKNOWN_SOURCE]


def _missing(v: object) -> bool:
    return v is None or (isinstance(v, str) and not v) or bool(pd.isna(v))


def render() -> None:
    ws = get_workspace()
    head, side = st.columns([3, 1], vertical_alignment="top")
    head.title("Issues")
    head.caption("Everything the scan found, worst first. A reviewed image leaves the queue; "
                 "**↶ Undo** in the sidebar brings it back. Files only move on the Export page.")
    with side:
        retrain_box(ws, K)
    review.flash()
    if not review.model_gate(ws, f"{K}_gate"):  # a large new data set: the scan waits for a click
        return
    table = review.issues(ws)
    if table is None:
        _no_queue(ws)
        return
    items = review.items(ws)  # per data-set version: paths change when decisions are applied to the folders
    queue, counts, queries = _queue_at(str(ws.root), review.data_version(ws), analysis_of(ws).issues_token(), table)
    c = st.columns([5, 1], vertical_alignment="bottom")
    c[0].caption(f"The scan found {len(table)} issue(s) on {table['item_id'].nunique()} file(s); "
                 f"**{len(queue)}** entr{'y' if len(queue) == 1 else 'ies'} still to review.")
    if c[1].button("⟳ Rescan", key=f"{K}_rescan", width="stretch",
                   help="Run the detectors again with the current labels (reuses cached embeddings)"):
        review.issues(ws, refresh=True)
        st.rerun()
    _autofix.autofix_box(ws, table, items)
    if queue.empty:
        st.success("Nothing left to review. Retrain to see what the cleaning did, or export the clean data set.")
        st.page_link("pages/export.py", label="Export / apply the decisions", icon=":material/output:")
        return
    shown = _filters(ws, queue, counts, queries)
    if st.toggle("⌨ Keyboard review", key=f"{K}_keys", help="One image at a time: → / ← next / previous, "
                 "Enter or f looks fine, d or Del delete, a accept the suggestion, 1–9 relabel, u or Ctrl+Z undo"):
        _keyboard.review_queue(ws, shown, items, review.predictions(ws), K)
        return
    _bulk(ws, shown)
    if shown.empty:
        st.info("No entries match these filters.")
        return
    _pager(shown)
    size = int(st.session_state.get(f"{K}_size", PAGE_SIZES[1]))
    rows, page, n_pages = page_of(shown, int(st.session_state.get(f"{K}_page", 1)), size)
    preds = review.predictions(ws)
    labels = sorted(set(review.live_labels(ws)) | set(preds.vocab if preds else []))
    by_id = items.set_index("item_id")
    order = [str(i) for i in shown.loc[shown["kind"] == "item", "item_id"].dropna()]  # the dialog walks it
    for entry in rows.to_dict("records"):
        if entry["kind"] == "pair":
            _pair_card(ws, entry, by_id)
        elif entry["kind"] == "group":
            _group_card(ws, entry, by_id)
        elif _missing(entry["item_id"]):
            _file_card(entry)
        else:
            _item_card(ws, entry, by_id.loc[str(entry["item_id"])], preds, labels, order)
    if page < n_pages:
        st.button(f"Next page ({page + 1} of {n_pages}) ›", key=f"{K}_next_bottom", on_click=_step_page, args=(1,))


def _no_queue(ws: Workspace) -> None:
    err = review.issues_error(ws)
    if err is not None:
        show_error(err)
    st.warning("No issue queue yet: the scan has not run" + (", or it failed (above)." if err else "."))
    if st.button("Run the scan", key=f"{K}_scan", type="primary"):
        review.issues(ws, refresh=True)
        st.rerun()


def _filters(ws: Workspace, queue: pd.DataFrame, counts: dict[str, int], queries: list[str]) -> pd.DataFrame:
    types = [t for t in ISSUE_TYPES if counts.get(t)]
    classes = list(review.live_labels(ws))
    for key, opts in ((f"{K}_types", types), (f"{K}_queries", queries), (f"{K}_classes", classes)):
        if key in st.session_state:  # keep only options that still exist (a stale pick would raise)
            st.session_state[key] = [v for v in st.session_state[key] if v in opts]
    c = st.columns([2, 2, 3, 1])
    sel_types = c[0].multiselect("Issue type", types, key=f"{K}_types", on_change=_reset_page,
                                 format_func=lambda t: f"{ISSUE_NAMES.get(t, t)} ({counts[t]})",
                                 placeholder="all issue types")
    sel_classes = c[1].multiselect("Class", classes, key=f"{K}_classes", on_change=_reset_page,
                                   placeholder="all classes")
    sel_queries = c[2].multiselect("Source query", queries, key=f"{K}_queries", on_change=_reset_page,
                                   placeholder="all sources")
    c[3].selectbox("Per page", PAGE_SIZES, index=1, key=f"{K}_size", on_change=_reset_page)
    return filter_queue(queue, sel_types, sel_classes, sel_queries)


def _picked(shown: pd.DataFrame) -> list[str]:
    """Ids of the picked image entries that are still in the (filtered) queue, in queue order; forget the
    others. Looks only at the picks, never row by row through the whole queue (65,000 entries at 100k)."""
    prefix = f"{K}_pick_"
    picks = {str(k)[len(prefix):]: bool(v) for k, v in list(st.session_state.items()) if _is_pick(k)}
    if not picks:
        return []
    keys = shown["key"].tolist()
    live = set(keys)
    for k in [k for k in picks if k not in live]:
        del st.session_state[prefix + k]
    on = {k for k, v in picks.items() if v and k in live}
    if not on:
        return []
    ids = shown["item_id"].tolist()
    return [str(i) for k, i in zip(keys, ids) if k in on and not _missing(i)]


def _pick_page(keys: list[str], on: bool) -> None:
    for k in keys:
        st.session_state[f"{K}_pick_{k}"] = on


def _is_pick(k: object) -> bool:
    """A pick box's key (``iss_pick_<entry key>``, entry keys hold a colon), not a button's such as ``iss_pick_all``."""
    return str(k).startswith(f"{K}_pick_") and ":" in str(k)


def _unpick_all() -> None:
    for k in [k for k in st.session_state if _is_pick(k)]:
        del st.session_state[k]


def _bulk(ws: Workspace, shown: pd.DataFrame) -> None:
    ids = _picked(shown)
    if not ids:
        return
    review.bulk_bar(ws, ids, f"{K}_bulk")
    sugg = dict(zip(shown["key"].tolist(), shown["suggested_label"].tolist()))
    picked_sugg = {sugg.get(f"item:{i}") for i in ids}
    c = st.columns([1, 1, 1, 1])
    c[2].button(f"Unpick all {len(ids)}", key=f"{K}_unpick", width="stretch", on_click=_unpick_all)
    if c[0].button(f"Mark {len(ids)} as fine", key=f"{K}_bulk_keep", width="stretch", icon=":material/check:"):
        review.write(ws, ids, "keep", source="bulk", done=f"Marked {len(ids)} image(s) as fine")
    one = next(iter(picked_sugg)) if len(picked_sugg) == 1 else None
    if c[1].button(f"Accept suggestion → {one}" if one and not _missing(one) else "Accept suggestions",
                   key=f"{K}_bulk_accept", width="stretch", disabled=not one or _missing(one),
                   help="Possible when every picked image has the same suggested label"):
        review.write(ws, ids, "relabel", label=str(one), source="bulk", done=f"Relabelled {len(ids)} image(s) → {one}")


def _pager(shown: pd.DataFrame) -> None:
    size = int(st.session_state.get(f"{K}_size", PAGE_SIZES[1]))
    _, page, n_pages = page_of(shown, int(st.session_state.get(f"{K}_page", 1)), size)
    st.session_state[f"{K}_page"] = page  # clamped: filters or reviews may have shrunk the queue
    start = (page - 1) * size
    c = st.columns([1, 1, 1, 3, 2], vertical_alignment="center")
    c[0].button("‹ Previous", key=f"{K}_prev", on_click=_step_page, args=(-1,), disabled=page <= 1, width="stretch")
    c[1].button("Next ›", key=f"{K}_next", on_click=_step_page, args=(1,), disabled=page >= n_pages, width="stretch")
    c[2].number_input("Page", 1, n_pages, key=f"{K}_page", label_visibility="collapsed")
    c[3].caption(f"Page {page} of {n_pages} · entries {start + 1}–{min(start + size, len(shown))} "
                 f"of {len(shown)}")
    keys = [k for k in shown["key"].iloc[start:start + size] if not k.startswith(("file:", "group:"))]
    c[4].button("Pick all on this page", key=f"{K}_pick_all", on_click=_pick_page, args=(keys, True),
                width="stretch")
    if len(shown) > size:  # every image entry the filters leave, for one bulk action (one undo)
        every = [k for k in shown["key"].tolist() if k.startswith("item:")]
        c[4].button(f"Pick all {len(every)} shown", key=f"{K}_pick_every", on_click=_pick_page, args=(every, True),
                    width="stretch", help="Every image entry matching the filters, on all pages")


def _source_line(query: object, url: object) -> str:
    q = "no provenance" if _missing(query) else f"query “{query}”"
    host = source_host(url)
    return f"{q} · [{host}]({url})" if not _missing(url) and host != UNKNOWN_SOURCE else q


def _headline(entry: dict) -> str:
    names = ", ".join(ISSUE_NAMES.get(t, t) for t in str(entry["issues"]).split(", "))
    return f"**{names}** · severity {entry['severity']:.2f}"


def _item_card(ws: Workspace, e: dict, r: pd.Series, preds: review.Predictions | None,
               labels: list[str], order: list[str]) -> None:
    """One image: ``r`` is its row of the items frame (indexed by item id); ``order``: the queue's images
    (the dialog's Previous / Next walk them)."""
    iid, k = str(e["item_id"]), f"{K}_{e['key']}"
    sugg = None if _missing(e["suggested_label"]) or e["suggested_label"] == r["label"] else str(e["suggested_label"])
    with st.container(border=True):
        pic, info, act = st.columns([1.3, 3, 1.7], gap="medium")
        pic.image(thumb(r["abs_path"], 256), width="stretch")
        with info:
            st.markdown(_headline(e))
            p = preds.for_item(iid, r["label"]) if preds else None
            if not _missing(e.get("predicted_label")):
                pred = f"predicted `{e['predicted_label']}`" + (
                    f" {float(e['confidence']):.0%}" if not _missing(e.get("confidence")) else "")
            elif p:
                pred = f"predicted `{p[0]}` {p[1]:.0%}" + (
                    f" (given label {p[2]:.0%})" if p[2] is not None and p[0] != r["label"] else "")
            else:
                pred = "no prediction"
            st.markdown(f"Given label `{r['label']}` · {pred}" + (f" · suggested **`{sugg}`**" if sugg else ""))
            st.caption(str(e["reason"]) or "—")
            st.caption(f"`{r['path']}` · {_source_line(r['source_query'], r['source_url'])}")
            st.checkbox("pick for a bulk action", key=f"{K}_pick_{e['key']}")
        with act:
            off_topic = is_off_topic(e)
            if sugg and not off_topic and st.button(f"Accept → {sugg}", key=f"{k}_accept", type="primary",
                                                    width="stretch", icon=":material/done_all:"):
                review.write(ws, [iid], "relabel", label=sugg, source="suggestion",
                             done=f"Relabelled {r['path']} → {sugg}")
            if off_topic and st.button("Delete (off-topic)", key=f"{k}_delete_off", type="primary", width="stretch",
                                       icon=":material/delete:", help="It belongs to none of your classes"):
                review.write(ws, [iid], "delete", note="off-topic", done=f"Deleted {r['path']}")
            b = st.columns(2)
            if not off_topic and b[0].button("Delete", key=f"{k}_delete", width="stretch", icon=":material/delete:"):
                review.write(ws, [iid], "delete", done=f"Deleted {r['path']}")
            if b[1].button("Fine", key=f"{k}_keep", width="stretch", icon=":material/check:",
                           help="Looks fine: keep it as it is and take it off the queue"):
                review.write(ws, [iid], "keep", done=f"Marked {r['path']} as fine")
            others = [lab for lab in labels if lab != r["label"]]
            new = st.selectbox("Relabel to", others, index=None, key=f"{k}_new", accept_new_options=True,
                               placeholder="choose or type a label", label_visibility="collapsed")
            b = st.columns(2)
            if b[0].button("Relabel", key=f"{k}_relabel", width="stretch", disabled=not new):
                review.relabel_or_ask(ws, [iid], str(new), k, done=f"Relabelled {r['path']} → {new}")
            if b[1].button("Open", key=f"{k}_open", width="stretch", icon=":material/open_in_full:"):
                review.review_dialog(ws, iid, key_prefix=f"{K}_dlg", order=order, what="in the queue")
            review.ask_alike(ws, k, done=f"Relabelled {r['path']}")


def _pair_card(ws: Workspace, e: dict, frame: pd.DataFrame) -> None:
    """Two copies side by side; ``frame`` is the items frame indexed by item id."""
    a, b = str(e["item_id"]), e["related_item_id"]
    with st.container(border=True):
        st.markdown(_headline(e) + f" · {e['reason']}")
        if _missing(b) or b not in frame.index:
            st.caption(f"`{e['path']}` and `{e['related_path']}` (the other file is no longer in the data set)")
            return
        b = str(b)
        ra, rb = frame.loc[a], frame.loc[b]
        if ra["label"] != rb["label"]:
            st.warning(f"The copies are in different classes: `{ra['label']}` and `{rb['label']}`.", icon="⚠️")
        cols = st.columns([1, 1, 1, 1], gap="medium")
        for (col_img, col_txt), me, other, rme in (((cols[0], cols[1]), a, b, ra), ((cols[2], cols[3]), b, a, rb)):
            col_img.image(thumb(rme["abs_path"], 256), width="stretch")
            with col_txt:
                st.markdown(f"`{rme['path']}`  \nlabel `{rme['label']}` · {rme['width']}×{rme['height']}")
                st.caption(_source_line(rme["source_query"], rme["source_url"]))
                suggested = me == b  # the scan names the copy to keep as the related one
                if st.button("Keep this one", key=f"{K}_{e['key']}_keep_{me}", width="stretch",
                             type="primary" if suggested else "secondary",
                             help=f"Delete the other copy ({frame.loc[other, 'path']})"
                                  + (" — the scan suggests keeping this one" if suggested else "")):
                    review.write(ws, [other], "delete", note=f"duplicate of {rme['path']}",
                                 done=f"Kept {rme['path']}, deleted {frame.loc[other, 'path']}")
        if st.button("Both are fine (not duplicates)", key=f"{K}_{e['key']}_both"):
            review.write(ws, [a, b], "keep", done="Marked both copies as fine")


# ---- junk groups (issue 9) -----------------------------------------------------------------------------
def is_off_topic(entry: dict) -> bool:
    """An entry whose worst finding is off-topic: its primary action is Delete, never Accept → class."""
    return "outlier" in str(entry.get("issues", "")).split(", ") and (
        entry.get("issue") == "outlier" or _missing(entry.get("suggested_label")))


def _group_card(ws: Workspace, e: dict, frame: pd.DataFrame) -> None:
    """A junk group as one card: a strip of thumbnails, its classes and source queries, one "Delete all N"
    (one undoable batch) and one "Looks fine" for the whole group. ``frame``: items indexed by item id."""
    members = [m for m in e["members"] if m in frame.index]
    n = len(members)
    k = f"{K}_{e['key']}"
    with st.container(border=True):
        st.markdown(f"**junk group · {n} look-alike images** · severity {e['severity']:.2f}")
        st.caption(str(e["reason"]))
        classes = pd.Series(list(e["member_labels"])).value_counts()
        queries = pd.Series([q for q in e["member_queries"] if not _missing(q)], dtype=object).value_counts()
        st.markdown("Filed under " + ", ".join(f"`{c}` {v}" for c, v in classes.items())
                    + (" · from " + ", ".join(f"“{q}” {v}" for q, v in queries.items()) if len(queries) else
                       " · no provenance"))
        strip = st.columns(min(max(n, 1), 8))
        for j, m in enumerate(members[:16]):
            strip[j % len(strip)].image(thumb(frame.loc[m, "abs_path"], 128), width="stretch",
                                        caption=f"{frame.loc[m, 'label']}")
        if n > 16:
            st.caption(f"… and {n - 16} more")
        b = st.columns([1, 1, 3])
        if b[0].button(f"Delete all {n}", key=f"{k}_delete_all", type="primary", width="stretch",
                       icon=":material/delete:", help="One decision for the whole group; Undo brings all back"):
            review.write(ws, members, "delete", note=f"junk group {e['group']}",
                         done=f"Deleted the {n} images of the junk group")
        if b[1].button("Looks fine", key=f"{k}_keep_all", width="stretch", icon=":material/check:",
                       help="Keep every image of the group and take the group off the queue"):
            review.write(ws, members, "keep", note=f"junk group {e['group']}",
                         done=f"Marked the {n} images of the group as fine")


def _file_card(e: dict) -> None:
    with st.container(border=True):
        st.markdown(_headline(e) + f" · `{e['path']}`")
        st.caption(f"{e['reason']} — the app cannot show or track this file. Replace or remove it in the folder, "
                   f"then **{RESCAN_LABEL}** in the sidebar.")


if __name__ == "__main__":
    run_page(render)
