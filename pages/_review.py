"""The shared review component of every review page: one image's panel and dialog, an image grid, a bulk bar.

Every action is a decision recorded through ``ws.store.record`` (undoable, no file touched); after a write
the app reruns so every view shows it. Widget keys carry the item id, so a panel never shows another
image's state. Charts that open the dialog pass ``reset_key``: the name of a session-state counter that is
part of the chart's key. A write or a dismissal (Esc, ×, click outside) bumps it, which gives the chart a
fresh key and so clears its selection: the dialog cannot reopen by itself.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from urllib.parse import urlparse

import pandas as pd
import streamlit as st

from cleaning.data.labels import similar_label
from cleaning.data.workspace import Workspace
from cleaning.errors import CleaningError
from cleaning.review.selection import Predictions, drop_stale, issues_by_item
from cleaning.review.state import analysis_of
from pages import _dialog_nav
from pages._alike import ask_alike, known_labels, relabel_or_ask
from pages._common import thumb
from pages._dialog_keys import _dialog_key, dialog_keys
from pages._writes import _FLASH, bump, data_version, flash, items, live_labels, write  # noqa: F401  (re-exported)

_RESET = "_review_reset_key"  # which counter the open dialog bumps when dismissed


def predictions(ws: Workspace, refresh: bool = False) -> Predictions | None:
    """The latest out-of-sample predictions of this data set (computed on first use, then kept until
    ``refresh``, so reviewing never waits for a model). None, with the reason in :func:`model_error`,
    when they cannot be computed."""
    state = analysis_of(ws)
    if refresh or not state.has_predictions:
        with st.spinner("Computing out-of-sample predictions (the first time embeds every image: "
                        "about 10–30 s per 100 images on a CPU)…"):
            return state.predictions(refresh=True)
    return state.predictions()


def held_predictions(ws: Workspace) -> Predictions | None:
    """The predictions in memory, if any (never computes them)."""
    return analysis_of(ws).held_predictions


def predictions_stale(ws: Workspace) -> bool:
    """True when decisions were made since the predictions in use were computed."""
    return analysis_of(ws).predictions_stale()


def model_token(ws: Workspace) -> str:
    """Identifies the predictions and issue table in use (for caches built from them)."""
    return analysis_of(ws).token()


def model_error(ws: Workspace) -> CleaningError | None:
    return analysis_of(ws).predictions_error


#: Pages may run the scan by themselves for data sets up to this size (seconds); above, only on request.
ISSUES_EAGER_UP_TO = 2000

#: Up to this many images without an embedding are embedded without asking (the demo: ~15 s).
AUTO_EMBED_UP_TO = 300


def images_to_embed(ws: Workspace) -> int:
    """How many distinct image contents have no cached embedding yet (0 after ``cleaning scan``)."""
    from cleaning.data.cache import EmbeddingTable
    from cleaning.model.backbone import DEFAULT_ARCH, arch_spec
    from cleaning.model.embed import embedding_model_key

    try:
        table = EmbeddingTable(ws.cache_dir, embedding_model_key(), arch_spec(DEFAULT_ARCH).dim)
    except CleaningError:
        return 0  # the model is unavailable: predictions() will say why
    frame = items(ws)
    return len(table.missing(frame[~frame["deleted"]]["sha256"]))


def model_gate(ws: Workspace, key: str) -> bool:
    """True when predictions are in memory or cheap to get; otherwise explains the cost and offers a
    Compute button (pages call this before :func:`predictions`)."""
    if analysis_of(ws).has_predictions or st.session_state.get("_review_compute"):
        return True
    n = images_to_embed(ws)
    if n <= AUTO_EMBED_UP_TO:
        return True
    st.info(f"**{n} images have no embedding yet.** Computing embeddings and out-of-sample predictions takes "
            f"about {max(1, n // 600)} min on 2 CPU cores (≈10–40 images/s). You can also run "
            f"`python -m cleaning scan {ws.root}` in a terminal: the app then finds the results.")
    if st.button("Compute now", key=key, type="primary"):
        st.session_state["_review_compute"] = True
        st.rerun()
    return False


def issues(ws: Workspace, refresh: bool = False, compute: bool = True) -> pd.DataFrame | None:
    """The latest ranked issue table of the scan (None when it has not been loaded yet and ``compute`` is
    False, or when the scan failed: the reason in :func:`issues_error`)."""
    state = analysis_of(ws)
    if compute and (refresh or not state.has_issues):
        from cleaning.progress import Eta

        bar, eta = st.progress(0.0, text="Looking for issues…"), Eta()

        def progress(what: str, frac: float) -> None:  # one bar, the stage and its time left
            if eta.due(what, frac):  # a new stage at once, else at most 4 redraws a second
                bar.progress(min(max(frac, 0.0), 1.0), text=eta.text(what, frac))

        try:
            return state.issues(refresh=True, progress=progress)
        finally:
            bar.empty()
    return state.issues(compute=False)


def issues_error(ws: Workspace) -> CleaningError | None:
    return analysis_of(ws).issues_error


# ---- one image ----------------------------------------------------------------------------------------
def _label_options(ws: Workspace, preds: Predictions | None, exclude: str | None = None) -> list[str]:
    labels = set(live_labels(ws)) | set(preds.vocab if preds else [])
    return sorted(lab for lab in labels if lab != exclude)


def item_panel(ws: Workspace, item_id: str, key_prefix: str, reset_key: str | None = None,
               pressed: str | None = None) -> None:
    """The image large with everything known about it, and the actions: New label + Relabel, Delete /
    Restore, Looks fine, and Accept suggestion when the scan suggests a label. ``pressed`` (the dialog: the
    single key pressed in this run, '' for none; None where keys are off) does the same (see
    :func:`dialog_keys`)."""
    frame = items(ws)
    rows = frame[frame["item_id"] == item_id]
    if rows.empty:
        st.warning("This image is no longer in the data set (it was removed from disk). Rescan from the sidebar.")
        return
    r = rows.iloc[0]
    preds = held_predictions(ws) if r["deleted"] else predictions(ws)
    its = issues_by_item(issues(ws, compute=False)).get(item_id, [])
    k = f"{key_prefix}_{item_id}"
    left, right = st.columns([1, 1], gap="medium")
    native = int(r["width"] or 0)  # small images are shown at most 2.5× their size, not blown up to fill
    left.image(thumb(r["abs_path"], 720), width=max(160, min(480, int(native * 2.5))) if native else "stretch")
    left.caption(f"`{r['path']}` · {r['width']}×{r['height']} {r['format'] or ''}")
    with right:
        was = f" (was `{r['orig_label']}`)" if r["label"] != r["orig_label"] else ""
        state = " · **deleted**" if r["deleted"] else (" · marked fine" if r["kept"] else "")
        st.markdown(f"**Label:** `{r['label']}`{was}{state}")
        p = preds.for_item(item_id, r["label"]) if preds else None
        if p:
            given = f" · given label {p[2]:.0%}" if p[2] is not None and p[0] != r["label"] else ""
            st.markdown(f"**Prediction:** `{p[0]}` · {p[1]:.0%} confident{given}")
        else:
            st.markdown("**Prediction:** none yet" + (" (deleted images are left out)" if r["deleted"] else ""))
        for i in its:
            sev = f" ({i['severity']:.2f})" if isinstance(i.get("severity"), int | float) else ""
            st.markdown(f"**Issue:** {i['issue']}{sev} — {i.get('reason') or ''}")
        if r.get("source_query"):
            st.markdown(f"**Found by query:** “{r['source_query']}”")
        if r.get("source_url"):
            host = urlparse(str(r["source_url"])).netloc or "link"
            st.markdown(f"**Source:** [{host}]({r['source_url']})")
        st.divider()
        classes = list(live_labels(ws))[:9]
        if r["deleted"]:
            if st.button("Restore", key=f"{k}_restore", type="primary", width="stretch",
                         help="Key: r") or pressed == "r":
                write(ws, [item_id], "restore", reset_key=reset_key, done=f"Restored {r['path']}")
            return
        off_topic = any(i.get("issue") == "outlier" for i in its)  # off-topic: Delete is the primary action
        options = _label_options(ws, preds, exclude=r["label"])
        default = p[0] if p and p[0] in options and not off_topic else None
        new = st.selectbox("New label", options, index=options.index(default) if default else None,
                           key=f"{k}_new", accept_new_options=True, placeholder="choose or type a label")
        if st.button("Relabel", key=f"{k}_relabel", type="secondary" if off_topic else "primary", width="stretch",
                     disabled=not new or new == r["label"]):
            relabel_or_ask(ws, [item_id], str(new), k, reset_key=reset_key, done=f"Relabelled {r['path']} → {new}")
        ask_alike(ws, k, reset_key=reset_key, done=f"Relabelled {r['path']}")
        c1, c2 = st.columns(2)
        if c1.button("Delete", key=f"{k}_delete", width="stretch", icon=":material/delete:",
                     type="primary" if off_topic else "secondary"):
            write(ws, [item_id], "delete", reset_key=reset_key, done=f"Deleted {r['path']}")
        if c2.button("Looks fine", key=f"{k}_keep", width="stretch", disabled=bool(r["kept"]),
                     help="Keep it as it is and take it off the issue queue"):
            write(ws, [item_id], "keep", reset_key=reset_key, done=f"Marked {r['path']} as fine")
        sugg = next((i.get("suggested_label") for i in its if isinstance(i.get("suggested_label"), str)
                     and i.get("suggested_label") and i.get("suggested_label") != r["label"]), None)
        if sugg and st.button(f"Accept suggestion → {sugg}", key=f"{k}_accept", width="stretch"):
            write(ws, [item_id], "relabel", label=sugg, source="suggestion", reset_key=reset_key,
                  done=f"Relabelled {r['path']} → {sugg}")
        if pressed is not None:
            st.caption("Keys: **f**/Enter looks fine · **d**/Del delete · **a** accept suggestion · **u** undo · "
                       + " · ".join(f"**{n}** {c}" for n, c in enumerate(classes, 1))
                       + " · **←**/**→** previous/next · Esc closes")
            _dialog_key(ws, item_id, str(r["path"]), str(r["label"]), pressed, sugg, classes, reset_key)


def _dismissed() -> None:
    _dialog_nav.end()
    bump(st.session_state.get(_RESET))


@st.dialog("Review image", width="medium", on_dismiss=_dismissed)
def _dialog(ws: Workspace, item_id: str, key_prefix: str, reset_key: str | None, what: str) -> None:
    pressed = dialog_keys(f"{key_prefix}_keys")  # one listener for the whole walk: the focus stays put
    if pressed in ("prev", "next"):
        _dialog_nav.step(-1 if pressed == "prev" else 1)
        pressed = ""
    cur, pos, order = _dialog_nav.current(key_prefix, item_id)
    if len(order) > 1:
        c = st.columns([1, 2, 1], vertical_alignment="center")
        c[0].button("← Previous", key=f"{key_prefix}_nav_prev", on_click=_dialog_nav.step, args=(-1,),
                    disabled=pos == 0, width="stretch", help="Previous image (key ←)")
        c[1].caption(f"Image {pos + 1} of {len(order)} {what}")
        c[2].button("Next →", key=f"{key_prefix}_nav_next", on_click=_dialog_nav.step, args=(1,),
                    disabled=pos >= len(order) - 1, width="stretch", help="Next image (key →)")
    item_panel(ws, cur, key_prefix, reset_key, pressed=pressed)
    if pos + 1 < len(order):  # prefetch: the next image's large thumbnail is ready before it is asked for
        _prefetch(ws, order[pos + 1])


def _prefetch(ws: Workspace, item_id: str) -> None:
    frame = items(ws)
    rows = frame[frame["item_id"] == item_id]
    if not rows.empty:
        thumb(str(rows.iloc[0]["abs_path"]), 720)


def review_dialog(ws: Workspace, item_id: str, reset_key: str | None = None, key_prefix: str = "dlg",
                  order: Sequence[str] | None = None, what: str = "in this list") -> None:
    """Open the review dialog for one image. ``reset_key`` names the session-state counter in the key of
    the chart that opened it (bumped on write and on dismissal, so the chart's selection is cleared).
    ``order``: the list it was opened from (← / → and Previous / Next walk it; ``what`` names it, e.g.
    "in the queue")."""
    st.session_state[_RESET] = reset_key
    _dialog_nav.start(key_prefix, item_id, order, reset_key)
    _dialog(ws, item_id, key_prefix, reset_key, what)


# ---- many images ----------------------------------------------------------------------------------------
def bulk_bar(ws: Workspace, item_ids: Sequence[str], key_prefix: str, reset_key: str | None = None) -> None:
    """Count of the selection and relabel-all / delete-all / restore-all, each after a confirmation,
    recorded as one batch with source ``bulk`` (one undo takes it back)."""
    frame = items(ws)
    ids = drop_stale(item_ids, frame)
    if not ids:
        return
    dead = set(frame[frame["deleted"]]["item_id"])
    live = [i for i in ids if i not in dead]
    gone = [i for i in ids if i in dead]
    sig = tuple(sorted(ids))
    pkey = f"{key_prefix}_pending"
    with st.container(border=True):
        st.markdown(f"**{len(ids)} image(s) selected**" + (f" · {len(gone)} of them deleted" if gone else ""))
        c = st.columns([3, 1, 1, 1], vertical_alignment="bottom")
        new = c[0].selectbox("New label for all", _label_options(ws, held_predictions(ws)), index=None,
                             accept_new_options=True, key=f"{key_prefix}_label", placeholder="choose or type")
        if c[1].button(f"Relabel {len(live)}", key=f"{key_prefix}_relabel", disabled=not (new and live),
                       width="stretch"):
            st.session_state[pkey] = ("relabel", str(new).strip(), sig)
        if c[2].button(f"Delete {len(live)}", key=f"{key_prefix}_delete", disabled=not live,
                       width="stretch", icon=":material/delete:"):
            st.session_state[pkey] = ("delete", None, sig)
        if gone and c[3].button(f"Restore {len(gone)}", key=f"{key_prefix}_restore", width="stretch"):
            st.session_state[pkey] = ("restore", None, sig)
        pending = st.session_state.get(pkey)
        if not pending or pending[2] != sig:
            return
        action, label, _ = pending
        todo = gone if action == "restore" else live
        what = {"relabel": f"Relabel {len(todo)} image(s) as “{label}”",
                "delete": f"Delete {len(todo)} image(s)", "restore": f"Restore {len(todo)} image(s)"}[action]
        st.warning(f"{what}? This is one decision: one undo takes it all back. "
                   "Files only move when you apply or export.")
        other = similar_label(label, known_labels(ws)) if action == "relabel" and label else None
        if other and st.button(f"Use the existing class “{other}” instead (“{label}” differs only in case, "
                               "spacing or accents)", key=f"{key_prefix}_alike_use"):
            st.session_state.pop(pkey, None)
            write(ws, todo, action, label=other, source="bulk", reset_key=reset_key, done=f"Relabelled to {other}")
        y, n, _ = st.columns([1, 1, 3])
        if y.button(f"Yes, {what[0].lower()}{what[1:]}", key=f"{key_prefix}_confirm", type="primary"):
            st.session_state.pop(pkey, None)
            write(ws, todo, action, label=label, source="bulk", reset_key=reset_key, done=f"{what}: done")
        if n.button("Cancel", key=f"{key_prefix}_cancel"):
            st.session_state.pop(pkey, None)
            st.rerun()


def file_name(path: str, width: int = 28) -> str:
    """The file name of a ROOT-relative path, shortened in the middle to ``width`` characters."""
    name = str(path).rsplit("/", 1)[-1]
    return name if len(name) <= width else name[: width // 2 - 1] + "…" + name[-(width - width // 2):]


def _toggle(store_key: str, item_id: str, widget_key: str) -> None:
    picked: set[str] = st.session_state.setdefault(store_key, set())
    (picked.add if st.session_state.get(widget_key) else picked.discard)(item_id)


@st.cache_data(show_spinner=False, max_entries=5000)
def _pad_square(jpeg: bytes) -> bytes:
    from PIL import Image

    im = Image.open(io.BytesIO(jpeg))
    side = max(im.size)
    canvas = Image.new("RGB", (side, side), "white")
    canvas.paste(im, ((side - im.width) // 2, (side - im.height) // 2))
    buf = io.BytesIO()
    canvas.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def square_thumb(abs_path: str, size: int = 256) -> bytes:
    """A thumbnail padded to a white square, so a grid of cards lines up."""
    return _pad_square(thumb(abs_path, size))


def _pick_many(key_prefix: str, item_ids: list[str], on: bool) -> None:
    picked: set[str] = st.session_state.setdefault(f"{key_prefix}_picked", set())
    (picked.update if on else picked.difference_update)(item_ids)
    for iid in item_ids:
        st.session_state[f"{key_prefix}_pick_{iid}"] = on


def item_grid(ws: Workspace, item_ids: Sequence[str], key_prefix: str, page_size: int = 24, columns: int = 6,
              selectable: bool = True, card_extra: Callable[[str], None] | None = None,
              reset_key: str | None = None, compute_predictions: bool = True, thumb_px: int = 256,
              order_name: str = "here") -> list[str]:
    """A paged grid of image cards (thumbnail, label, prediction, Open / Delete or Restore / Looks fine,
    a pick box). ``card_extra(item_id)`` may add widgets to a card. Returns the picked ids (all pages).
    Open's dialog walks all the grid's images (``order_name`` says which, e.g. "in this cell").
    With ``compute_predictions=False`` predictions are shown only when already in memory."""
    flash()
    frame = items(ws).set_index("item_id", drop=False)
    ids = drop_stale(item_ids, frame)
    picked_key = f"{key_prefix}_picked"
    picked: set[str] = st.session_state.setdefault(picked_key, set())
    picked &= set(ids)
    if not ids:
        st.info("No images here.")
        return []
    n_pages = (len(ids) + page_size - 1) // page_size
    page_key = f"{key_prefix}_page"
    page = min(int(st.session_state.get(page_key, 1)), n_pages)
    if n_pages > 1:
        c = st.columns([1, 1, 2, 4], vertical_alignment="center")
        if c[0].button("‹ Previous", key=f"{key_prefix}_prev", disabled=page <= 1, width="stretch"):
            page -= 1
        if c[1].button("Next ›", key=f"{key_prefix}_next", disabled=page >= n_pages, width="stretch"):
            page += 1
        c[2].caption(f"Page {page} of {n_pages} · {len(ids)} images")
    st.session_state[page_key] = page
    shown = ids[(page - 1) * page_size: page * page_size]
    preds = predictions(ws) if compute_predictions else held_predictions(ws)
    open_id = None
    cols = st.columns(columns)
    for n, iid in enumerate(shown):
        r = frame.loc[iid]
        with cols[n % columns].container(border=True):
            st.image(square_thumb(r["abs_path"], thumb_px), width="stretch")
            p = preds.for_item(iid) if preds else None
            pred = f" → **{p[0]}** {p[1]:.0%}" if p and p[0] != r["label"] else ""
            st.caption(f"`{r['label']}`{pred}" + (" · **deleted**" if r["deleted"] else "")
                       + (" · fine" if r["kept"] else "") + f"  \n{file_name(r['path'])}", help=str(r["path"]))
            # every button says what it does in words (screen readers read the label, not the icon)
            # stacked: three buttons side by side clip their words in a narrow card
            b = [st.container(), st.container(), st.container()]
            if b[0].button("Open", key=f"{key_prefix}_open_{iid}", width="stretch",
                           help=f"Open: review {r['path']}"):
                open_id = iid
            if r["deleted"]:
                if b[1].button("Restore", key=f"{key_prefix}_restore_{iid}", help=f"Restore {r['path']}",
                               width="stretch"):
                    write(ws, [iid], "restore", reset_key=reset_key, done=f"Restored {r['path']}")
            elif b[1].button("Delete", key=f"{key_prefix}_del_{iid}", help=f"Delete {r['path']}", width="stretch"):
                write(ws, [iid], "delete", reset_key=reset_key, done=f"Deleted {r['path']}")
            if b[2].button("Fine", key=f"{key_prefix}_fine_{iid}", help=f"Looks fine: keep {r['path']} as it is",
                           width="stretch", disabled=bool(r["kept"] or r["deleted"])):
                write(ws, [iid], "keep", reset_key=reset_key, done=f"Marked {r['path']} as fine")
            if selectable:
                wk = f"{key_prefix}_pick_{iid}"
                if wk not in st.session_state:
                    st.session_state[wk] = iid in picked
                st.checkbox("pick", key=wk, on_change=_toggle, args=(picked_key, iid, wk))
            if card_extra:
                card_extra(iid)
    if selectable:
        c = st.columns([1, 1, 2])
        c[0].button("Pick this page", key=f"{key_prefix}_pick_page", width="stretch",
                    on_click=_pick_many, args=(key_prefix, list(shown), True))
        c[1].button("Clear picks", key=f"{key_prefix}_pick_clear", width="stretch", disabled=not picked,
                    on_click=_pick_many, args=(key_prefix, list(picked), False))
    if open_id:
        review_dialog(ws, open_id, key_prefix=f"{key_prefix}_dlg", order=ids, what=order_name)
    return [i for i in ids if i in picked]


