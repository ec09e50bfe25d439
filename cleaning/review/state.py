"""The analysis of one workspace as the review pages and the CLI use it: predictions, the issue table,
their errors, and whether decisions made since have left them stale.

Computing is slow (embeddings, cross-validated heads, every detector) and its results are cached on disk
(:mod:`cleaning.data.cache`), but a review session must never wait for a recomputation after each click:
an :class:`Analysis` keeps the latest results in memory until asked to ``refresh``, and says when they are
stale (decisions were recorded, undone or redone since they were computed). One object per workspace
and process (:func:`analysis_of`), safe to share between threads (Streamlit sessions), so two browser
tabs on one data set share one copy, and two data sets never share anything.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CleaningError
from .selection import Predictions

if TYPE_CHECKING:
    import pandas as pd

    from ..data.workspace import Workspace


class Analysis:
    """Latest predictions and issue table of one workspace, with their errors and staleness."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._lock = threading.RLock()
        self._preds: Predictions | None = None
        self._preds_at: str | None = None  # store.version_key() when the predictions were computed
        self._issues: pd.DataFrame | None = None
        self._issues_at: str | None = None
        self._tried_preds = False
        self._tried_issues = False
        self.predictions_error: CleaningError | None = None
        self.issues_error: CleaningError | None = None

    # ---- predictions --------------------------------------------------------------------------------
    @property
    def has_predictions(self) -> bool:
        """True once predictions were computed (or failed) in this process: asking is then free."""
        return self._tried_preds

    @property
    def held_predictions(self) -> Predictions | None:
        """The predictions in memory, if any (never computes them)."""
        return self._preds

    def predictions(self, refresh: bool = False) -> Predictions | None:
        """Out-of-sample predictions (computed on first use, then kept until ``refresh``). None, with
        the reason in :attr:`predictions_error`, when they cannot be computed."""
        with self._lock:
            if refresh or not self._tried_preds:
                from .analysis import load_or_compute_predictions

                try:
                    with self.ws.pinned() as snap:  # one data-set version for embeddings and labels
                        version = snap.version
                        oos = load_or_compute_predictions(self.ws)
                except CleaningError as e:
                    version = self.ws.store.version_key()
                    self._preds, self.predictions_error = None, e
                else:
                    self._preds = Predictions(list(oos.item_ids), list(oos.vocab), oos.pred_probs,
                                              self.ws.store.decision_count())
                    self.predictions_error = None
                self._preds_at, self._tried_preds = version, True
            return self._preds

    def predictions_stale(self) -> bool:
        """True when decisions were made since the predictions in use were computed."""
        return self._preds_at is not None and self._preds_at != self.ws.store.version_key()

    # ---- issues -------------------------------------------------------------------------------------
    @property
    def has_issues(self) -> bool:
        return self._tried_issues

    def issues(self, refresh: bool = False, compute: bool = True,
               progress: Callable[[str, float], None] | None = None) -> pd.DataFrame | None:
        """The ranked issue table (:func:`cleaning.review.analysis.load_or_find_issues`), kept until
        ``refresh``. None when it was not computed yet and ``compute`` is False, or when the scan failed
        (the reason in :attr:`issues_error`). ``progress(what, fraction)`` is called while computing."""
        with self._lock:
            if not compute and not self._tried_issues:
                return None
            if refresh or not self._tried_issues:
                from .analysis import load_or_find_issues

                version = self.ws.store.version_key()
                try:
                    self._issues, self.issues_error = load_or_find_issues(self.ws, progress), None
                    version = str(self._issues.attrs.get("data_version", version))  # the scan's snapshot
                except CleaningError as e:
                    self._issues, self.issues_error = None, e
                self._issues_at, self._tried_issues = version, True
            return self._issues

    def issues_stale(self) -> bool:
        """True when decisions were made since the issue table in use was computed."""
        return self._issues_at is not None and self._issues_at != self.ws.store.version_key()

    def issues_token(self) -> str:
        """Identifies the issue table in use alone (a key for caches built from it and the items only)."""
        return f"{self._issues_at}|{id(self._issues)}"

    def token(self) -> str:
        """Identifies the predictions and issue table in use (a key for caches built from them)."""
        return f"{self._preds_at}|{id(self._preds)}|{self._issues_at}|{id(self._issues)}"


#: At most this many workspaces keep an analysis in memory (hosted: one per visitor's data set); the
#: least recently used is dropped first and simply reloaded from the disk caches when asked again.
MAX_HELD = 32

_REGISTRY: OrderedDict[tuple[str, str], Analysis] = OrderedDict()
_REGISTRY_LOCK = threading.Lock()


def analysis_of(ws: Workspace) -> Analysis:
    """The one :class:`Analysis` of this workspace in this process (created on first use)."""
    key = (str(Path(ws.root)), str(Path(ws.state_dir)))
    with _REGISTRY_LOCK:
        held = _REGISTRY.get(key)
        if held is None:
            held = _REGISTRY[key] = Analysis(ws)
            while len(_REGISTRY) > MAX_HELD:
                _REGISTRY.popitem(last=False)
        _REGISTRY.move_to_end(key)
        return held


def forget(ws: Workspace) -> None:
    """Drop the in-memory analysis of a workspace (e.g. a hosted session's workspace being removed)."""
    with _REGISTRY_LOCK:
        _REGISTRY.pop((str(Path(ws.root)), str(Path(ws.state_dir))), None)
