"""The zero-shot check on label suggestions: does the backbone's own ImageNet head see the suggested class?

``mass`` (N×K) comes from :func:`cleaning.model.semantic.class_mass` (see its module doc): the head's
probability on the ImageNet classes WordNet files under each class name. A class is *known* when at least
:data:`COVER` of its members the label check leaves alone carry at least :data:`MASS_MIN` of it (and at least
:data:`MIN_MEMBERS` such members). The scan also leaves out the members of the junk groups it found
(:func:`cleaning.detect.run.join_checks`): junk filed into a class is not its member. Two planets filed under the
bundled demo's *fruit* took its cover from 0.88 to 0.79, under the bar, which switched the head's word off for the
mislabelled lemon and mandarine beside them. Real-photo benchmark, 30 sets: on the first composition off-topic
precision 0.902 → 0.903 and label precision 0.856 → 0.857; on the animals off-topic precision 0.731 → 0.728, label
precision 0.778 both ways; recall level.

An image the label check would move to a known class but which carries
less than :data:`MASS_MIN` of it is *contradicted*: the scan does not offer that class, and reports the
image as off-topic with the split evidence in words (:func:`cleaning.detect.run.run_detectors`).

The head is also a third opinion (:func:`label_opinion`), one that never learnt from the
data set's labels: the label check's flag is dropped when the head clearly sees the given class (an odd member
the classifier and the neighbours place elsewhere, but which the head recognises), and an image the check left
alone is flagged when the head clearly sees the check's best other class in it and none of the given one. Photo
benchmark, 30 sets: label F1 0.792 → 0.804 (7 sets up, none down; ``bench/results/photos.md``). A flag is also
dropped when the head merely *prefers* the given class (:func:`prefers_given`: at least :data:`MASS_PREFER` of it and
:data:`PREFER_RATIO` times the suggested class's mass): the banana filed under *fruit* that the classifier calls a
vegetable at 0.99 gets fruit 0.27, vegetable 0.09 from the head (its top class is *banana*, 0.24); a potato,
vegetable 0.41, fruit 0.08 (*vegetable* is not known to the head: half its members carry none of it; one of the
two classes must be known for the comparison to mean something). Photo benchmark, 30 sets: label precision 0.797 →
0.854 at the same recall (banana, potato and whale flags); on the four animal compositions
0.763 → 0.775, 0.766 → 0.772, 0.898 → 0.907, 0.909 → 0.916, recall level. Only the label flags: the off-topic checks
keep to ``MASS_CLEAR`` (with the weaker bar, junk members the head sees a little of their filed class in left
their groups: junk found 0.962 → 0.951).

The same opinions hold for off-topic flags (:func:`cleaning.detect.run.join_checks`): an image in which the head
clearly sees its own class is not off-topic, alone or as a member of a junk group, and one in which it clearly
sees the label check's suggested class and none of the given is a label error. The
members of a junk group that are not junk are odd members of their class that sit near the junk (a penguin near
the moons, a yellow pepper near the coins); a group they leave with fewer than three images, or on one class, is
no group (:meth:`cleaning.detect.junk.JunkGroups.without`). Photo benchmark, 30 sets: off-topic precision 0.758 →
0.804 (mean over sets) at the same recall (0.91), 184 → 143 false flags; label F1 0.804 → 0.813.

More generally, an image in which the head clearly sees *any* class of yours it knows is not off-topic
(:func:`sees_a_class`): it belongs to one of your classes, if perhaps not the one it is filed under. The ear of corn
filed under *vegetable* is the one member of its class that looks like no other (off-topic z 3–5), and WordNet files
the head's *corn* and *ear* under fruit (0.94 of the mass): it was flagged off-topic on 21 of 30 photo sets. Photo
benchmark, 30 sets: off-topic precision 0.839 → 0.891 (mean over sets) at the same recall (0.907), wrong labels
reported as label errors 0.824 → 0.839 (some were off-topic flags); the animal compositions' precision level or up
(0.731 → 0.733, 0.787 → 0.792, 0.758 → 0.764, 0.952 → 0.963; recall level but one junk member of 900).
"""

from __future__ import annotations

import numpy as np

#: The least mass on a class's ImageNet classes that counts as "looks like one".
MASS_MIN = 0.05
#: A class is known to the head when at least this share of its members reach MASS_MIN (the photo benchmark,
#: 30 sets, gives the same figures for any bar from 0.5 to 0.8; at 0.9 fewer classes pass — the demo's fruit
#: reach 88 % — and its off-topic recall falls 0.91 → 0.88) ...
COVER = 0.8
#: ... counted over at least this many members.
MIN_MEMBERS = 8
#: The head sees a known class *clearly* from this mass: a flag on an image it clearly sees its own class in is
#: dropped, and an unflagged image it clearly sees the label check's best other class in, and none of its own,
#: is flagged (:func:`label_opinion`).
MASS_CLEAR = 0.5
#: The head *prefers* the given class (:func:`prefers_given`) from this mass, when it is also PREFER_RATIO times the
#: suggested class's: the label check's flag is dropped (the off-topic checks keep to MASS_CLEAR).
MASS_PREFER = 0.2
PREFER_RATIO = 2.0


def _known(mass: np.ndarray, labels: np.ndarray, flagged: np.ndarray) -> np.ndarray:
    """K bool: the classes the head knows (:func:`class_cover` ≥ COVER, counted without the ``flagged`` images)."""
    return _known_from(class_cover(mass, labels, flagged))


def _known_from(cover: np.ndarray) -> np.ndarray:
    """K bool: ``cover ≥ COVER`` (a class whose cover is NaN — no name match, too few members — is not known)."""
    with np.errstate(invalid="ignore"):
        return cover >= COVER


def class_cover(mass: np.ndarray, labels: np.ndarray, exclude: np.ndarray) -> np.ndarray:
    """K floats: per class, the share of its members (outside ``exclude``) carrying at least MASS_MIN of its mass;
    NaN for a class whose name matches nothing or with fewer than MIN_MEMBERS such members."""
    y = np.asarray(labels, dtype=np.int64)
    keep = ~np.asarray(exclude, dtype=bool)
    cover = np.full(mass.shape[1], np.nan)
    for c in range(mass.shape[1]):
        v = mass[keep & (y == c), c]
        if len(v) >= MIN_MEMBERS and bool(np.isfinite(v).all()):
            cover[c] = float((v >= MASS_MIN).mean())
    return cover


def contradicted(mass: np.ndarray | None, flagged: np.ndarray, suggested: np.ndarray,
                 cover: np.ndarray | None) -> np.ndarray:
    """N bool: flagged images whose suggested class the head knows (``cover ≥ COVER``, from :func:`class_cover`)
    but does not see in them (mass < MASS_MIN)."""
    flag = np.asarray(flagged, dtype=bool)
    if mass is None or cover is None or len(flag) == 0:
        return np.zeros(len(flag), dtype=bool)
    s = np.asarray(suggested, dtype=np.int64)
    return flag & _known_from(cover)[s] & (mass[np.arange(len(flag)), s] < MASS_MIN)


def misses_own_class(mass: np.ndarray | None, labels: np.ndarray, flagged: np.ndarray) -> np.ndarray:
    """N bool: the image's class is one the head knows (counted without the ``flagged`` images), and it sees less
    than MASS_MIN of it in the image (:func:`cleaning.detect.outlier.unclaimed_offtopic`)."""
    y = np.asarray(labels, dtype=np.int64)
    if mass is None or len(y) == 0:
        return np.zeros(len(y), dtype=bool)
    known = _known(mass, y, flagged)
    return known[y] & (np.nan_to_num(mass[np.arange(len(y)), y]) < MASS_MIN)


def sees_a_class(mass: np.ndarray | None, labels: np.ndarray, flagged: np.ndarray) -> np.ndarray:
    """N bool: the head clearly sees (mass ≥ MASS_CLEAR) some class it knows (counted without the ``flagged``
    images) in the image — whichever class the image is filed under: such an image is not off-topic."""
    y = np.asarray(labels, dtype=np.int64)
    if mass is None or len(y) == 0:
        return np.zeros(len(y), dtype=bool)
    known = _known(mass, y, flagged)
    return (np.where(known[None, :], np.nan_to_num(mass), 0.0) >= MASS_CLEAR).any(axis=1)


def prefers_given(mass: np.ndarray | None, labels: np.ndarray, flagged: np.ndarray,
                  suggested: np.ndarray) -> np.ndarray:
    """N bool: the head sees the given class at least MASS_PREFER and at least PREFER_RATIO times the suggested
    class, one of the two a class it knows — it prefers the given label, if not clearly (:func:`label_opinion`
    keeps that for MASS_CLEAR): a label flag on such an image is dropped."""
    y = np.asarray(labels, dtype=np.int64)
    if mass is None or len(y) == 0:
        return np.zeros(len(y), dtype=bool)
    known = _known(mass, y, flagged)
    rows = np.arange(len(y))
    s = np.asarray(suggested, dtype=np.int64)
    own, other = np.nan_to_num(mass[rows, y]), np.nan_to_num(mass[rows, s])
    return (known[y] | known[s]) & (own >= MASS_PREFER) & (own >= PREFER_RATIO * other)


def label_opinion(mass: np.ndarray | None, labels: np.ndarray, flagged: np.ndarray,
                  suggested: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The head's opinion, over classes it knows (counted without the ``flagged`` images; see the module doc):
    (N bool: it clearly sees the given class — no flag of any kind; N bool: it clearly sees the suggested class
    and none of the given one — a label error, not off-topic)."""
    y = np.asarray(labels, dtype=np.int64)
    if mass is None or len(y) == 0:
        return np.zeros(len(y), dtype=bool), np.zeros(len(y), dtype=bool)
    s = np.asarray(suggested, dtype=np.int64)
    known = _known(mass, y, flagged)
    rows = np.arange(len(y))
    own, other = np.nan_to_num(mass[rows, y]), np.nan_to_num(mass[rows, s])
    seen = known[y] & (own >= MASS_CLEAR)
    claimed = known[y] & known[s] & (s != y) & (own < MASS_MIN) & (other >= MASS_CLEAR)
    return seen, claimed
