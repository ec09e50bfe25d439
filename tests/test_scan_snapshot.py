"""A scan works on one snapshot (data-set version): a decision recorded while it runs is kept and makes
the result stale, never inconsistent (issue 14: 'labels (498), pred_probs (498, 5) and neighbours (500)')."""

from __future__ import annotations

from pathlib import Path

import pytest

from cleaning.data.workspace import Workspace
from cleaning.review.analysis import compute_scores, find_issues, is_stale
from tests.hostile import make_image_tree


@pytest.fixture(autouse=True)
def _shared_model_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANING_CACHE", str(tmp_path_factory.getbasetemp() / "model-cache"))


def test_decision_during_scan_is_kept_and_makes_the_result_stale(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    make_image_tree(root, {"cat": 8, "coffee": 8, "astronaut": 8}, size=64, seed=3)
    ws = Workspace.open(root)
    other = Workspace.open(root)  # the app (or the CLI) in another process
    victims = [ws.store.find_item(f"cat/img_{i}.jpg") for i in range(2)]
    before = ws.store.version_key()
    stages: list[str] = []

    def progress(what: str, frac: float) -> None:
        stages.append(what)
        if what.startswith("out-of-sample") and other.store.decision_count() == 0:
            other.store.record(victims, "delete", note="decided while the scan ran")

    issues = find_issues(ws, progress=progress)
    assert any(s.startswith("out-of-sample") for s in stages)
    assert other.store.current()[victims[0]].deleted  # the decision is kept
    assert issues.attrs["data_version"] == before  # labelled with the snapshot it was computed on
    assert is_stale(ws, issues)
    assert set(victims) & set(issues["item_id"]) <= set(victims)
    fresh = compute_scores(ws)  # the next scan sees the decision
    assert not is_stale(ws, fresh)
    assert not set(victims) & set(fresh["item_id"])
    assert len(fresh) == 22


def test_cached_analysis_follows_its_inputs_not_the_decision_log(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A "looks fine" decision, or a relabel undone again, leaves the analysis' inputs as they were: a
    restarted app (a new Workspace) finds the cached analysis instead of running every detector again
    (minutes at 100,000 images); a relabel that stays is a new input and is analysed."""
    from cleaning.review import analysis

    root = tmp_path / "ds"
    make_image_tree(root, {"cat": 8, "coffee": 8, "astronaut": 8}, size=64, seed=4)
    ws = Workspace.open(root)
    first = compute_scores(ws)
    runs: list[int] = []
    real = analysis._analyse
    monkeypatch.setattr(analysis, "_analyse", lambda *a, **k: runs.append(1) or real(*a, **k))
    item = ws.store.find_item("cat/img_0.jpg")

    ws.store.record([item], "keep", note="looks fine")
    again = compute_scores(Workspace.open(root))
    assert runs == [] and not is_stale(ws, again)  # same inputs: cached, labelled with today's version
    assert again["outlier_score"].tolist() == first["outlier_score"].tolist()

    ws.store.record([item], "relabel", label="coffee")
    ws.store.undo()
    compute_scores(Workspace.open(root))
    assert runs == []  # undone: the inputs are as before

    ws.store.record([item], "relabel", label="coffee")
    moved = compute_scores(Workspace.open(root))
    assert runs == [1]  # a label the analysis learns from changed
    assert moved.set_index("item_id").loc[item, "label"] == "coffee"
