"""The approximate neighbour table above EXACT_MAX (cleaning/detect/ann.py): a projected HNSW index re-ranked
exactly, kept between scans and extended with the new contents instead of rebuilt."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from cleaning.detect import ann, index
from cleaning.detect.memo import ScanMemo, content_ids, neighbour_table, table_neighbours


def _clustered(n: int, d: int = 400, seed: int = 0) -> np.ndarray:
    """Clusters in a low-dimensional subspace plus isotropic noise: wider than 2·PROJ_DIM, so it is projected."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(40, d))
    centres = rng.normal(size=(25, 40))
    x = (centres[rng.integers(0, 25, n)] + 0.6 * rng.normal(size=(n, 40))) @ basis + 2.0 * rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _ids(n: int, salt: str = "") -> np.ndarray:
    return content_ids([hashlib.sha256(f"{salt}{i}".encode()).hexdigest() for i in range(n)])


def _recall(exact: np.ndarray, approx: np.ndarray) -> float:
    return index.recall_at_k(exact, approx)


def test_projected_index_finds_the_exact_neighbours_with_exact_similarities() -> None:
    x = _clustered(1500)
    cid = _ids(1500)
    exact, _ = neighbour_table(x, cid)
    approx, rc, state = ann.approximate_table(x, cid)
    assert state.basis.shape == (x.shape[1], ann.PROJ_DIM)  # indexed on the principal components ...
    assert _recall(exact.index[:, :10], approx.index[:, :10]) > 0.98
    assert _recall(exact.index, approx.index) > 0.95
    ok = approx.index >= 0
    rows = np.broadcast_to(np.arange(len(x))[:, None], ok.shape)
    # ... but the similarities are the full-dimension ones, sorted
    assert np.allclose(approx.sim[ok], np.einsum("rd,rd->r", x[rows[ok]], x[approx.index[ok]]), atol=1e-5)
    assert (np.diff(approx.sim, axis=1) <= 1e-6).all() and not (approx.index == rows).any()
    nb = table_neighbours(x, approx, rc, 10)
    assert _recall(table_neighbours(x, exact, rc, 10).index, nb.index) > 0.98


def test_rescan_extends_the_kept_index_and_equals_a_fresh_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """1,100 contents, then 5 removed and 200 added: nothing rebuilt, only the new and the contents whose list
    named a removed one are searched, and the lists match a search from nothing up to the index's recall."""
    x = _clustered(1300, seed=1)
    cid = _ids(1300)
    first, _, state = ann.approximate_table(x[:1100], cid[:1100])
    keep = np.r_[5:1300]  # rows 0–4 removed, 1100–1299 new
    builds: list[int] = []
    asked: list[int] = []
    real_build, real_query = ann.build_index, ann._query
    monkeypatch.setattr(ann, "build_index", lambda z, *a, **k: builds.append(len(z)) or real_build(z, *a, **k))
    monkeypatch.setattr(ann, "_query", lambda i, z, rows, *a: asked.append(len(rows)) or real_query(i, z, rows, *a))
    saved = ScanMemo.from_arrays(ScanMemo(emb=first, ann_emb=state).to_arrays())  # through the memo's arrays
    again, _, state2 = ann.approximate_table(x[keep], cid[keep], memo=saved.emb, state=saved.ann_emb)
    assert builds == [] and len(state2.labels) == 1300 and int(state2.alive.sum()) == 1295
    assert 200 <= asked[0] < 800, asked  # the new contents and the lists that named a removed content
    removed = set(range(5))
    assert not any(int(keep[j]) in removed for j in again.index[again.index >= 0])
    exact, _ = neighbour_table(x[keep], cid[keep])
    fresh, _, _ = ann.approximate_table(x[keep], cid[keep])
    r_again, r_fresh = _recall(exact.index[:, :10], again.index[:, :10]), _recall(exact.index[:, :10], fresh.index[:, :10])
    assert r_again > 0.97 and r_again >= r_fresh - 0.01, (r_again, r_fresh)


def test_duplicate_step_keeps_the_index_above_exact_max(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above EXACT_MAX the scan's memo holds the HNSW index, and a rescan with new images does not rebuild it."""
    from cleaning.detect import duplicates

    monkeypatch.setattr(index, "EXACT_MAX", 100)
    x = _clustered(400, seed=2)
    sha = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(400)]
    ph = ["0" * 16] * 400
    first = duplicates.compute_duplicate_groups(x[:350], sha[:350], ph[:350])
    assert first.memo is not None and first.memo.ann_emb is not None
    memo = ScanMemo.from_arrays(first.memo.to_arrays())
    builds: list[int] = []
    real = ann.build_index
    monkeypatch.setattr(ann, "build_index", lambda z, *a, **k: builds.append(len(z)) or real(z, *a, **k))
    again = duplicates.compute_duplicate_groups(x, sha, ph, memo=memo)
    assert builds == [] and again.memo is not None and len(again.memo.ann_emb.labels) == 400
    exact = table_neighbours(x, neighbour_table(x, content_ids(sha))[0], np.arange(400), 8)
    got = table_neighbours(x, again.memo.emb, again.memo.row_content, 8)
    assert _recall(exact.index, got.index) > 0.97


def test_the_memo_is_handed_over_after_the_duplicate_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """``keep`` gets the whole memo (kept index included) once; the result no longer carries the index bytes."""
    import pandas as pd

    from cleaning.detect.quality import STATS_COLUMNS
    from cleaning.detect.run import DetectorInputs, run_detectors

    monkeypatch.setattr(index, "EXACT_MAX", 100)
    n = 300
    x = _clustered(n, seed=4)
    y = np.arange(n) % 3
    probs = np.full((n, 3), 0.1, np.float32)
    probs[np.arange(n), y] = 0.8
    inp = DetectorInputs([str(i) for i in range(n)], [f"{i}.jpg" for i in range(n)], y, ["a", "b", "c"], x, probs,
                         [f"{i:064x}" for i in range(n)], [f"{i:016x}" for i in range(n)], None,
                         pd.DataFrame(np.full((n, len(STATS_COLUMNS)), 0.5), columns=STATS_COLUMNS), [64] * n, [64] * n)
    got: list[ScanMemo] = []
    res = run_detectors(inp, keep=got.append)
    assert len(got) == 1 and got[0].ann_emb is not None and len(got[0].ann_emb.blob)
    assert res.memo is not None and res.memo.ann_emb is None and res.memo.emb is not None


def test_exact_re_ranking_similarities_are_the_full_dimension_products() -> None:
    """The re-ranking's similarities (one content at a time into a reused buffer) are the full-dimension products
    (float64 as truth), bitwise those of the earlier 64-contents-at-a-time gather, and -inf where a slot is empty."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 64)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    first = np.sort(rng.choice(300, 120, replace=False))
    rows = np.array([0, 7, 119, 55])
    cand = rng.integers(-1, 120, (len(rows), 20))
    got = ann._exact_sims(x, first, rows, cand)
    before = np.matmul(x[first[np.clip(cand, 0, None)]], x[first[rows]][:, :, None])[:, :, 0]
    ok = cand >= 0
    assert np.array_equal(got[ok], before[ok]) and np.isneginf(got[~ok]).all()
    x64 = x.astype(np.float64)
    for i, r in enumerate(rows):
        np.testing.assert_allclose(got[i, ok[i]], x64[first[cand[i, ok[i]]]] @ x64[first[r]], atol=1e-6)
