"""The kept neighbour tables and pixel similarities (cleaning/detect/memo.py) give what a fresh search gives."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from cleaning.detect import compute_neighbours
from cleaning.detect.memo import ScanMemo, content_ids, lookup, neighbour_table, table_neighbours
from cleaning.groups import make_groups


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Clustered unit rows with some exact copies (equal rows, equal sha)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, 32))
    x = centres[rng.integers(0, 6, n)] + 0.6 * rng.normal(size=(n, 32))
    sha = [hashlib.sha256(f"{seed}-{i}".encode()).hexdigest() for i in range(n)]
    for i in range(0, n, 37):  # a copy of the row before: same bytes, same embedding
        if i:
            x[i], sha[i] = x[i - 1], sha[i - 1]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), sha


def _same(a, b) -> None:
    assert np.array_equal(a.index, b.index)
    np.testing.assert_allclose(np.where(a.valid, a.sim, 0), np.where(b.valid, b.sim, 0), atol=1e-6)


def test_table_neighbours_equal_the_exact_search_for_every_k_and_grouping():
    x, sha = _data(400)
    exact = make_groups(sha)
    coarse = exact.copy()
    coarse[10:60] = coarse[10]  # one large group (50 rows): its rows need the exact fallback at k = 10
    coarse[100:103] = coarse[100]
    table, rc = neighbour_table(x, content_ids(sha))
    for k, g in ((8, exact), (10, coarse), (40, coarse), (40, exact)):
        _same(table_neighbours(x, table, rc, k, g), compute_neighbours(x, k, g))


def test_a_kept_table_merged_with_new_rows_equals_a_fresh_one():
    x, sha = _data(500, seed=1)
    old = np.ones(len(x), bool)
    old[np.random.default_rng(2).choice(len(x), 60, replace=False)] = False
    old[5] = old[6] = True
    first, _ = neighbour_table(x[old], content_ids([s for s, o in zip(sha, old) if o]))
    keep = np.ones(len(x), bool)
    keep[5] = False  # one old image removed: the lists that held it are searched again
    again, rc = neighbour_table(x[keep], content_ids([s for s, k in zip(sha, keep) if k]), memo=first)
    fresh, rc2 = neighbour_table(x[keep], content_ids([s for s, k in zip(sha, keep) if k]))
    assert np.array_equal(rc, rc2) and np.array_equal(again.content, fresh.content)
    assert np.array_equal(again.index, fresh.index)
    np.testing.assert_allclose(again.sim, fresh.sim, atol=1e-6)
    saved = ScanMemo.from_arrays(ScanMemo(emb=again).to_arrays())
    assert np.array_equal(saved.emb.index, again.index)


def test_lookup_finds_kept_rows_and_only_them():
    keys = content_ids([hashlib.sha256(str(i).encode()).hexdigest() for i in range(100)])
    q = np.vstack([keys[[3, 50, 99]], content_ids(["not kept"])])
    assert lookup(keys, q).tolist() == [3, 50, 99, -1]


@pytest.mark.parametrize("exact_max", [10_000, 50])  # 50: the kept approximate index (cleaning/detect/ann.py)
def test_kept_pair_similarities_give_the_groups_of_a_fresh_run(exact_max: int, monkeypatch: pytest.MonkeyPatch):
    from cleaning.detect import duplicates, index

    monkeypatch.setattr(index, "EXACT_MAX", exact_max)
    rng = np.random.default_rng(3)
    small = rng.integers(0, 256, (160, 4, 4, 3)).astype(np.float32)
    thumbs = np.clip(np.kron(small, np.ones((1, 8, 8, 1))) + rng.normal(0, 6, (160, 32, 32, 3)), 0, 255)
    for i in range(0, 160, 9):  # near copies: brightened, a little noise
        thumbs[i + 1] = np.clip(thumbs[i] * 1.08 + rng.normal(0, 2, (32, 32, 3)), 0, 255)
    thumbs = thumbs.astype(np.uint8)
    x = thumbs.reshape(160, -1).astype(np.float32) - 128 + rng.normal(0, 40, (160, 3072)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    sha = [hashlib.sha256(t.tobytes()).hexdigest() for t in thumbs]
    ph = ["0" * 16] * 160
    sizes = np.full((160, 2), 32)
    first = duplicates.compute_duplicate_groups(x[:140], sha[:140], ph[:140], thumbs[:140], sizes=sizes[:140])
    seen: list[int] = []
    real = duplicates.compute_pixel_similarity
    monkeypatch.setattr(duplicates, "compute_pixel_similarity", lambda t, p: seen.append(len(p)) or real(t, p))
    again = duplicates.compute_duplicate_groups(x, sha, ph, thumbs, sizes=sizes, memo=first.memo)
    fresh = duplicates.compute_duplicate_groups(x, sha, ph, thumbs, sizes=sizes)
    assert np.array_equal(again.group, fresh.group) and again.pairs == fresh.pairs and len(fresh.pairs) >= 10
    assert seen[0] < seen[1], seen  # the rescan compared only pairs with one of the 20 new rows
    assert first.memo.emb is not None and (first.memo.ann_emb is None) == (exact_max >= 140)
