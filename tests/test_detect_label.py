"""Label-error detector: neighbour votes, the blend, confident-learning flags and the suggested label,
on arrays and on a small tree of real photo crops with planted wrong labels (real model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cleaning.detect import ISSUE_COLUMNS, Neighbours, compute_neighbours
from cleaning.detect.label import compute_label_scores, compute_neighbour_label_probs, find_label_issues
from cleaning.errors import CleaningError
from tests.hostile import make_image_tree


@pytest.fixture(autouse=True)
def _shared_model_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANING_CACHE", str(tmp_path_factory.getbasetemp() / "model-cache"))


def test_neighbour_votes_are_similarity_weighted_and_smoothed() -> None:
    labels = np.array([0, 0, 1, 1])
    nb = Neighbours(np.array([[1, 2], [0, 3], [3, 0], [2, -1]]),
                    np.array([[0.9, 0.1], [0.9, 0.2], [0.8, 0.1], [0.8, -np.inf]], dtype=np.float32))
    p = compute_neighbour_label_probs(labels, 2, nb, prior_count=0.0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[0], [0.9, 0.1])
    assert p[3, 1] == pytest.approx(1.0)  # the missing neighbour does not vote
    smoothed = compute_neighbour_label_probs(labels, 2, nb, prior_count=1.0)
    assert 0.5 < smoothed[3, 1] < 1.0


def _three_clusters() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, truth, given, probs): 3 clusters of 20, images 3 and 25 mislabelled, a model that learnt the clusters."""
    rng = np.random.default_rng(0)
    centres = np.eye(3, 16, dtype=np.float32)
    x = np.concatenate([c + 0.15 * rng.standard_normal((20, 16)) for c in centres]).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    truth = np.repeat(np.arange(3), 20)
    given = truth.copy()
    given[[3, 25]] = [2, 0]
    probs = np.full((60, 3), 0.05)
    probs[np.arange(60), truth] = 0.9
    return x, truth, given, probs


def test_a_cluster_with_one_wrong_label_is_flagged_with_the_right_suggestion() -> None:
    x, truth, given, probs = _three_clusters()
    ls = compute_label_scores(given, probs, compute_neighbours(x, 10))
    assert set(np.flatnonzero(ls.flagged)) == {3, 25}
    assert ls.suggested[3] == 0 and ls.suggested[25] == 1
    assert ls.score.min() >= 0 and ls.score.max() <= 1 and ls.score[3] > 0.8
    df = find_label_issues([f"id{i}" for i in range(60)], given, ["a", "b", "c"], ls)
    assert list(df.columns) == ISSUE_COLUMNS and set(df["issue"]) == {"label"}
    row = df.set_index("item_id").loc["id3"]
    assert row["suggested_label"] == "a"
    assert "labelled *c*; predicted *a* with 0.90" in row["reason"] and "nearest neighbours are *a*" in row["reason"]


def test_relearn_is_called_with_corrected_labels() -> None:
    x = np.eye(6, dtype=np.float32)
    given = np.array([0, 0, 0, 1, 1, 0])
    probs = np.tile([0.5, 0.5], (6, 1))
    seen: list[np.ndarray] = []

    def relearn(labels: np.ndarray) -> np.ndarray:
        seen.append(labels.copy())
        return probs

    compute_label_scores(given, probs, compute_neighbours(x, 2), relearn=relearn, passes=3)
    assert len(seen) == 2 and all(s.shape == (6,) for s in seen)


def test_mismatched_shapes_and_one_class_are_handled() -> None:
    nb = compute_neighbours(np.eye(4, dtype=np.float32), 2)
    with pytest.raises(CleaningError):
        compute_label_scores(np.zeros(4, int), np.ones((3, 1)), nb)
    ls = compute_label_scores(np.zeros(4, int), np.ones((4, 1)), nb)
    assert not ls.flagged.any() and (ls.score == 0).all()


def test_planted_wrong_labels_in_a_real_photo_tree(tmp_path: Path) -> None:
    from cleaning.model.embed import compute_embeddings
    from cleaning.model.oos import compute_oos_pred_probs

    tree = make_image_tree(tmp_path, {"cat": 14, "coffee": 14, "astronaut": 14}, size=64, seed=1)
    paths = [p for label in tree for p in tree[label]]
    vocab = sorted(tree)
    truth = np.array([vocab.index(p.parent.name) for p in paths])
    given = truth.copy()
    wrong = {2: "coffee", 17: "astronaut", 30: "cat"}  # two cats and a coffee filed elsewhere
    for i, lab in wrong.items():
        given[i] = vocab.index(lab)
    x = compute_embeddings(paths)
    probs = compute_oos_pred_probs(x, given, vocab)
    ls = compute_label_scores(given, probs, compute_neighbours(x, 10),
                              relearn=lambda lab: compute_oos_pred_probs(x, lab, vocab))
    flagged = set(np.flatnonzero(ls.flagged))
    assert set(wrong) <= flagged and len(flagged) <= len(wrong) + 2
    assert all(ls.suggested[i] == truth[i] for i in wrong)
    top = np.argsort(-ls.score)[:3]
    assert set(top) == set(wrong)



def test_by_default_the_opinions_are_re_learnt_once_without_the_flagged_images() -> None:
    """One re-learning pass (``PASSES = 2``): the classifier is re-fitted once on the given labels with the
    confident-learning flags left out (label -1: pruned, cleanlab's prune-and-retrain); a second pass would
    confirm its own mistakes (see the module doc)."""
    x, _, given, probs = _three_clusters()
    seen: list[np.ndarray] = []

    def relearn(labels: np.ndarray) -> np.ndarray:
        seen.append(labels.copy())
        return probs

    ls = compute_label_scores(given, probs, compute_neighbours(x, 10), relearn=relearn)
    assert len(seen) == 1
    assert (seen[0] != given).sum() == 2 and seen[0][3] == -1 and seen[0][25] == -1  # the two errors, left out
    assert set(np.flatnonzero(ls.flagged)) == {3, 25}
