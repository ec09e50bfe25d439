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


def test_a_cluster_with_one_wrong_label_is_flagged_with_the_right_suggestion() -> None:
    rng = np.random.default_rng(0)
    centres = np.eye(3, 16, dtype=np.float32)
    x = np.concatenate([c + 0.15 * rng.standard_normal((20, 16)) for c in centres]).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    truth = np.repeat(np.arange(3), 20)
    given = truth.copy()
    given[[3, 25]] = [2, 0]
    probs = np.full((60, 3), 0.05)
    probs[np.arange(60), truth] = 0.9  # a model that learnt the clusters
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


def test_a_clear_error_beyond_the_count_is_flagged_only_when_both_opinions_reject_it_and_agree(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Confident learning counts none of these (each class's members are surer than any of them); the
    second rule flags the image that the model and its neighbours both move to the same class, and
    neither the one whose neighbours carry its label nor the one whose two opinions disagree."""
    import cleaning.detect.label as label_mod

    rng = np.random.default_rng(3)
    centres = np.eye(3, 16, dtype=np.float32)
    x = np.concatenate([c + 0.1 * rng.standard_normal((20, 16)) for c in centres]).astype(np.float32)
    given = np.repeat(np.arange(3), 20)
    probs = np.full((60, 3), 0.01)
    probs[np.arange(60), given] = 0.98
    # A: filed under 0, sits among the 1s, the model says 1  -> both reject 0 and agree on 1
    # B: filed under 0, sits among the 0s, the model says 1  -> the neighbours carry its label
    # C: filed under 0, sits among the 2s, the model says 1  -> the two opinions name different classes
    a, b, c = 25, 5, 45
    given[[a, c]] = 0
    x[b] = centres[0] + 0.05 * rng.standard_normal(16)
    probs[[a, b, c]] = [0.05, 0.6, 0.35]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    nb = compute_neighbours(x, 10)
    ls = compute_label_scores(given, probs, nb)
    assert set(np.flatnonzero(ls.flagged)) == {a}
    assert ls.suggested[a] == 1 and ls.n_same[a] == 0
    assert ls.n_same[b] > 1 and ls.knn_probs[c].argmax() == 2
    monkeypatch.setattr(label_mod, "OPINION_SURE", 0.0)  # the rule off: the count alone misses A
    assert not compute_label_scores(given, probs, nb).flagged.any()
