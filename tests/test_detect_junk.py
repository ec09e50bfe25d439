"""Junk groups on generated embeddings: a look-alike cluster filed under every class is found as one group;
a tight legitimate sub-type near its class core, and plain label errors, are not."""

from __future__ import annotations

import numpy as np

from cleaning.detect import ISSUE_COLUMNS
from cleaning.detect.junk import P_CHANCE, chance_of_spread, compute_class_fit, compute_junk_groups, find_junk
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


def test_the_chance_of_a_spread_tells_a_random_draw_from_a_few_look_alike_classes() -> None:
    even = np.full(10, 0.1)
    assert chance_of_spread(np.ones(10, np.int64), even) > 0.5  # one per class: what a draw gives at most
    assert chance_of_spread(np.array([2, 1, 2, 1, 1, 2, 0, 1, 1, 1]), even) > 0.3  # 12 sent to every class
    shirts = np.array([0, 0, 1, 1, 0, 1, 8, 0, 0, 4])  # 15 of a shirt / t-shirt overlap
    assert chance_of_spread(shirts, even) < 0.01
    assert chance_of_spread(np.array([0, 0, 2, 1, 4, 0, 2, 0, 0, 0]), even) < P_CHANCE  # 9 on 4 look-alikes
    assert chance_of_spread(np.array([0, 2, 0, 0, 0, 1, 0, 0, 0, 0]), even) > P_CHANCE  # 3: too few to tell
    assert chance_of_spread(shirts, even) == chance_of_spread(shirts, even)  # fixed seed: same answer


def test_a_look_alike_group_on_a_few_classes_is_not_junk_the_same_group_on_every_class_is() -> None:
    """The same tight group, apart from every class: filed round-robin under all eight classes (what a query
    template does) it is junk; filed under three of them, 5 / 4 / 3 (the overlap of a few look-alike classes:
    labels spread, no class holding more than half, but not as a random draw would spread them) it is not."""
    rng = np.random.default_rng(3)
    x, y = _classes(rng, n=30, k=8)
    centre = np.zeros(DIM)
    centre[-1] = 3.0
    group = centre + 0.35 * rng.standard_normal((12, DIM))
    xs = _unit(np.vstack([x, group]))
    for labels, is_junk in ((np.arange(12) % 8, True), (np.repeat([0, 1, 2], [5, 4, 3]), False)):
        ys = np.concatenate([y, labels])
        found = compute_junk_groups(xs, ys, compute_outlier_scores(xs, ys).own)
        ids, n_in = np.unique(found.group[len(y):], return_counts=True)
        if is_junk:
            assert ids[0] >= 0 and len(ids) == 1 and n_in[0] >= 10, found.info  # one group holds them
            assert found.info[ids[0]]["chance"] >= P_CHANCE
        else:
            assert (found.group[len(y):] == -1).all(), found.info


def test_a_group_holding_most_of_a_class_is_that_class_not_junk_filed_into_it() -> None:
    """Twelve look-alike images, five of them filed under class 3. When class 3 has 25 images elsewhere the group
    is junk filed into it too; when class 3 has just one image besides the five, the group is most of class 3: a
    varied class whose members sit nearer other classes (7 of 9 insects among 184 photos, ``detect.md``)."""
    from cleaning.detect.junk import MAX_TAKE

    rng = np.random.default_rng(5)
    x, y = _classes(rng, n=40, k=4)
    centre = np.zeros(DIM)
    centre[-1] = 3.0
    group = centre + 0.35 * rng.standard_normal((12, DIM))
    labels = np.array([3, 3, 3, 3, 3, 0, 1, 2, 0, 1, 2, 0])
    for others, is_junk in ((20, True), (1, False)):
        keep = (y != 3) | (np.cumsum(y == 3) <= others)
        xs, ys = _unit(np.vstack([x[keep], group])), np.concatenate([y[keep], labels])
        found = compute_junk_groups(xs, ys, compute_outlier_scores(xs, ys).own)
        in_group = found.group[-12:]
        if is_junk:
            assert (in_group >= 0).sum() >= 10 and len(set(in_group[in_group >= 0])) == 1, found.info
        else:
            assert 5 / (5 + others) > MAX_TAKE and (in_group == -1).all(), found.info


def test_a_class_with_no_images_left_does_not_switch_the_class_take_gate_off() -> None:
    import warnings

    rng = np.random.default_rng(0)
    x, y = _classes(rng)
    y = np.where(y == 0, 0, y + 1)  # class 1 has no images (all of them unreadable, say)
    centre = np.zeros(DIM)
    centre[-1] = 3.0
    xs = _unit(np.vstack([x, centre + 0.35 * rng.standard_normal((9, DIM))]))
    ys = np.concatenate([y, np.tile([0, 2, 3], 3)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 0 / 0
        found = compute_junk_groups(xs, ys, compute_outlier_scores(xs, ys).own)
    assert (found.group[-9:] >= 0).all() and found.info[0]["classes"] == {0: 3, 2: 3, 3: 3}


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


def _junk_set(seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Three varied classes plus a tight look-alike cluster of 9 filed round-robin under them (last 9 rows)."""
    rng = np.random.default_rng(seed)
    x, y = _classes(rng)
    junk_centre = np.zeros(DIM)
    junk_centre[-1] = 3.0
    junk = junk_centre + 0.35 * rng.standard_normal((9, DIM))
    return _unit(np.vstack([x, junk])), np.concatenate([y, np.arange(9) % 3]), len(y)


def test_the_class_core_leaves_out_junk_spread_over_classes_and_label_errors() -> None:
    from cleaning.detect import compute_neighbours
    from cleaning.detect.junk import compute_class_core

    xs, ys, n = _junk_set(3)
    wrong = np.array([0, 41, 82])  # three ordinary images filed under the next class
    ys = ys.copy()
    ys[wrong] = (ys[wrong] + 1) % 3
    core = compute_class_core(ys, compute_neighbours(xs, 40))
    assert not core[n:].any()  # the junk's neighbours are each other, their labels mixed
    assert not core[wrong].any()  # a label error's neighbours are of its true class
    rest = np.setdiff1d(np.arange(n), wrong)
    assert core[rest].mean() >= 0.9


def _run(xs: np.ndarray, ys: np.ndarray, probs: np.ndarray, progress=None, semantic=None):  # noqa: ANN001, ANN202
    import pandas as pd

    from cleaning.detect.quality import STATS_COLUMNS
    from cleaning.detect.run import DetectorInputs, run_detectors

    n = len(ys)
    inp = DetectorInputs([str(i) for i in range(n)], [f"{i}.jpg" for i in range(n)], ys, ["dog", "cat", "cow"], xs,
                         probs, [f"{i:064x}" for i in range(n)], [f"{i:016x}" for i in range(n)], None,
                         pd.DataFrame([dict(zip(STATS_COLUMNS, (0.5, 0.05, 0.95, 0.25, 7.0, 0.5)))] * n),
                         [64] * n, [64] * n, semantic=semantic)  # ordinary pixel statistics: no low-quality rows
    return run_detectors(inp, progress=progress)


def test_a_junk_cluster_is_found_whether_or_not_the_label_check_flags_its_members() -> None:
    """The off-topic references do not depend on the label detector: whether the classifier calls the junk
    members sure errors (another class at 0.9) or agrees with their labels, the class references, the
    ``own`` and ``unfit`` measures and the junk group are the same, and the junk gets outlier rows only."""
    xs, ys, n = _junk_set(4)
    agree = np.full((len(ys), 3), 0.05)
    agree[np.arange(len(ys)), ys] = 0.9
    accuse = agree.copy()
    accuse[n:] = 0.05
    accuse[np.arange(n, len(ys)), (ys[n:] + 1) % 3] = 0.9
    a, b = _run(xs, ys, agree), _run(xs, ys, accuse)
    assert b.labels.flagged[n:].sum() > a.labels.flagged[n:].sum()  # the label check does see them differently
    np.testing.assert_allclose(a.outliers.own, b.outliers.own)
    np.testing.assert_allclose(a.outliers.unfit, b.outliers.unfit)
    for res in (a, b):
        iss = res.issues.set_index("item_id")
        junk_ids = [str(i) for i in range(n, len(ys))]
        assert set(iss.loc[junk_ids, "issue"]) == {"outlier"}
        assert iss.loc[junk_ids, "group"].nunique() == 1 and iss.loc[junk_ids, "group"].iloc[0].startswith("junk-")
        assert (iss.loc[junk_ids, "suggested_label"] == "").all()
        assert not set(iss.index[iss["issue"] == "outlier"]) - set(junk_ids)  # no ordinary image joins


def test_a_member_the_imagenet_head_clearly_sees_its_own_class_in_leaves_the_junk_group() -> None:
    """An odd member of a class that sits near the junk (a penguin beside the moons) is pulled into the group;
    where the backbone's own ImageNet head clearly sees its class in it, it gets no row at all; where it clearly
    sees the class the label check would move it to, and none of its own, it is a label error. A group left with
    fewer than three images is no group."""
    from cleaning.detect.semantic import MASS_CLEAR, MASS_MIN

    xs, ys, n = _junk_set(4)
    probs = np.full((len(ys), 3), 0.05)
    probs[np.arange(len(ys)), ys] = 0.9
    mass = np.zeros((len(ys), 3))
    mass[np.arange(n), ys[:n]] = 0.6  # every class known to the head: each ordinary member carries its class
    base = _run(xs, ys, probs, semantic=mass)
    junk_ids = [str(i) for i in range(n, len(ys))]
    assert set(base.issues.loc[base.issues["group"] != "", "item_id"]) == set(junk_ids)  # no opinion on the junk
    seen = mass.copy()
    seen[[n, n + 1], ys[[n, n + 1]]] = MASS_CLEAR + 0.2  # the head sees the class the first two are filed under
    seen[n + 2, ys[n + 2]] = MASS_MIN  # ... and a little of it in a third: not clearly
    res = _run(xs, ys, probs, semantic=seen)
    iss = res.issues
    assert not iss["item_id"].isin([str(n), str(n + 1)]).any()  # neither junk nor a label error
    rest = iss[iss["item_id"].isin(junk_ids[2:])]
    assert len(rest) == 7 and set(rest["issue"]) == {"outlier"} and rest["group"].nunique() == 1
    assert rest["reason"].iloc[0].startswith("7 look-alike images filed under 3 classes")
    assert (res.junk.group[n:] >= 0).sum() == 7 and res.junk.info[0]["size"] == 7
    other = seen.copy()  # the head clearly sees, in a third member, the class the label check would move it to
    k = n + 2
    to = int(base.labels.suggested[k])
    other[k, to], other[k, ys[k]] = 0.8, 0.0
    res2 = _run(xs, ys, probs, semantic=other)
    row = res2.issues[res2.issues["item_id"] == str(k)]
    assert row["issue"].tolist() == ["label"] and row["suggested_label"].tolist() == [["dog", "cat", "cow"][to]]
    assert "ImageNet head sees a" in row["reason"].iloc[0]
    assert (res2.issues["group"] != "").sum() == 6  # the group holds the other six
    most = mass.copy()
    most[n:n + 7, ys[n:n + 7]] = 0.9  # seven of the nine: two are left, no group
    gone = _run(xs, ys, probs, semantic=most)
    assert (gone.junk.group == -1).all() and not (gone.issues["group"] != "").any()


def test_leaving_members_out_of_junk_groups_recounts_them_and_dissolves_what_is_no_group() -> None:
    from cleaning.detect.junk import JunkGroups

    y = np.array([0, 1, 2, 0, 1, 0, 0, 0, 1])
    g = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1])
    info = [{"size": 5, "classes": {0: 2, 1: 2, 2: 1}, "spread": True}, {"size": 4, "classes": {0: 3, 1: 1}, "spread": True}]
    j = JunkGroups(g, np.arange(9.0), info)
    assert j.without(np.zeros(9, bool), y) is j
    left = j.without(np.isin(np.arange(9), [2, 8]), y)
    assert left.group.tolist() == [0, 0, -1, 0, 0, -1, -1, -1, -1]  # group 1 is left on one class: dissolved
    assert left.info == [{"size": 4, "classes": {0: 2, 1: 2}, "spread": True, "z": 2.0}] and left.z[3] == 3.0  # z: median of 0, 1, 3, 4
    copies = np.array([0, 0, 2, 3, 4, 5, 6, 7, 8])  # images 0 and 1 are copies: three distinct images remain
    assert j.without(np.isin(np.arange(9), [4]), y, copies).group.tolist()[:5] == [0, 0, 0, 0, -1]
    assert (j.without(np.isin(np.arange(9), [3, 4]), y, copies).group[:5] == -1).all()


def test_the_detectors_report_each_step_as_it_starts() -> None:
    """A scan of 100,000 images spends minutes in the detectors: each step says so, in order, with its share."""
    xs, ys, _ = _junk_set(4)
    probs = np.full((len(ys), 3), 0.05)
    probs[np.arange(len(ys)), ys] = 0.9
    calls: list[tuple[str, float]] = []
    _run(xs, ys, probs, progress=lambda what, f: calls.append((what, f)))
    assert [w for w, _ in calls] == ["near duplicates", "label errors (re-learning without the likely errors)",
                                     "off-topic images and junk groups", "low quality"]
    fracs = [f for _, f in calls]
    assert fracs == sorted(fracs) and fracs[0] == 0.0 and fracs[-1] < 1.0


def test_a_loose_group_must_be_farther_apart_than_a_look_alike_one(monkeypatch) -> None:
    """Junk from one query is look-alike: its members' nearest images (each other) are as close as images' nearest
    usually are. Odd members of small varied classes also end up each other's nearest, but not close (their
    ``lonely`` z is high): such a group needs a median ``apart`` z of Z_LOOSE, not Z_APART (real photos: 9 insects
    and 13 fish among 160 animals, ``realsets.ANIMAL_CLASSES``). The same group, told look-alike or loose."""
    import cleaning.detect.junk as junk

    rng = np.random.default_rng(0)
    x, y = _classes(rng)
    centre = np.zeros(DIM)
    centre[-1] = 3.0
    xs = _unit(np.vstack([x, centre + 0.35 * rng.standard_normal((9, DIM))]))
    ys = np.concatenate([y, np.arange(9) % 3])
    own = compute_outlier_scores(xs, ys).own
    z = compute_junk_groups(xs, ys, own).info[0]["z"]
    alike, loose = np.zeros(len(ys)), np.zeros(len(ys))
    alike[-9:], loose[-9:] = -1.0, junk.LOOSE + 0.5
    monkeypatch.setattr(junk, "Z_LOOSE", z + 0.1)  # the group is apart, but less than a loose group must be
    assert (compute_junk_groups(xs, ys, own, lonely=alike).group[-9:] >= 0).all()
    assert (compute_junk_groups(xs, ys, own, lonely=loose).group == -1).all()
    monkeypatch.setattr(junk, "Z_LOOSE", z - 0.1)
    assert (compute_junk_groups(xs, ys, own, lonely=loose).group[-9:] >= 0).all()


def test_an_image_the_imagenet_head_clearly_sees_any_class_of_yours_in_is_not_off_topic() -> None:
    """The ear of corn filed under *vegetable*, alone in its class, that the head files under *fruit*: it belongs to
    one of your classes, if perhaps not the one it is filed under, so it is not off-topic — alone or in a junk
    group. A class the head does not know (its name matches nothing) gives no such opinion."""
    from cleaning.detect.semantic import MASS_CLEAR, sees_a_class

    xs, ys, n = _junk_set(4)
    xs = np.vstack([xs, -_unit(xs.mean(axis=0)[None])])  # one image unlike any other, filed under class 0
    ys = np.append(ys, 0)
    single = len(ys) - 1
    probs = np.full((len(ys), 3), 0.05)
    probs[np.arange(len(ys)), ys] = 0.9
    mass = np.zeros((len(ys), 3))
    mass[np.arange(n), ys[:n]] = 0.6  # every class known to the head
    first = _run(xs, ys, probs, semantic=mass)
    base = first.issues.set_index("item_id")
    assert base.loc[str(single), "issue"] == "outlier" and base.loc[str(single), "group"] == ""
    assert (base["group"] != "").sum() == 9
    other = mass.copy()
    for i in (single, n):  # the head clearly sees, in the single and in one junk member, a class of yours that is
        # neither the one it is filed under nor the one the label check would move it to (that is a label error)
        seen = ({0, 1, 2} - {int(ys[i]), int(first.labels.suggested[i])}).pop()
        other[i, seen] = MASS_CLEAR + 0.3
    assert sees_a_class(other, ys, np.zeros(len(ys), bool))[[single, n]].all()
    res = _run(xs, ys, probs, semantic=other).issues
    assert not ((res["item_id"] == str(single)) & (res["issue"] == "outlier")).any()
    assert not ((res["item_id"] == str(n)) & (res["issue"] == "outlier")).any()
    assert (res["group"] != "").sum() == 8  # the group keeps the other eight
    unknown = other.copy()
    unknown[:, int(np.argmax(other[single]))] = np.nan  # that class's name matched nothing: no opinion on it
    assert not sees_a_class(unknown, ys, np.zeros(len(ys), bool))[single]
    again = _run(xs, ys, probs, semantic=unknown).issues.set_index("item_id")
    assert again.loc[str(single), "issue"] == "outlier"
