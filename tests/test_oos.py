"""Out-of-sample probabilities: no row comes from a model that saw that image (or its duplicate), the
shapes and vocab order, and the workspace cache (invalidated by a decision, reused otherwise)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cleaning.errors import CleaningError
from cleaning.model.oos import (
    assign_folds,
    compute_oos_pred_probs,
    cross_val_pred_probs,
    encode_labels,
    make_groups,
)
from tests.conftest import demo_subset_workspace

REPO = Path(__file__).resolve().parent.parent


def _head(c: float, seed: int):  # noqa: ANN202 — an sklearn pipeline
    """The reference head: scikit-learn's scaler + logistic regression, what each fold must equal."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=300, random_state=seed))


def _random_task(n: int = 160, d: int = 256, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True), rng.integers(0, k, n)


def test_memorisation_random_labels_stay_at_chance() -> None:
    """A head that *can* memorise random labels (in-sample ≈ 100 %) gives chance-level out-of-sample
    probabilities: no row was predicted by a model that saw it."""
    x, y = _random_task()
    vocab = ["a", "b", "c", "d"]
    in_sample = _head(100.0, 0).fit(x, y).predict(x)
    assert (in_sample == y).mean() > 0.95
    p = compute_oos_pred_probs(x, y, vocab, c=100.0)
    assert (p.argmax(1) == y).mean() < 0.4
    assert p[np.arange(len(y)), y].mean() < 0.4


def test_exact_duplicates_do_not_leak_when_grouped() -> None:
    """Every image twice (identical embedding, same random label). Without groups a copy in the
    training folds gives the answer away; with groups both copies are held out together."""
    x, y = _random_task(n=150)
    x2, y2 = np.concatenate([x, x]), np.concatenate([y, y])
    groups = np.concatenate([np.arange(150), np.arange(150)])
    vocab = ["a", "b", "c", "d"]
    leaky = compute_oos_pred_probs(x2, y2, vocab, c=100.0)
    grouped = compute_oos_pred_probs(x2, y2, vocab, groups=groups, c=100.0)
    assert (leaky.argmax(1) == y2).mean() > 0.7
    assert (grouped.argmax(1) == y2).mean() < 0.45


def test_each_row_equals_a_head_fitted_without_its_fold() -> None:
    x, y = _random_task(n=120, k=3, seed=1)
    folds = assign_folds(y, 4, seed=3)
    p = cross_val_pred_probs(x, y, 3, folds, c=1.0)
    for f in range(4):
        held = folds == f
        ref = _head(1.0, 0).fit(x[~held], y[~held]).predict_proba(x[held])
        np.testing.assert_allclose(p[held], ref, atol=1e-5)


def test_folds_fitted_at_once_keep_their_copies_under_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two folds run in parallel only while their training copies fit FOLD_COPY_BUDGET (at 100,000 images they
    do not: the scan's peak went over 3 GB); the probabilities do not depend on it."""
    import threading

    from cleaning.model import oos

    x, y = _random_task(n=200, k=3, seed=2)
    folds = assign_folds(y, 5, seed=0)
    fit, lock, state = oos._fit_fold, threading.Lock(), {"now": 0, "most": 0}

    def counting(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        try:
            return fit(*a, **kw)
        finally:
            with lock:
                state["now"] -= 1

    monkeypatch.setattr(oos, "_fit_fold", counting)
    monkeypatch.setattr(oos, "n_cpus", lambda: 2)
    one_copy = 4 * x.shape[1] * 160  # a fold's 160 training rows as float32
    monkeypatch.setattr(oos, "FOLD_COPY_BUDGET", 2 * one_copy - 1)
    alone = cross_val_pred_probs(x, y, 3, folds)
    assert state["most"] == 1
    monkeypatch.setattr(oos, "FOLD_COPY_BUDGET", 2 * one_copy)
    together = cross_val_pred_probs(x, y, 3, folds)
    np.testing.assert_array_equal(alone, together)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 30)), min_size=8, max_size=80),
       st.integers(2, 6), st.integers(0, 5))
def test_groups_never_straddle_folds(rows: list[tuple[int, int]], n_folds: int, seed: int) -> None:
    y = np.array([r[0] for r in rows])
    groups = np.array([r[1] for r in rows])
    if len(set(groups)) < 2:
        return
    folds = assign_folds(y, n_folds, groups, seed)
    assert folds.min() >= 0
    for g in set(groups):
        assert len(set(folds[groups == g])) == 1
    assert len(set(folds)) >= 2


def test_make_groups_joins_rows_sharing_any_key() -> None:
    sha = ["s1", "s2", "s3", "s4", "s1"]
    phash = ["p1", "p2", "p2", None, "p9"]
    g = make_groups(sha, phash)
    assert g[0] == g[4] and g[1] == g[2]
    assert len({g[0], g[1], g[3]}) == 3


def test_probabilities_are_rows_over_vocab() -> None:
    x, y = _random_task(n=60, k=3)
    vocab = ["cat", "dog", "eel"]
    labels = [vocab[i] for i in y]
    p = compute_oos_pred_probs(x, labels, vocab)
    assert p.shape == (60, 3) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert (p > 0).all()
    np.testing.assert_array_equal(encode_labels(labels, vocab), y)


def test_separable_classes_are_predicted_out_of_sample() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 32)) * 3
    y = np.repeat(np.arange(3), 30)
    x = (centres[y] + rng.normal(size=(90, 32))).astype(np.float32)
    p = compute_oos_pred_probs(x, y, ["a", "b", "c"])
    assert (p.argmax(1) == y).mean() > 0.9


def test_edge_cases() -> None:
    x, _ = _random_task(n=6)
    assert compute_oos_pred_probs(x, ["a"] * 6, ["a"]).tolist() == [[1.0]] * 6
    with pytest.raises(CleaningError, match="not in the vocab"):
        compute_oos_pred_probs(x, ["a"] * 5 + ["zzz"], ["a", "b"])
    with pytest.raises(CleaningError, match="at least two distinct images"):
        compute_oos_pred_probs(x[:2], ["a", "b"], ["a", "b"], groups=np.array([0, 0]))
    p = compute_oos_pred_probs(x[:4], ["a", "a", "a", "b"], ["a", "b"])  # a class seen in one fold only
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)


# ---- the workspace cache ---------------------------------------------------------------------------
@pytest.fixture
def ws(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    return demo_subset_workspace(tmp_path, tmp_path_factory, monkeypatch, per_class=8)


def test_oos_cache_is_reused_and_invalidated_by_a_decision(ws, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    import cleaning.model.oos as oos

    first = oos.load_or_compute_oos(ws)
    assert first.pred_probs.shape == (24, 3) and first.vocab == ["bird", "fruit", "mammal"]
    calls = []
    real = oos.cross_val_pred_probs
    monkeypatch.setattr(oos, "cross_val_pred_probs", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = oos.load_or_compute_oos(ws)
    assert calls == [] and again.key == first.key
    np.testing.assert_array_equal(again.pred_probs, first.pred_probs)

    iid = first.item_ids[0]
    ws.store.record([iid], "relabel", label="fruit")
    relabelled = oos.load_or_compute_oos(ws)
    assert calls == [1] and relabelled.key != first.key
    assert relabelled.labels[relabelled.item_ids.index(iid)] == "fruit"

    assert relabelled.how == "fitted: a label changed since the heads were fitted"

    ws.store.record([first.item_ids[1]], "delete")
    deleted = oos.load_or_compute_oos(ws)  # 1 of 24 rows removed: the kept heads answer (cleaning.model.foldheads)
    assert calls == [1] and first.item_ids[1] not in deleted.item_ids and len(deleted.item_ids) == 23
    assert deleted.key != relabelled.key and deleted.how == "reused: 1 rows changed since the heads were fitted"
    keep = [relabelled.item_ids.index(i) for i in deleted.item_ids]
    np.testing.assert_allclose(deleted.pred_probs, relabelled.pred_probs[keep], atol=1e-5)

    ws.store.undo()
    ws.store.undo()
    back = oos.load_or_compute_oos(ws)  # the same labels as at first: the first cache file again
    assert calls == [1] and back.key == first.key


def test_oos_changes_with_the_model(ws, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    import cleaning.model.embed as embed
    import cleaning.model.oos as oos

    first = oos.load_or_compute_oos(ws)
    monkeypatch.setattr(embed, "PREPROCESS_VERSION", embed.PREPROCESS_VERSION + 100)  # "a new model"
    calls = []
    real = embed.embed_images
    monkeypatch.setattr(embed, "embed_images", lambda paths, *a, **k: calls.append(len(paths)) or real(paths, *a, **k))
    second = oos.load_or_compute_oos(ws)
    assert calls == [24] and second.key != first.key


def test_label_minus_one_is_predicted_but_never_trained_on() -> None:
    """The label check's prune-and-retrain: rows labelled -1 get probabilities but teach no head."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 32)) * 3
    y = np.repeat(np.arange(3), 30)
    x = (centres[y] + rng.normal(size=(90, 32))).astype(np.float32)
    wrong = y.copy()
    wrong[:12] = 2  # 12 of class 0 filed under 2: a head trained on them would learn it
    pruned = wrong.copy()
    pruned[:12] = -1
    p = compute_oos_pred_probs(x, pruned, ["a", "b", "c"], c=100.0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert (p[:12].argmax(1) == 0).all()  # predicted, as what they look like
    with pytest.raises(CleaningError):
        compute_oos_pred_probs(x, np.full(90, -2), ["a", "b", "c"])



def test_heads_see_principal_components_only_above_the_threshold() -> None:
    """At or below ``pca_above`` rows the heads are fitted on the embeddings as they are (every benchmark set,
    ≤ 4,000 images, is far below ``PCA_ABOVE``); above it on the first ``HEAD_DIMS`` principal components, and
    the kept heads, mapped back to the embedding space, give the same probabilities."""
    from cleaning.model import headpca
    from cleaning.model.foldheads import FoldHeads

    assert headpca.PCA_ABOVE >= 4_000
    x, y = _random_task(n=300, d=256, k=3, seed=5)
    folds = assign_folds(y, 5, seed=0)
    full = cross_val_pred_probs(x, y, 3, folds, pca_above=300)
    np.testing.assert_array_equal(cross_val_pred_probs(x, y, 3, folds), full)  # the default does not bind
    fitted: dict[int, tuple[np.ndarray, ...]] = {}
    reduced = cross_val_pred_probs(x, y, 3, folds, heads=fitted, pca_above=299)
    mean, basis = headpca.principal_basis(x)
    assert basis.shape == (256, headpca.HEAD_DIMS)
    np.testing.assert_array_equal(reduced, cross_val_pred_probs(headpca.project(x, mean, basis), y, 3, folds))
    assert np.abs(reduced - full).max() > 1e-2  # it binds: other features
    kept = FoldHeads.from_fit(["a", "b", "c"], [f"{i:064x}" for i in range(300)], y, folds, fitted)
    np.testing.assert_allclose(kept.predict(x, folds), reduced, atol=1e-4)
