"""The analysis object shared by the pages and the CLI: kept until refresh, stale after a decision,
errors held, one per workspace."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cleaning.data.workspace import Workspace
from cleaning.errors import CleaningError
from cleaning.review import state as state_mod
from cleaning.review.state import Analysis, analysis_of, forget

REPO = Path(__file__).resolve().parent.parent


def _tree(root: Path, per_class: int = 8) -> Workspace:
    for label in ("bird", "fruit", "mammal"):
        (root / label).mkdir(parents=True)
        for p in sorted((REPO / "demo" / "data" / label).glob("*.jpg"))[:per_class]:
            shutil.copy(p, root / label / p.name)
    return Workspace.open(root)


@pytest.fixture
def ws(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("CLEANING_CACHE", str(tmp_path_factory.getbasetemp() / "model-cache"))
    return _tree(tmp_path / "data")


def test_predictions_are_kept_until_refresh_and_go_stale_after_a_decision(ws: Workspace,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import cleaning.model.oos as oos

    a = Analysis(ws)
    assert not a.has_predictions and not a.predictions_stale()
    first = a.predictions()
    assert first is not None and len(first.item_ids) == 24 and a.has_predictions
    calls: list[bool] = []  # one per out-of-sample fit asked for: on the block (True) or the embedding (False)
    real = oos.load_or_compute_oos
    monkeypatch.setattr(oos, "load_or_compute_oos", lambda w, **k: calls.append(k.get("mid", False)) or real(w, **k))
    ws.store.record([first.item_ids[0]], "delete")
    assert a.predictions_stale()
    assert a.predictions() is first and calls == []  # reviewing never waits for a recomputation
    again = a.predictions(refresh=True)
    # both layers' heads, for the one the label check reads (cleaning.review.analysis.load_or_compute_predictions)
    assert calls == [False, True] and again is not first and len(again.item_ids) == 23 and not a.predictions_stale()


def test_issue_table_is_computed_once_and_compute_false_never_computes(ws: Workspace) -> None:
    a = Analysis(ws)
    assert a.issues(compute=False) is None and not a.has_issues
    table = a.issues()
    assert table is not None and {"item_id", "issue", "severity"} <= set(table.columns)
    assert a.issues(compute=False) is table and a.issues() is table
    token = a.token()
    ws.store.record([str(table["item_id"].iloc[0])], "keep")
    assert a.issues_stale() and a.token() == token
    a.issues(refresh=True)
    assert not a.issues_stale() and a.token() != token


def test_errors_are_held_not_raised(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    import cleaning.model.oos as oos

    def boom(_ws: Workspace, **_kw: object) -> None:
        raise CleaningError("no model here", "install it")

    monkeypatch.setattr(oos, "load_or_compute_oos", boom)
    a = Analysis(ws)
    assert a.predictions() is None and a.has_predictions
    assert a.predictions_error is not None and a.predictions_error.message == "no model here"


def test_one_analysis_per_workspace(tmp_path: Path) -> None:
    one = _tree(tmp_path / "one", per_class=2)
    two = _tree(tmp_path / "two", per_class=2)
    assert analysis_of(one) is analysis_of(one)
    assert analysis_of(one) is not analysis_of(two)
    held = analysis_of(one)
    forget(one)
    assert analysis_of(one) is not held
    forget(one), forget(two)
    assert not any(k[0] in (str(one.root), str(two.root)) for k in state_mod._REGISTRY)


def test_registry_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_mod, "MAX_HELD", 2)
    spaces = [_tree(tmp_path / f"s{i}", per_class=1) for i in range(3)]
    first = analysis_of(spaces[0])
    analysis_of(spaces[1]), analysis_of(spaces[2])
    assert len([k for k in state_mod._REGISTRY if k[0].startswith(str(tmp_path))]) <= 2
    assert analysis_of(spaces[0]) is not first  # dropped, then rebuilt (from the disk caches) on demand
    for w in spaces:
        forget(w)
