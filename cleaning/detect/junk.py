"""Junk groups: look-alike images that belong to none of the classes they are filed under.

A web search for ``"{label} sun photo"`` brings photos of the sun into *every* class. They are not a
scattering of lonely points: each has close neighbours (the other suns), so a distance-to-neighbours
score stays low, and their labels are mixed, so a label detector calls them label errors. This
detector looks for the group instead.

*Measure* (on the nearest-neighbour lists, copies excluded):

1. ``dominance`` — the largest share of one class among an image and its :data:`K_JUNK` nearest
   neighbours. Inside a class it is high (neighbours share the label); in a junk group filed under
   many classes it is low.
2. Candidate groups — connected components of the *mutual* :data:`K_LINK`-nearest-neighbour graph
   restricted to images with ``dominance ≤ DOM_MAX`` (labels spread), or with an own-class outlier z of
   at least :data:`Z_ISLAND_MEMBER` (a possible island inside one class). Mutual links do not chain
   through an image that merely sits between two groups.
3. For each component ``G`` and member ``i``: ``apart`` — the mean similarity to its :data:`M_APART`
   nearest images *of its own class outside* ``G``, as a robust z against that class's members' mean
   similarity to their own nearest class mates (each class sets its own scale: varied photo classes
   tolerate more than look-alike digits); ``fit`` — the same z against the best-fitting class (so a
   muddle of mislabelled images that fit some other class is not junk); the classes of the members.
   For a component filed under several classes only the classes' **core** members
   (:func:`compute_class_core`) count as the images of a class here: junk of the same kind that the
   component did not reach (a Saturn with its rings beside the round planets) is filed under the classes too,
   and as a "class member" it made the group look close to its classes. Real-photo benchmark, 10 seeds of
   the space cluster: its images flagged as off-topic 0.84 → 0.88; off-topic precision on photos 0.803 → 0.802
   (pooled 0.784 → 0.779); digits identical; fashion-MNIST (``detect.md``) one more false group of four per seed
   (a two-class overlap whose chance, 0.069, is just above :data:`P_CHANCE`). A one-class island keeps every
   member of its class as the reference (there the core made a legitimate sub-type of six T-shirts in
   fashion-MNIST an island).

*Score*: the group's median ``apart`` z, mapped to a severity in [0.6, 0.95].
*Threshold*: a group of at least :data:`MIN_GROUP` distinct images (copies count once) is junk when
its labels are spread (at least two classes, none with more than :data:`MAX_SHARE` of the members, and
no more than :data:`MAX_TAKE` of any class's images: a group holding most of a class *is* that class, a varied
one whose members are closer to other classes than to each other, like 7 of 9 insects among 184 photos)
*as a random draw over the classes would spread them* (:func:`chance_of_spread` ≥ :data:`P_CHANCE`),
its median ``apart`` z ≥ :data:`Z_APART` (:data:`Z_LOOSE` for a loose group, below) and median ``fit``
z ≥ :data:`Z_FIT` — unless it is far apart (median ``apart`` z ≥ :data:`Z_FAR`, below); or, filed under one
class, when it is an island: median ``apart`` z ≥ :data:`Z_ISLAND` and ``fit`` z ≥ :data:`Z_ISLAND_FIT`.
A tight legitimate sub-type of a class sits near the rest of its class, so its ``apart`` z stays low.

Why a far-apart group may fit another class: the ``fit`` bar keeps out a muddle of images that look like some
class as much as its members look like each other; such muddles sit near their classes (the fit-rejected groups
of the real-photo benchmark, 30 sets of each of two compositions: ``apart`` z 0.6–1.9). Junk can fit a class too:
photos of the sun and planets, round and on white, fit a class of round fruit about as well as the fruit fit each
other (the bundled demo with eight such photos filed round-robin: ``fit`` −0.33), yet sit far from every class
they are filed under (``apart`` 2.96), and only a far-apart group was fit-rejected there (z 2.2–3.2: 3 of 4, 4 of 4
and 9 of 9 members planted junk). Real-photo benchmark, 30 sets per composition, junk as off-topic / off-topic
precision: bird, mammal, fruit, vegetable, flower 0.944 → 0.951 / 0.901 → 0.902; animals 0.933 → 0.950 /
0.732 → 0.731; bird, mammal, fish, fruit, flower 0.91 → 0.96 / 0.79 → 0.80; bird, mammal, insect, flower 0.89 →
0.93 / 0.77 → 0.76; two compositions, digits and fashion-MNIST (``detect.md``) identical.

Why loose groups must be farther apart: junk sent by one query is *look-alike* — the suns, the coins: each
member's nearest images (the other members) are as close as images' nearest usually are (median ``lonely``
z ≤ 0; measured −3.9 … −0.35 for the coin and space clusters). Small, varied classes (9 insects, 13 fish and
shellfish) give another kind of mutual-neighbour component: their odd members, nearer each other than
anything else but not close (median ``lonely`` 0.5 … 1.6), spread over the classes by the chance of which
odd member is where, and only moderately apart (z below 1.5). A varied junk kind (cars, trucks, planes,
boats) is loose too, but far apart (z 1.8 … 3.5). So a group with median ``lonely`` z above :data:`LOOSE`
needs median ``apart`` z ≥ :data:`Z_LOOSE`. Real-photo benchmark, 10 seeds × 3 junk kinds, off-topic
precision / junk flagged as off-topic: bird, mammal, fruit, vegetable, flower 0.80 / 0.95 → 0.84 / 0.94;
bird, mammal, insect, fish, flower (``realsets.ANIMAL_CLASSES``) 0.62 / 0.95 → 0.73 / 0.93; digits and
fashion-MNIST identical.

Why the chance test: a query template (``"{label} sun photo"``) sends the same junk to *every* class, so a
junk group's labels look like a random draw over the classes. Where classes look alike (shirts, coats and
pullovers; sandals and sneakers) their overlap forms groups too, and in tight classes their z clears the
bars; but their labels are *the few look-alike classes*, with one holding more than a draw would give.
Measured (``bench/results/detect.md``, end-to-end fashion scan; ``photos.md``): the look-alike groups of 9,
15 and 28 images reach p 0.000–0.043; every junk group of the real-photo and digit benchmarks (seeds 1–10)
p ≥ 0.14. Groups too small to tell (three images) always pass.

Every member becomes an ``outlier`` row with the group's id in ``group`` and no suggested label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..groups import join_groups
from . import Neighbours, compute_neighbours, issues_frame

#: Neighbours whose labels are counted, and that link group members.
K_JUNK = 10
#: An image is a candidate when no class holds more than this share of it and its neighbours.
DOM_MAX = 0.5
#: Candidates are linked when each is among the other's K_LINK nearest (mutual: no chaining through
#: one image that happens to sit between two groups).
K_LINK = 5
#: Fewest distinct images (copies count once) that make a group.
MIN_GROUP = 3
#: A spread group: no class holds more than this share of its members ...
MAX_SHARE = 0.6
#: ... and it holds no more than this share of any class's images.
MAX_TAKE = 0.5
#: Nearest outside images averaged per member (apartness), and the length of the list searched.
M_APART = 5
K_WIDE = 40
#: A spread group is junk only when its labels are as spread as a random draw over the classes: the chance
#: that a draw of its size covers no more classes, or that one class holds at least its largest count, is at
#: least this (:func:`chance_of_spread`).
P_CHANCE = 0.05
#: Simulated draws for that chance (fixed seed: the same group always gets the same answer).
CHANCE_DRAWS = 4000
#: Median robust z of the members' similarity to the rest of their own classes from which a group is
#: apart, and the least median z against the best-fitting class (not closer to some class than usual).
Z_APART = 0.5
Z_FIT = 0.0
#: ... unless the spread group is this far apart (median ``apart`` z): then it may fit another class too
#: (module doc).
Z_FAR = 2.0
#: A spread group whose members are *not* look-alike — their median ``lonely`` z (:mod:`.outlier`: how much
#: farther their nearest images are than images' nearest usually are) above LOOSE — must be this far apart.
LOOSE = 0.5
Z_LOOSE = 1.5
#: The same for a group filed under one class (an island must be farther away).
Z_ISLAND = 2.5
Z_ISLAND_FIT = 1.0
#: Own-class outlier z from which an image may be part of a one-class island.
Z_ISLAND_MEMBER = 2.0


@dataclass(frozen=True)
class JunkGroups:
    """``group`` N ints (−1 = in no junk group; else 0..G−1), ``z`` N floats (the member's ``apart`` z),
    ``info`` one dict per group: size, classes {label index: count}, apart z, tightness."""

    group: np.ndarray
    z: np.ndarray
    info: list[dict] = field(default_factory=list)

    def without(self, drop: np.ndarray, labels: np.ndarray, copies: np.ndarray | None = None) -> JunkGroups:
        """The groups with the ``drop`` members left out (sizes, classes and the median ``apart`` z recounted; ``fit``,
        ``tight`` and ``chance`` stay those of the group as found); a group left with fewer
        than MIN_GROUP distinct images (``copies``: N copy-group ids, copies count once), or a spread group whose
        rest is no longer spread, is dissolved."""
        drop = np.asarray(drop, dtype=bool) & (self.group >= 0)
        if not drop.any():
            return self
        y = np.asarray(labels, dtype=np.int64)
        g = np.arange(len(y)) if copies is None else np.asarray(copies)
        group, z, info = np.full(len(y), -1, np.int64), np.zeros(len(y)), []
        for gi, inf in enumerate(self.info):
            members = np.flatnonzero((self.group == gi) & ~drop)
            if len(np.unique(g[members])) < MIN_GROUP:
                continue
            classes = np.bincount(y[members])
            if inf["spread"] and ((classes > 0).sum() < 2 or classes.max() / len(members) > MAX_SHARE):
                continue  # what is left sits on one class: not the spread the group was found by
            group[members], z[members] = len(info), self.z[members]
            info.append({**inf, "size": int(len(members)), "classes": {int(c): int(v) for c, v in enumerate(classes) if v},
                         "z": float(np.median(self.z[members]))})  # the severity's z, of the members left
        return JunkGroups(group, z, info)


def _mean_first(sim: np.ndarray, keep: np.ndarray, m: int) -> np.ndarray:
    """Per row, the mean of the first ``m`` kept similarities; missing ones are taken as the row's last
    listed similarity (an upper bound: anything not listed is farther)."""
    rows = np.arange(len(sim))
    rank = np.cumsum(keep, axis=1)
    take = keep & (rank <= m)
    last = np.where(np.isfinite(sim[:, -1]), sim[:, -1], 0.0) if sim.shape[1] else np.zeros(len(sim))
    total = np.where(take, sim, 0.0).sum(axis=1) + (m - take.sum(axis=1)) * last[rows]
    return total / max(m, 1)


def _class_stats(v: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per class: median and robust spread (1.4826·MAD) of ``v`` over its members (arrays indexed by class)."""
    k = int(y.max()) + 1
    med, spr = np.zeros(k), np.ones(k)
    for c in np.unique(y):
        w = v[y == c]
        med[c] = float(np.median(w))
        spr[c] = max(1.4826 * float(np.median(np.abs(w - med[c]))), 1e-3)
    return med, spr


def compute_junk_groups(embeddings: np.ndarray, labels: Sequence[int] | np.ndarray, own_z: np.ndarray,
                        groups: np.ndarray | None = None, neighbours: Neighbours | None = None,
                        outlier_z: np.ndarray | None = None, break_z: float | None = None,
                        lonely: np.ndarray | None = None) -> JunkGroups:
    """Find junk groups (see the module doc).

    Args:
        embeddings: N×D L2-normalised.
        labels: N ints (given labels).
        own_z: N floats, each image's outlier z against its own class (:mod:`.outlier`).
        groups: N copy-group ids (copies are not each other's neighbours and count once).
        neighbours: a :func:`compute_neighbours` list with at least ``K_WIDE`` columns (computed if None).
        lonely: N floats, the per-image ``lonely`` z of :class:`.outlier.OutlierScores` (None: every group is
            taken as look-alike, the rule before it was given).
        outlier_z, break_z: the per-image off-topic measure the break is found on (``unfit`` of
            :class:`.outlier.OutlierScores`) and the data set's natural break in it: when the data set shows a
            clear break between its unusual members and its off-topic images, a group must reach it too
            (median ``outlier_z ≥ break_z``).
    """
    x = np.asarray(embeddings, dtype=np.float32)
    y = np.asarray(labels, dtype=np.int64)
    n = len(y)
    none = JunkGroups(np.full(n, -1, np.int64), np.zeros(n))
    if n < 2 * MIN_GROUP or len(np.unique(y)) < 1:
        return none
    g = np.arange(n) if groups is None else np.asarray(groups)
    nb = neighbours if neighbours is not None and neighbours.index.shape[1] >= K_WIDE \
        else compute_neighbours(x, K_WIDE, g)
    idx, sim, valid = nb.index, nb.sim, nb.valid
    k = min(K_JUNK, idx.shape[1])
    near = np.where(valid[:, :k], y[np.clip(idx[:, :k], 0, None)], -1)
    counts = np.stack([(near == c).sum(axis=1) for c in range(int(y.max()) + 1)], axis=1)
    counts[np.arange(n), y] += 1
    dominance = counts.max(axis=1) / (valid[:, :k].sum(axis=1) + 1)
    own = np.asarray(own_z, dtype=np.float64)
    cand = (dominance <= DOM_MAX) | (own >= Z_ISLAND_MEMBER)
    m = min(M_APART, idx.shape[1])
    nb_lab = np.where(valid, y[np.clip(idx, 0, None)], -1)
    same = nb_lab == y[:, None]
    typical = _mean_first(sim, same, m)
    zref = _class_stats(typical, y)
    core = compute_class_core(y, nb)
    kl = min(K_LINK, idx.shape[1])
    top = [set(idx[i, :kl][idx[i, :kl] >= 0].tolist()) for i in range(n)]
    edges = [(int(i), j) for i in np.flatnonzero(cand) for j in top[i] if cand[j] and i in top[j]]
    comp = join_groups(n, [], edges)
    out_group = np.full(n, -1, np.int64)
    out_z = np.zeros(n)
    info: list[dict] = []
    sizes = np.bincount(y, minlength=int(y.max()) + 1)
    shares = sizes / n
    for c_id in np.unique(comp[cand]):
        members = np.flatnonzero((comp == c_id) & cand)
        if len(np.unique(g[members])) < MIN_GROUP:
            continue
        inside = np.zeros(n, dtype=bool)
        inside[members] = True
        not_in = valid[members] & ~inside[np.clip(idx[members], 0, None)]
        if len(np.unique(y[members])) > 1:  # a spread group: the classes as their cores see them (module doc)
            not_in &= core[np.clip(idx[members], 0, None)]
        s_own = _mean_first(sim[members], not_in & (nb_lab[members] == y[members][:, None]), m)
        z = (zref[0][y[members]] - s_own) / zref[1][y[members]]
        fit = np.full(len(members), np.inf)
        for c in np.unique(y):  # how well the best-fitting class takes each member
            s_out = _mean_first(sim[members], not_in & (nb_lab[members] == c), m)
            fit = np.minimum(fit, (zref[0][c] - s_out) / zref[1][c])
        fellow = valid[members] & inside[np.clip(idx[members], 0, None)]
        tight = np.where(fellow, sim[members], 0.0).sum(axis=1) / np.maximum(fellow.sum(axis=1), 1)
        classes = np.bincount(y[members])
        share = classes.max() / len(members)
        spread_ok = (classes > 0).sum() >= 2 and share <= MAX_SHARE
        if spread_ok and (classes / np.maximum(sizes[:len(classes)], 1)).max() > MAX_TAKE:  # (a class may be empty)
            continue  # it holds most of a class: that class (a varied one), not junk filed into it
        z_med, fit_med = float(np.median(z)), float(np.median(fit))
        if break_z is not None and outlier_z is not None and float(np.median(outlier_z[members])) < break_z:
            continue
        fits = fit_med < (Z_FIT if spread_ok else Z_ISLAND_FIT) and not (spread_ok and z_med >= Z_FAR)
        if z_med < (Z_APART if spread_ok else Z_ISLAND) or fits:
            continue
        loose = lonely is not None and float(np.median(lonely[members])) > LOOSE
        if spread_ok and loose and z_med < Z_LOOSE:
            continue  # not look-alike images, only odd ones that are each other's nearest: they must be far apart
        chance = chance_of_spread(classes, shares) if spread_ok else 1.0  # simulated: only for what passed the rest
        if chance < P_CHANCE:
            continue  # labels concentrated on a few look-alike classes: their overlap, not junk
        out_group[members] = len(info)
        out_z[members] = z
        info.append({"size": int(len(members)), "classes": {int(c): int(v) for c, v in enumerate(classes) if v},
                     "z": z_med, "fit": fit_med, "tight": float(np.median(tight)), "spread": bool(spread_ok),
                     "chance": chance})
    return JunkGroups(out_group, out_z, info)


def chance_of_spread(counts: np.ndarray, shares: np.ndarray, draws: int = CHANCE_DRAWS) -> float:
    """How likely a random draw of as many images as the group holds, each filed under a class with the data
    set's class shares, spreads its labels no more than the group's: the smaller of P(the draw covers no more
    classes than the group) and P(its largest class holds at least the group's largest count), simulated with
    a fixed seed. Junk sent to every class by a query template is such a draw (high); the overlap of a few
    look-alike classes is not (low).

    Args:
        counts: per class, the group's members filed under it.
        shares: per class, its share of the whole data set (sums to 1).
    """
    counts = np.asarray(counts, dtype=np.int64)
    p = np.asarray(shares, dtype=np.float64)
    sim = np.random.default_rng(0).multinomial(int(counts.sum()), p / p.sum(), size=draws)
    fewer = int(((sim > 0).sum(axis=1) <= int((counts > 0).sum())).sum())
    fuller = int((sim.max(axis=1) >= int(counts.max())).sum())
    return (1 + min(fewer, fuller)) / (1 + draws)


def group_reason(size: int, classes: dict[int, int], vocab: Sequence[str], spread: bool) -> str:
    """"12 look-alike images filed under 5 classes, unlike the rest of each class: ..." in plain words."""
    names = ", ".join(f"*{vocab[c]}* {v}" for c, v in sorted(classes.items(), key=lambda kv: -kv[1]))
    if spread:
        return (f"{size} look-alike images filed under {len(classes)} classes ({names}), unlike the rest of each "
                "class: probably not any of your classes — delete the group if so")
    return (f"{size} look-alike images filed under *{vocab[next(iter(classes))]}*, an island far from the rest "
            "of the class: probably off-topic — delete the group if so")


def find_junk(item_ids: Sequence[str], labels: Sequence[int] | np.ndarray, vocab: Sequence[str],
              junk: JunkGroups, group_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """One ``outlier`` row per member of every junk group: same ``group`` id, no suggested label.

    ``group_ids`` names the groups (default :func:`group_id` of the members); severity grows with the group's ``apart`` z.
    """
    rows = []
    for gi, inf in enumerate(junk.info):
        members = np.flatnonzero(junk.group == gi)
        gid = group_ids[gi] if group_ids is not None else group_id([item_ids[i] for i in members])
        reason = group_reason(inf["size"], inf["classes"], vocab, inf["spread"])
        sev = float(np.clip(0.6 + 0.1 * inf["z"], 0.6, 0.95))
        for i in members:
            rows.append({"item_id": item_ids[i], "issue": "outlier", "severity": sev, "reason": reason, "group": gid})
    return issues_frame(rows)


def group_id(member_ids: Sequence[str]) -> str:
    """A stable name for a group: ``junk-`` and 8 hex digits of a hash of its sorted member ids."""
    import hashlib

    return "junk-" + hashlib.sha256("|".join(sorted(map(str, member_ids))).encode()).hexdigest()[:8]


def compute_class_fit(labels: Sequence[int] | np.ndarray, target: Sequence[int] | np.ndarray,
                      neighbours: Neighbours, m: int = M_APART) -> np.ndarray:
    """Per image, how unlike the members of class ``target[i]`` it is: the robust z of its mean similarity to
    its ``m`` nearest members of that class, against that class's members' own value (N floats; 0 = typical,
    large = it does not look like that class at all). ``neighbours`` needs a wide list (``K_WIDE``)."""
    y = np.asarray(labels, dtype=np.int64)
    t = np.asarray(target, dtype=np.int64)
    idx, sim, valid = neighbours.index, neighbours.sim, neighbours.valid
    nb_lab = np.where(valid, y[np.clip(idx, 0, None)], -1)
    med, spr = _class_stats(_mean_first(sim, nb_lab == y[:, None], m), y)
    s_t = _mean_first(sim, nb_lab == t[:, None], m)
    return (med[t] - s_t) / spr[t]


def compute_class_core(labels: Sequence[int] | np.ndarray, neighbours: Neighbours, k: int = K_JUNK,
                       share: float = 0.5) -> np.ndarray:
    """N bool: the images most typical of their class — those whose own label holds at least ``share`` of the
    image and its ``k`` nearest neighbours (copies excluded; the same count as ``dominance``).

    The class *as its typical members see it*, from the embeddings and the given labels alone (no classifier,
    no label detector): a junk group filed under many classes (its neighbours are each other, labels mixed)
    and a wrongly labelled image (its neighbours are of its true class) are not in the core, so neither can
    pull the class's reference — however another detector flags them. A class whose core would have fewer
    than 2 members keeps all its members.
    """
    y = np.asarray(labels, dtype=np.int64)
    n = len(y)
    if n == 0:
        return np.zeros(0, dtype=bool)
    idx, valid = neighbours.index, neighbours.valid
    kk = min(k, idx.shape[1])
    same = valid[:, :kk] & (y[np.clip(idx[:, :kk], 0, None)] == y[:, None])
    core = (same.sum(axis=1) + 1) >= share * (valid[:, :kk].sum(axis=1) + 1)
    for c in np.unique(y):
        m = y == c
        if (core & m).sum() < 2:
            core[m] = True
    return core


def compute_fit_to_classes(labels: Sequence[int] | np.ndarray, neighbours: Neighbours, m: int = M_APART,
                           exclude: np.ndarray | None = None, min_class: int = 8) -> np.ndarray:
    """N×K: how unlike the members of each class every image is — the robust z of its mean similarity to its
    ``m`` nearest members of class ``c``, against class ``c``'s own members' value (0 = typical, large = it looks
    like nothing in that class). ``exclude`` (N bool, e.g. likely label errors) are neither counted as class
    members nor used for the class's reference (a class with fewer than ``min_class`` others uses the whole data
    set's). ``neighbours`` needs a wide list (``K_WIDE``); a class absent
    from the list is taken at the list's last similarity (an upper bound, so the z is a lower bound)."""
    y = np.asarray(labels, dtype=np.int64)
    n = len(y)
    if n == 0:
        return np.zeros((0, 0))
    idx, sim, valid = neighbours.index, neighbours.sim, neighbours.valid
    keep = valid if exclude is None else valid & ~np.asarray(exclude, dtype=bool)[np.clip(idx, 0, None)]
    nb_lab = np.where(keep, y[np.clip(idx, 0, None)], -1)
    ref = np.ones(n, dtype=bool) if exclude is None else ~np.asarray(exclude, dtype=bool)
    ref = ref if ref.any() else np.ones(n, dtype=bool)
    own = _mean_first(sim, nb_lab == y[:, None], m)
    g_med, g_spr = _class_stats(own[ref], np.zeros(int(ref.sum()), np.int64))
    k = int(y.max()) + 1
    out = np.full((n, k), np.inf)
    for c in np.unique(y):
        r = ref & (y == c)
        med, spr = _class_stats(own[r], np.zeros(int(r.sum()), np.int64)) if r.sum() >= min_class else (g_med, g_spr)
        out[:, c] = (med[0] - _mean_first(sim, nb_lab == c, m)) / spr[0]
    return out

