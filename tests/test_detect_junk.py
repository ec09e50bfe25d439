"""Junk groups on generated embeddings: a look-alike cluster filed under every class is found as one group;
a tight legitimate sub-type near its class core, and plain label errors, are not."""

from __future__ import annotations

import numpy as np

from cleaning.detect import ISSUE_COLUMNS
from cleaning.detect.junk import compute_class_fit, compute_junk_groups, find_junk
from cleaning.detect.outlier import compute_outlier_scores

DIM = 48


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _classes(rng: np.random.Generator, n: int = 40, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """k classes of n points: a class centre plus broad noise (classes are varied, like photo classes)."""
    centres = np.eye(k, DIM) * 3.0
    x = np.concatenate([c + rng.standard_normal((n, DIM)) for c in centres])
    return x, np.repeat(np.arange(k), n)


def test_a_look_alike_cluster_spread_over_every_class_is_one_group() -> None:
    rng = np.random.default_rng(0)
    x, y = _classes(rng)
    junk_centre = np.zeros(DIM)
    junk_centre[-1] = 3.0
    junk = junk_centre + 0.35 * rng.standard_normal((9, DIM))  # tight: many photos of the sun
    xs, ys = _unit(np.vstack([x, junk])), np.concatenate([y, np.arange(9) % 3])  # filed under every class
    out = compute_outlier_scores(xs, ys)
    found = compute_junk_groups(xs, ys, out.own)
    members = found.group[len(y):]
    assert (members >= 0).all() and len(set(members)) == 1  # all nine, one group
    assert (found.group[:len(y)] == -1).all()  # no ordinary image joins it
    ids = [f"i{i}" for i in range(len(ys))]
    rows = find_junk(ids, ys, ["dog", "cat", "cow"], found)
    assert list(rows.columns) == ISSUE_COLUMNS and len(rows) == 9
    assert set(rows["issue"]) == {"outlier"} and (rows["suggested_label"] == "").all()
    assert rows["group"].nunique() == 1 and rows["group"].iloc[0].startswith("junk-")
    assert "9 look-alike images filed under 3 classes" in rows["reason"].iloc[0]
    assert "probably not any of your classes" in rows["reason"].iloc[0]


def test_a_tight_sub_type_near_its_class_core_and_label_errors_are_not_junk() -> None:
    rng = np.random.default_rng(1)
    x, y = _classes(rng)
    sub = np.eye(1, DIM)[0] * 3.0 + 0.3 * rng.standard_normal((8, DIM))  # a tight breed of class 0, at its core
    xs = np.vstack([x, sub])
    ys = np.concatenate([y, np.zeros(8, np.int64)])
    flip = rng.choice(len(y), 6, replace=False)  # a few label errors, scattered
    ys[flip] = (ys[flip] + 1) % 3
    xs = _unit(xs)
    out = compute_outlier_scores(xs, ys)
    found = compute_junk_groups(xs, ys, out.own)
    assert (found.group == -1).all(), found.info


def test_class_fit_is_typical_for_the_true_class_and_large_for_another_kind_of_image() -> None:
    rng = np.random.default_rng(2)
    x, y = _classes(rng)
    far = np.zeros((1, DIM))
    far[0, -1] = 3.0
    xs, ys = _unit(np.vstack([x, far + 0.3 * rng.standard_normal((1, DIM))])), np.append(y, 0)
    from cleaning.detect import compute_neighbours

    nb = compute_neighbours(xs, 40)
    fit_true = compute_class_fit(ys, ys, nb)
    assert abs(float(np.median(fit_true[:-1]))) < 0.5
    assert fit_true[-1] > 2.0 > float(np.quantile(fit_true[:-1], 0.9))  # the odd one out does not look like class 0
