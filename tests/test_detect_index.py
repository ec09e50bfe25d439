"""Approximate neighbours (HNSW) above EXACT_MAX: same answers as the exact search on clustered data,
copies still excluded; the embedding cache's part files (resumable chunks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cleaning.data.cache import EmbeddingTable
from cleaning.detect import ann, compute_neighbours, index


def _clustered(n: int = 1500, d: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(30, d))
    x = centres[rng.integers(0, 30, n)] + 0.5 * rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_approximate_neighbours_match_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    x = _clustered()
    groups = np.arange(len(x))
    groups[1] = groups[0] = 0  # a copy pair: never each other's neighbour
    exact = compute_neighbours(x, 10, groups)
    monkeypatch.setattr(index, "EXACT_MAX", 100)
    approx = compute_neighbours(x, 10, groups)
    assert approx.index.shape == exact.index.shape == (len(x), 10)
    assert index.recall_at_k(exact.index, approx.index) > 0.98
    assert 1 not in approx.index[0] and 0 not in approx.index[1]
    assert not (approx.index == np.arange(len(x))[:, None]).any()  # never itself
    assert (np.diff(approx.sim, axis=1) <= 1e-6).all()  # descending similarity
    again = compute_neighbours(x, 8)  # the graph is reused, narrower requests are its prefix
    assert index.recall_at_k(compute_neighbours(x, 8).index, again.index) == 1.0


def test_every_detector_is_served_by_one_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above EXACT_MAX the whole detector run builds the HNSW graph once (a second build is minutes at 100k)."""
    import pandas as pd

    from cleaning.detect.quality import STATS_COLUMNS
    from cleaning.detect.run import DetectorInputs, run_detectors

    x = _clustered(n=600, seed=3)
    y = np.arange(len(x)) % 3
    probs = np.full((len(x), 3), 0.1, np.float32)
    probs[np.arange(len(x)), y] = 0.8
    builds = []
    real, real_ann = index._hnsw, ann.build_index
    monkeypatch.setattr(index, "_hnsw", lambda *a, **k: builds.append(len(a[0])) or real(*a, **k))
    monkeypatch.setattr(ann, "build_index", lambda *a, **k: builds.append(len(a[0])) or real_ann(*a, **k))
    monkeypatch.setattr(index, "EXACT_MAX", 100)
    index._GRAPHS.clear()
    n = len(x)
    inp = DetectorInputs([str(i) for i in range(n)], [f"{i}.jpg" for i in range(n)], y, ["a", "b", "c"], x, probs,
                         [f"{i:064x}" for i in range(n)], [f"{i:016x}" for i in range(n)], None,
                         pd.DataFrame(np.full((n, len(STATS_COLUMNS)), 0.5), columns=STATS_COLUMNS),
                         [64] * n, [64] * n)
    run_detectors(inp)
    assert builds.count(n) == 1, builds  # (the off-topic check's per-class matrices are others)


def test_embedding_parts_survive_an_interrupted_run(tmp_path: Path) -> None:
    t = EmbeddingTable(tmp_path, "m", 4)
    t.add(["a", "b"], np.eye(4, dtype=np.float32)[:2])
    t.save_part()
    t.add(["c"], np.eye(4, dtype=np.float32)[2:3], failed={"z": "broken"})
    t.save_part()  # ... and the run dies before save()
    back = EmbeddingTable(tmp_path, "m", 4)
    assert back.missing(["a", "b", "c", "z", "d"]) == ["d"]
    np.testing.assert_array_equal(back.get(["c", "a"]), np.eye(4, dtype=np.float32)[[2, 0]])
    back.add(["d"], np.eye(4, dtype=np.float32)[3:])
    back.save()  # folds the parts into the one file
    assert not back.parts_dir.exists()
    final = EmbeddingTable(tmp_path, "m", 4)
    assert final.missing(["a", "b", "c", "d", "z"]) == [] and final.failed == {"z": "broken"}
    np.testing.assert_array_equal(final.get(["d"]), np.eye(4, dtype=np.float32)[3:])
