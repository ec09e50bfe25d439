"""Kept fold heads (cleaning.model.foldheads): a rescan after a small change reuses them, a decision refits.

Real images: sklearn's 1,797 handwritten digits (8×8 pixels as features, 8 % of the labels flipped) for
the arithmetic, and the bundled demo photos with the real backbone for the workspace path.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cleaning.data.cache import load_arrays
from cleaning.model import oos
from cleaning.model.foldheads import FoldHeads, plan_reuse, reuse_share
from tests.conftest import demo_subset_workspace

REPO = Path(__file__).resolve().parent.parent
VOCAB = [str(i) for i in range(10)]


def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(features N×64 unit rows, true labels, given labels with 8 % flipped, content hashes)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.data.astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(0)
    given = y.copy()
    flip = rng.random(len(y)) < 0.08
    given[flip] = (y[flip] + rng.integers(1, 10, int(flip.sum()))) % 10
    shas = [hashlib.sha256(im.tobytes() + i.to_bytes(2, "little")).hexdigest() for i, im in enumerate(d.images)]
    return x, y, given, shas


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    return _digits()


def _split(n: int, n_old: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(1).permutation(n)
    return np.sort(perm[:n_old]), np.sort(perm[n_old:])


def _tv(a: np.ndarray, b: np.ndarray) -> float:
    """Mean total-variation distance between the rows of two probability matrices."""
    return float(np.abs(a - b).sum(axis=1).mean() / 2)


def _fit(cache: Path, x: np.ndarray, y: np.ndarray, shas: list[str], rows: np.ndarray,
         slot: str = "s") -> tuple[np.ndarray, np.ndarray, str]:
    return oos.load_or_fit_pred_probs(cache, slot, x[rows], [shas[i] for i in rows], y[rows], VOCAB, np.arange(len(rows)))


def test_a_rescan_after_adding_images_reuses_the_heads_within_refit_noise(tmp_path: Path, digits,  # noqa: ANN001
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    x, truth, given, shas = digits
    old, new = _split(len(x), 1650)  # 147 new rows: 8.2 % of the 1,797, under the 10 % share
    p_old, f_old, how = _fit(tmp_path, x, given, shas, old)
    assert how.startswith("fitted")
    fits = []
    real = oos.cross_val_pred_probs
    monkeypatch.setattr(oos, "cross_val_pred_probs", lambda *a, **k: fits.append(1) or real(*a, **k))
    allr = np.arange(len(x))
    p, folds, how = _fit(tmp_path, x, given, shas, allr)
    assert fits == [] and how.startswith("reused: 147 rows changed")
    # the unchanged rows keep their fold and their probabilities (the kept heads recomputed: float rounding)
    np.testing.assert_array_equal(folds[old], f_old)
    np.testing.assert_allclose(p[old], p_old, atol=1e-5)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert (p[new].argmax(1) == truth[new]).mean() > 0.9  # the new rows are predicted, out of sample
    monkeypatch.setattr(oos, "cross_val_pred_probs", real)
    # tolerance, stated: a kept-heads result is as far from a fresh refit as two fresh refits (other fold seed)
    # are from each other, within 1.5× — on the unchanged rows and on the new ones
    fresh0 = oos.compute_oos_pred_probs(x, given, VOCAB, seed=0)
    fresh1 = oos.compute_oos_pred_probs(x, given, VOCAB, seed=1)
    for rows in (old, new):
        assert _tv(p[rows], fresh0[rows]) <= 1.5 * _tv(fresh1[rows], fresh0[rows])
    loss = -np.log(p[allr, given])
    assert np.corrcoef(np.argsort(np.argsort(loss)), np.argsort(np.argsort(-np.log(fresh0[allr, given]))))[0, 1] > 0.9


def test_a_relabel_or_a_large_change_refits(tmp_path: Path, digits) -> None:  # noqa: ANN001
    x, _, given, shas = digits
    old, new = _split(len(x), 1700)
    _fit(tmp_path, x, given, shas, old)
    relabelled = given.copy()
    relabelled[old[0]] = (given[old[0]] + 1) % 10  # one decision
    assert _fit(tmp_path, x, relabelled, shas, old)[2] == "fitted: a label changed since the heads were fitted"
    # that refit's heads are now the kept ones: the same rows plus a few new ones are served by them
    assert _fit(tmp_path, x, relabelled, shas, np.sort(np.r_[old, new[:20]]))[2].startswith("reused")
    big = np.sort(np.r_[old[:1300], new])  # 400 removed, 97 added: 497 of 1,397 rows
    assert _fit(tmp_path, x, relabelled, shas, big)[2].startswith("fitted: 497 rows changed")
    assert reuse_share(5) == 0.1


def test_pruned_rows_count_as_changes_and_copies_keep_their_fold(tmp_path: Path, digits) -> None:  # noqa: ANN001
    x, _, given, shas = digits
    rows = np.arange(1000)
    p, folds, _ = _fit(tmp_path, x, given, shas, rows)
    heads = FoldHeads.from_arrays(load_arrays(tmp_path, "heads", "s"))
    assert heads is not None
    pruned = given[rows].copy()
    pruned[:60] = -1  # the label check leaves 60 rows out of training: 6 %, reused
    plan = plan_reuse(heads, [shas[i] for i in rows], pruned, VOCAB, np.arange(1000), 5)
    assert plan.folds is not None and plan.changed == 60
    pruned[:150] = -1
    assert plan_reuse(heads, [shas[i] for i in rows], pruned, VOCAB, np.arange(1000), 5).folds is None
    # a new image that copies row 7 (one copy group) is predicted by row 7's head, the one that never saw it
    shas2 = [shas[i] for i in rows] + ["f" * 64]
    groups = np.r_[np.arange(1000), 7]
    plan = plan_reuse(heads, shas2, np.r_[given[rows], given[7]], VOCAB, groups, 5)
    assert plan.folds is not None and plan.folds[-1] == folds[7]
    assert plan_reuse(heads, [shas[i] for i in rows], given[rows], VOCAB[:9] + ["x"], np.arange(1000), 5).folds is None
    # an exact copy of row 7 added under another class is one added row (not a relabel); relabelling it is one
    conflict = np.r_[given[rows], (given[7] + 1) % 10]
    plan = plan_reuse(heads, [shas[i] for i in rows] + [shas[7]], conflict, VOCAB, groups, 5)
    assert plan.folds is not None and plan.changed == 1 and plan.folds[-1] == folds[7]
    relabelled = given[rows].copy()
    relabelled[7] = (given[7] + 1) % 10
    assert plan_reuse(heads, [shas[i] for i in rows], relabelled, VOCAB, np.arange(1000), 5).folds is None


def test_relearn_fits_afresh_exactly_as_before(tmp_path: Path, digits) -> None:  # noqa: ANN001
    """The first scan is unchanged: with nothing kept, the re-learning pass equals compute_oos_pred_probs."""
    x, _, given, shas = digits
    labels = given.copy()
    labels[::13] = -1
    groups = np.arange(len(x)) // 2  # pairs share a fold
    got = oos.relearn_pred_probs(tmp_path, "model", x, shas, labels, VOCAB, groups)
    want = oos.compute_oos_pred_probs(x, labels, VOCAB, groups=groups)
    np.testing.assert_array_equal(got, want)


_CHILD = """
import sys; from pathlib import Path
sys.path.insert(0, {tests!r})
import numpy as np
from test_foldheads import _digits, VOCAB
from cleaning.model import oos
x, _, given, shas = _digits()
print(oos.load_or_fit_pred_probs(Path(sys.argv[1]), "s", x, shas, given, VOCAB, np.arange(len(x)))[2])
"""


def test_two_processes_fit_once(tmp_path: Path) -> None:
    """Two scans at once: the second waits on the slot's lock, then reuses the first one's heads."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    code = _CHILD.format(tests=str(REPO / "tests"))
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    hows = sorted(p.communicate(timeout=300)[0].strip() for p in procs)
    assert hows == ["fitted: no heads kept", "reused: 0 rows changed since the heads were fitted"], hows


@pytest.fixture
def ws(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    return demo_subset_workspace(tmp_path, tmp_path_factory, monkeypatch, per_class=16)


def test_a_rescan_after_adding_photos_fits_no_head_and_a_relabel_refits(ws, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """The whole scan (both passes: out-of-sample and the label check's re-learning, on the embedding and on the
    tapped block, whose label check these 48 photos do not choose) on the demo's real photos."""
    from cleaning.data.workspace import Workspace
    from cleaning.review.analysis import compute_scores

    fits: list[int] = []  # the width of the features each fit is on: 1280 the embedding, 192 the tapped block
    real = oos.cross_val_pred_probs
    monkeypatch.setattr(oos, "cross_val_pred_probs", lambda x, *a, **k: fits.append(x.shape[1]) or real(x, *a, **k))
    first = compute_scores(ws)
    assert len(first) == 48 and fits == [1280, 192, 1280]  # out-of-sample on both layers, re-learning on one
    p_first = oos.load_or_compute_oos(ws)
    added = []
    for label in ("bird", "fruit", "mammal"):  # three new photos: 3 of 51 rows (6 %)
        src = sorted((REPO / "demo" / "data" / label).glob("*.jpg"))[16]
        shutil.copy(src, ws.root / label / src.name)
        added.append(f"{label}/{src.name}")
    ws = Workspace.open(ws.root, refresh=True)
    second = compute_scores(ws)
    assert len(fits) == 3, "a rescan after adding 3 photos refitted a head"
    assert len(second) == 51 and set(added) <= set(second["path"])
    new_rows = second[second["path"].isin(added)]
    assert new_rows["predicted_label"].isin(["bird", "fruit", "mammal"]).all()
    p_second = oos.load_or_compute_oos(ws)  # (from the scan's cache: the kept heads' answer)
    row = {iid: i for i, iid in enumerate(p_second.item_ids)}
    for i, iid in enumerate(p_first.item_ids):  # the unchanged rows keep their probabilities
        np.testing.assert_allclose(p_second.pred_probs[row[iid]], p_first.pred_probs[i], atol=1e-5)
    ws.store.record([p_first.item_ids[0]], "relabel", label="fruit")
    compute_scores(ws)
    assert fits[3:] == [1280, 192, 1280], "a relabel decision must refit both passes"
