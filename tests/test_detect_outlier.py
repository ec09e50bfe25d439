"""Outlier / off-topic detector: per-class neighbour and centre distances, on arrays and on a small
tree of real photo crops with off-topic photos planted (real model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cleaning.detect import ISSUE_COLUMNS, compute_neighbours
from cleaning.detect.outlier import (
    Z_FLAG,
    compute_outlier_scores,
    find_outliers,
    natural_break,
    same_label_mean_sim,
    unclaimed_z,
)
from tests.hostile import jpeg_bytes, make_image_tree, photo_crop


@pytest.fixture(autouse=True)
def _shared_model_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANING_CACHE", str(tmp_path_factory.getbasetemp() / "model-cache"))


def _clusters(rng: np.random.Generator, n: int = 25, dim: int = 32) -> tuple[np.ndarray, np.ndarray]:
    centres = np.eye(3, dim, dtype=np.float32)
    x = np.concatenate([c + 0.2 * rng.standard_normal((n, dim)) for c in centres]).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True), np.repeat(np.arange(3), n)


def test_a_far_away_point_scores_highest_and_is_flagged() -> None:
    rng = np.random.default_rng(0)
    x, y = _clusters(rng)
    far = np.zeros((1, x.shape[1]), np.float32)
    far[0, -1] = 1.0  # orthogonal to every class
    xs, ys = np.vstack([x, far]), np.append(y, 1)
    sc = compute_outlier_scores(xs, ys)
    assert sc.score.argmax() == len(xs) - 1 and sc.flagged[-1]
    assert sc.flagged.sum() <= 3 and ((sc.score >= 0) & (sc.score <= 1)).all()
    assert sc.score[sc.z >= Z_FLAG].min() >= 0.5 > sc.score[sc.z < Z_FLAG].max()
    df = find_outliers([f"i{i}" for i in range(len(xs))], ys, ["a", "b", "c"], sc)
    assert list(df.columns) == ISSUE_COLUMNS and f"i{len(xs) - 1}" in set(df["item_id"])
    assert "unlike the other *b* images" in df.set_index("item_id").loc[f"i{len(xs) - 1}", "reason"]


def test_copies_of_an_off_topic_image_do_not_hide_each_other() -> None:
    rng = np.random.default_rng(1)
    x, y = _clusters(rng)
    far = np.zeros((3, x.shape[1]), np.float32)
    far[:, -1] = 1.0
    xs, ys = np.vstack([x, far]), np.append(y, [0, 0, 0])
    groups = np.append(np.arange(len(x)), [len(x)] * 3)
    with_groups = compute_outlier_scores(xs, ys, groups=groups, k=2)
    assert with_groups.flagged[-3:].all()


@pytest.mark.parametrize("width", [3, 8, 40])
def test_same_label_neighbours_from_the_whole_set_list_equal_a_search_per_class(width: int) -> None:
    """Read off a narrow whole-set list (most rows then need the per-class search) or a wide one, the mean
    similarity to the k nearest same-label images equals a k-NN search inside each class, copies excluded."""
    rng = np.random.default_rng(3)
    x, y = _clusters(rng, n=30)
    y = y.copy()
    y[rng.choice(len(y), 12, replace=False)] = rng.integers(0, 3, 12)  # mixed neighbourhoods: short rows
    x = np.vstack([x, x[:4]])  # exact copies of four rows, one group each
    y = np.append(y, y[:4])
    y = np.append(y, 3)  # a class of one image
    x = np.vstack([x, rng.standard_normal((1, x.shape[1])).astype(np.float32)])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    g = np.arange(len(y))
    g[-5:-1] = np.arange(4)
    k = 10
    got = same_label_mean_sim(x, y, g, compute_neighbours(x, width, g), k)
    want = np.full(len(y), np.nan)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        if len(idx) > 1:
            nb = compute_neighbours(x[idx], min(k, len(idx) - 1), g[idx])
            want[idx] = np.where(nb.valid, nb.sim, 0).sum(axis=1) / np.maximum(nb.valid.sum(axis=1), 1)
    assert np.isnan(got[-1]) and np.isnan(want[-1])
    np.testing.assert_allclose(got[:-1], want[:-1], atol=1e-6)


def test_tiny_inputs_do_not_fail() -> None:
    assert compute_outlier_scores(np.zeros((2, 4), np.float32), [0, 1]).score.tolist() == [0, 0]
    one_class = compute_outlier_scores(np.eye(5, dtype=np.float32), [0] * 5)
    assert one_class.score.shape == (5,)


def test_planted_off_topic_photos_in_a_real_photo_tree(tmp_path: Path) -> None:
    from cleaning.model.embed import compute_embeddings

    tree = make_image_tree(tmp_path, {"cat": 15, "coffee": 15}, size=64, seed=2)
    rng = np.random.default_rng(3)
    for name, label in (("rocket", "cat"), ("moon", "coffee")):
        p = tmp_path / label / f"off_{name}.jpg"
        p.write_bytes(jpeg_bytes(photo_crop(name, (64, 64), rng)))
        tree[label].append(p)
    paths = [p for label in tree for p in tree[label]]
    labels = np.array([0 if p.parent.name == "cat" else 1 for p in paths])
    sc = compute_outlier_scores(compute_embeddings(paths), labels)
    off = {i for i, p in enumerate(paths) if p.name.startswith("off_")}
    assert set(np.argsort(-sc.score)[:2]) == off
    assert off <= set(np.flatnonzero(sc.flagged))


def test_unfit_tells_an_image_of_no_class_from_a_mislabelled_one() -> None:
    rng = np.random.default_rng(4)
    x, y = _clusters(rng, n=30)
    far = np.zeros((1, x.shape[1]), np.float32)
    far[0, -1] = 1.0  # like no class
    wrong = x[:1] + 0.05 * rng.standard_normal((1, x.shape[1])).astype(np.float32)  # a class-0 image ...
    wrong /= np.linalg.norm(wrong)
    xs, ys = np.vstack([x, far, wrong]), np.append(y, [1, 2])  # ... filed under class 2
    sc = compute_outlier_scores(xs, ys)  # no hint from the label check: the class core leaves the misfiled one out
    assert sc.unfit is not None
    assert sc.unfit[-2] >= 3.0 and sc.flagged[-2]  # far from every class
    assert sc.unfit[-1] < 1.0 and not sc.flagged[-1]  # fits class 0: a label error, not off-topic
    assert sc.own[-1] >= 3.0  # ... although it is unlike the class it is filed under


def test_the_classifiers_doubt_raises_the_score_of_the_same_image() -> None:
    rng = np.random.default_rng(5)
    x, y = _clusters(rng)
    odd = x[:1] * 0.6 + 0.8 * np.eye(1, x.shape[1], x.shape[1] - 1, dtype=np.float32)
    xs, ys = np.vstack([x, odd / np.linalg.norm(odd)]), np.append(y, 0)
    sure = np.full((len(ys), 3), 0.02)
    sure[np.arange(len(ys)), ys] = 0.96
    sure[:, :] += rng.uniform(0, 0.02, sure.shape)  # typical images: the classifier is sure, a little spread
    sure /= sure.sum(axis=1, keepdims=True)
    doubt = sure.copy()
    doubt[-1] = [0.4, 0.3, 0.3]  # no class claims the odd image
    assert unclaimed_z(doubt)[-1] > 3.0 and abs(float(np.median(unclaimed_z(doubt)))) < 1e-9
    a = compute_outlier_scores(xs, ys, pred_probs=sure)
    b = compute_outlier_scores(xs, ys, pred_probs=doubt)
    assert b.z[-1] > a.z[-1] and np.allclose(a.z[:-1], b.z[:-1], atol=0.2)


def test_natural_break_is_the_largest_relative_fall() -> None:
    z = np.array([24.0, 22.0, 20.0, 13.0, 12.0, 11.0, 5.0, 4.8, 4.6, 4.4, 4.2, 4.0])
    # widest drop is 20 -> 13 (7), but 11 -> 5 is the larger fall (55 % against 35 %)
    assert natural_break(np.ones(len(z), dtype=bool), z) == 11.0
    assert natural_break(np.ones(4, dtype=bool), np.array([4.0, 3.6, 3.3, 3.0])) is None  # no break


def test_natural_break_above_a_dense_tail_needs_no_large_fall() -> None:
    """An empty stretch above a dense tail of merely unusual members is a break even when the fall is under 20 %
    (12.8 -> 10.3); the same fall without a dense tail below it is not."""
    top = np.linspace(30.0, 12.8, 12)
    tail = np.linspace(10.3, 6.0, 40)  # spacing 0.11
    z = np.concatenate([top, tail])
    assert natural_break(np.ones(len(z), dtype=bool), z) == 12.8
    sparse = np.array([16.0, 14.0, 12.8, 10.3, 8.5])
    assert natural_break(np.ones(len(sparse), dtype=bool), sparse) is None


def test_many_look_alike_images_keep_only_the_far_off_topic_ones() -> None:
    """Ten tight classes with heavy-tailed noise (odd but recognisable members) and 3 % images far from every
    class: the data set's break keeps exactly the far ones, however many odd members exceed ``Z_FLAG``."""
    rng = np.random.default_rng(6)
    dim, per = 64, 150
    centres = np.eye(10, dim, dtype=np.float32) * 4.0
    x = np.concatenate([c + rng.standard_t(5, (per, dim)).astype(np.float32) * 0.25 for c in centres])
    y = np.repeat(np.arange(10), per)
    off = rng.standard_normal((45, dim)).astype(np.float32) * 0.05
    off[:, 40:] += rng.standard_normal((45, dim - 40)).astype(np.float32) * 4.0  # away from every class
    xs = np.vstack([x, off])
    xs /= np.linalg.norm(xs, axis=1, keepdims=True)
    ys = np.append(y, rng.integers(0, 10, 45))
    sc = compute_outlier_scores(xs, ys)
    assert sc.break_z is not None
    assert set(np.flatnonzero(sc.flagged)) == set(range(len(y), len(ys)))
    assert ((sc.z >= Z_FLAG) & (sc.lonely >= 2.0))[: len(y)].any()  # the odd members the break leaves out


def test_the_reason_names_the_evidence() -> None:
    from types import SimpleNamespace

    rng = np.random.default_rng(7)
    x, y = _clusters(rng)
    far = np.zeros((1, x.shape[1]), np.float32)
    far[0, -1] = 1.0
    xs, ys = np.vstack([x, far]), np.append(y, 1)
    probs = np.full((len(ys), 3), 0.01)
    probs[np.arange(len(ys)), ys] = 0.98
    probs[-1] = [0.45, 0.3, 0.25]
    sc = compute_outlier_scores(xs, ys, pred_probs=probs)
    ls = SimpleNamespace(model_probs=probs, flagged=np.zeros(len(ys), bool), suggested=ys, pred_probs=probs)
    df = find_outliers([f"i{i}" for i in range(len(ys))], ys, ["a", "b", "c"], sc, ls).set_index("item_id")
    reason = df.loc[f"i{len(ys) - 1}", "reason"]
    assert "no other class fits it either" in reason and "best *a* 0.45" in reason


def test_split_offtopic_needs_an_unclear_suggestion_an_off_topic_score_and_the_break() -> None:
    from cleaning.detect.outlier import OutlierScores, split_offtopic

    z = np.array([3.0, 3.0, 3.0, 1.0, 3.0])
    zeros = np.zeros(5)
    unfit = np.array([4.0, 4.0, 4.0, 4.0, 1.0])
    sc = OutlierScores(zeros, z, zeros, zeros, zeros, zeros, np.zeros(5, bool), None, unfit, zeros)
    flagged = np.array([True, False, True, True, True])
    p = np.array([0.5, 0.5, 0.9, 0.5, 0.5])
    # 0: flagged, unclear, far → off-topic; 1: not flagged; 2: clear suggestion; 3: not far; 4: far, no break
    assert split_offtopic(sc, flagged, p, 0.6).tolist() == [True, False, False, False, True]
    with_break = OutlierScores(zeros, z, zeros, zeros, zeros, zeros, np.zeros(5, bool), 2.0, unfit, zeros)
    assert split_offtopic(with_break, flagged, p, 0.6).tolist() == [True, False, False, False, False]


def test_an_image_no_class_claims_is_off_topic_though_not_lonely_when_the_head_misses_its_class() -> None:
    """Saturn among round planets: not lonely, but the blend of classifier and neighbours gives no class even half,
    and the label check leaves it alone. Off-topic when it is also far from its class (and above the break), and the
    head knows its class and sees none of it."""
    from cleaning.detect.outlier import CLAIM, OutlierScores, unclaimed_offtopic
    from cleaning.detect.semantic import MASS_MIN, misses_own_class

    z = np.array([3.0, 3.0, 3.0, 1.0, 3.0, 3.0])
    zeros = np.zeros(6)
    unfit = np.array([4.0, 4.0, 4.0, 4.0, 1.0, 4.0])
    sc = OutlierScores(zeros, z, zeros, zeros, zeros, zeros, np.zeros(6, bool), None, unfit, zeros)
    flagged = np.array([False, True, False, False, False, False])
    best = np.array([0.4, 0.4, 0.8, 0.4, 0.4, CLAIM])
    # 0: no class claims it, far → off-topic; 1: the label check flags it (split_offtopic's case); 2: claimed;
    # 3: not far; 4: far, no break; 5: exactly CLAIM is a claim
    assert unclaimed_offtopic(sc, flagged, best).tolist() == [True, False, False, False, True, False]
    with_break = OutlierScores(zeros, z, zeros, zeros, zeros, zeros, np.zeros(6, bool), 2.0, unfit, zeros)
    assert unclaimed_offtopic(with_break, flagged, best).tolist() == [True, False, False, False, False, False]
    y = np.repeat([0, 1], 10)
    mass = np.zeros((20, 3))
    mass[y == 0, 0] = 0.6  # class 0 known to the head; class 1 not (its members carry none of it)
    mass[:, 2] = np.nan  # (a third class whose name matched nothing)
    mass[0, 0] = MASS_MIN - 0.01  # a class-0 image with too little of it: missed
    mass[1, 0] = MASS_MIN  # ... with just enough: not missed
    missed = misses_own_class(mass, y, np.zeros(20, bool))
    assert np.flatnonzero(missed).tolist() == [0]  # class 1 is not known: no word on its images
    assert not misses_own_class(None, y, np.zeros(20, bool)).any()


def test_the_scan_joins_the_unclaimed_rule_with_the_head() -> None:
    """:func:`cleaning.detect.run.join_checks` on hand-made scores: an image far from its class, not lonely, that no
    class claims is off-topic where the head knows its class and sees none of it — not where it sees some, nor where
    the class is unknown to the head; one the label check flags is split evidence's."""
    from cleaning.detect.junk import JunkGroups
    from cleaning.detect.label import LabelScores
    from cleaning.detect.outlier import CLAIM, OutlierScores
    from cleaning.detect.run import join_checks
    from cleaning.detect.semantic import MASS_MIN

    y = np.repeat([0, 1], 12)
    n = len(y)
    blend = np.full((n, 2), 0.1)
    blend[np.arange(n), y] = 0.9
    odd = [0, 1, 12, 2]  # far, not lonely, claimed by no class
    blend[odd] = (CLAIM - 0.05, CLAIM - 0.1)
    flagged = np.zeros(n, bool)
    flagged[2] = True  # the label check flags image 2: split evidence (split_offtopic), not this rule
    ls = LabelScores(blend, blend, blend, 1 - blend[np.arange(n), y], flagged, 1 - y, *(np.zeros(n, int),) * 3)
    z = np.zeros(n)
    z[odd] = 3.0
    zeros = np.zeros(n)
    out = OutlierScores(zeros, z, zeros, zeros, zeros, zeros, np.zeros(n, bool), None, z, zeros)
    mass = np.zeros((n, 2))
    mass[y == 0, 0] = 0.6  # class 0 known to the head, class 1 not (none of its members carry it)
    mass[0, 0] = MASS_MIN / 2  # image 0: the head sees none of its class
    mass[1, 0] = 0.2  # image 1: it sees some
    mass[2, 0] = 0.0
    j = join_checks(ls, out, JunkGroups(np.full(n, -1), zeros, []), y, mass)
    assert np.flatnonzero(j.offtopic).tolist() == [0, 2] and np.flatnonzero(j.unclaimed).tolist() == [0]
    assert not join_checks(ls, out, JunkGroups(np.full(n, -1), zeros, []), y, None).unclaimed.any()  # no head, no word
