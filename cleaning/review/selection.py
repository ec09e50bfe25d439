"""Pure helpers behind the review pages (no Streamlit here): chart selections → item ids, the confusion
matrix of out-of-sample predictions, per-item predictions and issues, colour codes for the scatter.

Images are identified by ``item_id`` everywhere. A chart's ``customdata`` names a point because a plotly
``point_index`` only counts within one trace: either the item id itself, or (the embedding map, where 20,000
ids would be most of the figure) the point's row in the frame the figure was drawn from, which
:func:`read_selection` turns back into the id given ``ids``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import CleaningError

#: Categorical colours (Plotly's D3-like set, readable on white); extra categories cycle.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#393b79", "#e7969c", "#637939", "#7b4173", "#3182bd", "#e6550d", "#31a354"]
#: Fixed colours for categories that mean "nothing to see" or "gone".
NEUTRAL = {"no issue": "#c7ccd4", "no prediction": "#c7ccd4", "no group": "#c7ccd4", "deleted": "#111827"}


# ---- chart selections ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SelectionEvent:
    """What a plotly chart selection holds: ``kind`` is ``"none"``, ``"point"`` (clicked points) or
    ``"area"`` (a box or lasso); ``item_ids`` in the order plotly reports them, without repeats."""

    kind: str
    item_ids: tuple[str, ...] = ()

    @property
    def signature(self) -> tuple[str, tuple[str, ...]]:
        """Hashable identity used to act on a selection only when it changed."""
        return self.kind, tuple(sorted(self.item_ids))

    @property
    def single(self) -> str | None:
        """The item id when exactly one point was clicked, else None."""
        return self.item_ids[0] if self.kind == "point" and len(self.item_ids) == 1 else None


def _selection_body(selection: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not selection:
        return {}
    body = selection.get("selection", selection)
    return body if isinstance(body, Mapping) else {}


def _item_id(customdata: Any, rows: Sequence[str] | np.ndarray | None = None) -> str | None:
    if isinstance(customdata, list | tuple):
        customdata = customdata[0] if customdata else None
    if customdata is None or customdata == "":
        return None
    if rows is None:
        return str(customdata)
    # a row number: an integer (JSON may give 3.0), never a bool or a string, inside the frame
    if isinstance(customdata, bool) or not isinstance(customdata, int | float | np.integer | np.floating):
        return None
    k = int(customdata)
    return str(rows[k]) if k == customdata and 0 <= k < len(rows) else None


def read_selection(selection: Mapping[str, Any] | None,
                   ids: Sequence[str] | np.ndarray | None = None) -> SelectionEvent:
    """Parse what ``st.plotly_chart(..., on_select=...)`` returns (or stores under its key).

    Accepts ``{"selection": {"points": [...], "box": [...], "lasso": [...]}}`` or the inner dict, or
    None. Without ``ids`` a point's ``customdata`` is the item id, or a list whose first element is; with
    ``ids`` (the item ids of the rows the figure was drawn from) it is a row number, and a point whose
    number is not a row of ``ids`` is ignored. Points without an item id (e.g. a heatmap underneath) are
    ignored.
    """
    body = _selection_body(selection)
    found = [i for i in (_item_id(p.get("customdata"), ids) for p in body.get("points") or []
                       if isinstance(p, Mapping)) if i is not None]
    found = list(dict.fromkeys(found))
    if body.get("box") or body.get("lasso"):
        return SelectionEvent("area", tuple(found))
    return SelectionEvent("point", tuple(found)) if found else SelectionEvent("none")


def rows_in_area(selection: Mapping[str, Any] | None, x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """The positions of the points (``x``, ``y`` in data coordinates) inside the selection's boxes or lassos
    (their union), whether the chart drew them or not; None when the selection has neither. Streamlit gives
    a box as ``{"x": [x0, x1], "y": [y0, y1]}`` and a lasso as ``{"x": [...], "y": [...]}`` (its vertices), in
    data coordinates. A large map draws only a sample of its points as markers
    (:mod:`cleaning.review.mapdensity`): this is how a box or lasso there still selects every image inside."""
    body = _selection_body(selection)
    boxes, lassos = body.get("box") or [], body.get("lasso") or []
    if not boxes and not lassos:
        return None
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    hit = np.zeros(len(x), dtype=bool)
    for shape, is_box in [*((b, True) for b in boxes), *((la, False) for la in lassos)]:
        xs, ys = (np.asarray(shape.get(c) or [], dtype=float) if isinstance(shape, Mapping) else np.zeros(0)
                  for c in ("x", "y"))
        if len(xs) < 2 or len(xs) != len(ys):
            continue
        near = np.flatnonzero((x >= xs.min()) & (x <= xs.max()) & (y >= ys.min()) & (y <= ys.max()))
        if is_box:
            hit[near] = True
        elif len(xs) >= 3:
            hit[near[_in_polygon(x[near], y[near], xs, ys)]] = True
    return np.flatnonzero(hit)


def area_event(ev: SelectionEvent, selection: Mapping[str, Any] | None, x: np.ndarray, y: np.ndarray,
               ids: np.ndarray) -> SelectionEvent:
    """A box or lasso on a map that draws only a sample as markers: every point inside the region (from its
    geometry, :func:`rows_in_area`, against all points ``x``, ``y`` with item ids ``ids``), not only the markers
    plotly reports. Any other event is returned as it is."""
    if ev.kind != "area":
        return ev
    rows = rows_in_area(selection, x, y)
    return ev if rows is None else SelectionEvent("area", tuple(str(i) for i in ids[rows]))


def _in_polygon(x: np.ndarray, y: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Even-odd rule: is each point inside the polygon with vertices ``xs``, ``ys`` (closed implicitly)?"""
    inside = np.zeros(len(x), dtype=bool)
    for x1, y1, x2, y2 in zip(xs, ys, np.roll(xs, -1), np.roll(ys, -1)):
        if y1 == y2:
            continue
        cross = ((y1 > y) != (y2 > y)) & (x < x1 + (y - y1) * (x2 - x1) / (y2 - y1))
        inside ^= cross
    return inside


def selected_points(selection: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The raw point dicts of a selection (for charts whose customdata is not an item id)."""
    return [dict(p) for p in _selection_body(selection).get("points") or [] if isinstance(p, Mapping)]


#: Up to this many ids :func:`drop_stale` looks up with ``isin``; more through a set of every id.
SMALL_SELECTION = 256


def drop_stale(item_ids: Sequence[str], items: pd.DataFrame, keep_deleted: bool = True) -> list[str]:
    """The ids that still name an image of ``items`` (``Workspace.items_frame()``), in the given order.

    An id goes stale when its image vanished from disk (left out of the frame) or, with
    ``keep_deleted=False``, when it was deleted since the chart was drawn.
    """
    wanted = list(dict.fromkeys(item_ids))
    if not wanted:
        return []
    if len(wanted) <= SMALL_SELECTION:  # a click: vectorised over the 20,000+ rows
        hit = items["item_id"].isin(wanted).to_numpy()
        if not keep_deleted:
            hit = hit & ~items["deleted"].to_numpy(dtype=bool)
        known = set(items["item_id"].iloc[np.flatnonzero(hit)].tolist())  # not all 100,000 ids as an array
    elif keep_deleted:  # a set, not isin: pandas 3's isin makes one Arrow scalar per wanted id (10,000: 0.2 s+)
        known = set(items["item_id"].tolist())
    else:
        live = ~items["deleted"].to_numpy(dtype=bool)
        known = {i for i, ok in zip(items["item_id"].tolist(), live.tolist()) if ok}
    return [i for i in wanted if i in known]


# ---- predictions and issues per item ----------------------------------------------------------------
@dataclass
class Predictions:
    """Out-of-sample probabilities by item: ``pred_probs`` is N×K over ``vocab``, rows follow ``item_ids``.

    ``version`` is the store's decision count when they were computed (to tell the user how stale).
    """

    item_ids: list[str]
    vocab: list[str]
    pred_probs: np.ndarray
    version: int = 0
    _row: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.pred_probs.shape != (len(self.item_ids), len(self.vocab)):
            raise CleaningError(f"pred_probs has shape {self.pred_probs.shape}, expected "
                                f"({len(self.item_ids)}, {len(self.vocab)})")
        self._row = {iid: r for r, iid in enumerate(self.item_ids)}

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._row

    def frame(self) -> pd.DataFrame:
        """DataFrame indexed by item_id with columns ``pred`` (argmax label) and ``confidence``."""
        if not self.item_ids:
            return pd.DataFrame({"pred": pd.Series(dtype=str), "confidence": pd.Series(dtype=float)})
        arg = self.pred_probs.argmax(axis=1)
        return pd.DataFrame({"pred": np.asarray(self.vocab, dtype=object)[arg],
                             "confidence": self.pred_probs[np.arange(len(arg)), arg]},
                            index=pd.Index(self.item_ids, name="item_id"))

    def for_item(self, item_id: str, given: str | None = None) -> tuple[str, float, float | None] | None:
        """``(predicted label, its probability, probability of ``given``)`` or None if not predicted.

        The third value is None when ``given`` is None or not a class the model knows."""
        r = self._row.get(item_id)
        if r is None:
            return None
        p = self.pred_probs[r]
        k = int(p.argmax())
        p_given = float(p[self.vocab.index(given)]) if given in self.vocab else None
        return self.vocab[k], float(p[k]), p_given


def issues_by_item(issues: pd.DataFrame | None) -> dict[str, list[dict[str, Any]]]:
    """``{item_id: [issue row as dict, ...]}`` keeping the ranked order of ``issues``."""
    if issues is None or issues.empty:
        return {}
    out: dict[str, list[dict[str, Any]]] = {}
    for rec in issues.to_dict("records"):
        out.setdefault(str(rec["item_id"]), []).append(rec)
    return out


def top_issue(issues: pd.DataFrame | None) -> pd.Series:
    """item_id → the highest-ranked issue type of that item (first row in ranked order)."""
    if issues is None or issues.empty:
        return pd.Series(dtype=object)
    first = issues.drop_duplicates("item_id", keep="first")
    return pd.Series(first["issue"].astype(str).to_numpy(), index=first["item_id"].astype(str))


def embedding_points(items: pd.DataFrame, item_ids: Sequence[str], xy: np.ndarray,
                     preds: Predictions | None = None, issues: pd.DataFrame | None = None,
                     live_only: bool = False) -> pd.DataFrame:
    """One row per projected item that still exists: item_id, x, y, path, label, deleted, pred,
    confidence, issue, group (the junk group of an image, "no group" when none). ``xy`` is N×2 aligned to
    ``item_ids``; ids no longer in ``items`` are dropped, and with ``live_only`` deleted images too (the
    Embedding page's points: a map point's ``customdata`` is its row here). Rows keep the order of
    ``item_ids``."""
    if len(xy) != len(item_ids):
        raise CleaningError(f"{len(xy)} projected points but {len(item_ids)} item ids")
    pts = pd.DataFrame({"item_id": list(item_ids), "x": np.asarray(xy)[:, 0] if len(xy) else [],
                        "y": np.asarray(xy)[:, 1] if len(xy) else []})
    pts = pts.merge(items[["item_id", "path", "label", "deleted"]], on="item_id", how="inner")
    if preds is not None:
        pts = pts.join(preds.frame(), on="item_id")
    else:
        pts["pred"], pts["confidence"] = None, np.nan
    pts["pred"] = pts["pred"].fillna("no prediction")
    pts["issue"] = pts["item_id"].map(top_issue(issues)).astype(object).fillna("no issue")
    pts["group"] = pts["item_id"].map(junk_groups(issues)).astype(object).fillna(NO_GROUP)
    if live_only:
        pts = pts[~pts["deleted"].astype(bool)]
    return pts.reset_index(drop=True)


def nearest_on_map(pts: pd.DataFrame, item_id: str, k: int = 100, ids: np.ndarray | None = None) -> list[str]:
    """The ids of the ``k`` points nearest ``item_id`` on the map (itself first, then by distance in the
    ``x``/``y`` columns of :func:`embedding_points`; ties by position): what the review dialog walks after a
    click on the map. Empty when ``item_id`` is not a point. ``ids``: ``pts["item_id"]`` as a NumPy array,
    when the caller keeps one (turning 100,000 string ids into an array takes tens of ms on every call)."""
    ids = pts["item_id"].to_numpy() if ids is None else ids
    at = np.flatnonzero(ids == item_id)
    if not len(at):
        return []
    xy = pts[["x", "y"]].to_numpy(dtype=float)
    d = ((xy - xy[at[0]]) ** 2).sum(axis=1)
    d[at[0]] = -1.0
    k = min(k, len(d))
    near = np.argpartition(d, k - 1)[:k] if k < len(d) else np.arange(len(d))
    near = near[np.lexsort((near, d[near]))]
    return [str(i) for i in ids[near]]


#: The colour-by-group category of images in no junk group.
NO_GROUP = "no group"


def junk_groups(issues: pd.DataFrame | None) -> dict[str, str]:
    """{item_id: junk-group id} of the images in a junk group (the scan's ``group`` column)."""
    if issues is None or "group" not in issues.columns or issues.empty:
        return {}
    g = issues[issues["group"].astype(str).str.len() > 0]
    return dict(zip(g["item_id"].astype(str), g["group"].astype(str)))


# ---- confusion matrix -------------------------------------------------------------------------------
@dataclass
class Confusion:
    """Counts of (given label, predicted label): ``counts[i, j]`` images labelled ``vocab[i]`` that the
    model predicts as ``vocab[j]``; ``cells[(i, j)]`` their item ids. ``counts.sum() == n``."""

    vocab: list[str]
    counts: np.ndarray
    cells: dict[tuple[int, int], list[str]]

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def ids(self, given: str, predicted: str) -> list[str]:
        """Item ids in one cell ([] for an empty cell or a label not in ``vocab``)."""
        if given not in self.vocab or predicted not in self.vocab:
            return []
        return list(self.cells.get((self.vocab.index(given), self.vocab.index(predicted)), []))

    def most_confused(self, min_count: int = 1) -> list[tuple[str, str, int]]:
        """Off-diagonal cells as ``(given, predicted, count)``, largest first (like fastai's)."""
        out = [(self.vocab[i], self.vocab[j], int(c)) for (i, j), c in np.ndenumerate(self.counts)
               if i != j and c >= min_count]
        return sorted(out, key=lambda t: (-t[2], t[0], t[1]))

    def accuracy(self) -> float:
        return float(np.trace(self.counts) / self.n) if self.n else float("nan")


def compute_confusion(item_ids: Sequence[str], labels: Sequence[str], predicted: Sequence[str],
                      vocab: Sequence[str] | None = None) -> Confusion:
    """The K×K confusion matrix of given ``labels`` vs ``predicted`` labels (aligned to ``item_ids``).

    ``vocab`` (row and column order) defaults to the sorted union of both.

    Raises:
        CleaningError: the three sequences differ in length, or a label is missing from ``vocab``.
    """
    if not len(item_ids) == len(labels) == len(predicted):
        raise CleaningError(f"{len(item_ids)} item ids, {len(labels)} labels, {len(predicted)} predictions")
    voc = list(vocab) if vocab is not None else sorted(set(labels) | set(predicted))
    index = {lab: k for k, lab in enumerate(voc)}
    counts = np.zeros((len(voc), len(voc)), dtype=np.int64)
    cells: dict[tuple[int, int], list[str]] = {}
    for iid, g, p in zip(item_ids, labels, predicted):
        if g not in index or p not in index:
            raise CleaningError(f"label {g if g not in index else p!r} is not in the vocabulary {voc}")
        cell = (index[g], index[p])
        counts[cell] += 1
        cells.setdefault(cell, []).append(str(iid))
    return Confusion(voc, counts, cells)


def confusion_from_items(items: pd.DataFrame, preds: Predictions) -> Confusion:
    """Confusion over the *current* labels of non-deleted items that have a prediction.

    Rows follow the current label (so a relabel or delete moves or removes an image at once), columns the
    out-of-sample prediction; the sum is the number of such items.
    """
    live = items[~items["deleted"] & items["item_id"].isin(preds.item_ids)]
    pred = preds.frame().reindex(live["item_id"])["pred"]
    vocab = sorted(set(live["label"]) | set(preds.vocab))
    return compute_confusion(list(live["item_id"]), list(live["label"]), list(pred), vocab)


# ---- colours ----------------------------------------------------------------------------------------
def colour_codes(values: Sequence[str], categories: Sequence[str] | None = None,
                 fixed: Mapping[str, str] | None = None) -> tuple[np.ndarray, list[list[Any]], list[str]]:
    """Numeric colour codes for a categorical colouring of many points.

    Returns ``(codes, colorscale, categories)``: ``codes[i]`` is the index of ``values[i]`` in
    ``categories`` (default: sorted unique values, neutral ones such as "no issue" last);
    ``colorscale`` is a stepped plotly colour scale to use with ``cmin=-0.5, cmax=K-0.5``. One number per
    point instead of one colour string keeps a 20k-point figure cheap to build and to send.
    """
    fixed = {**NEUTRAL, **(fixed or {})}
    vals = [str(v) for v in values]
    if categories is None:
        uniq = sorted(set(vals))
        categories = [c for c in uniq if c not in fixed] + [c for c in uniq if c in fixed]
    cats = list(categories)
    index = {c: k for k, c in enumerate(cats)}
    missing = sorted(set(vals) - set(index))
    if missing:
        raise CleaningError(f"values {missing[:3]} are not among the categories {cats}")
    codes = np.fromiter((index[v] for v in vals), dtype=np.int32, count=len(vals))
    colours = category_colours(cats, fixed)
    k = max(len(cats), 1)
    scale: list[list[Any]] = []
    for i, col in enumerate(colours or ["#1f77b4"]):
        scale += [[i / k, col], [(i + 1) / k, col]]
    return codes, scale, cats


def category_colours(categories: Sequence[str], fixed: Mapping[str, str] | None = None) -> list[str]:
    """One colour per category: the fixed ones (neutral grey for "no issue", …), the palette for the rest."""
    fixed = {**NEUTRAL, **(fixed or {})}
    out, n_free = [], 0
    for c in categories:
        if c in fixed:
            out.append(fixed[c])
        else:
            out.append(PALETTE[n_free % len(PALETTE)])
            n_free += 1
    return out
