"""Outlier / off-topic detector: per-class neighbour and centre distances, on arrays and on a small
tree of real photo crops with off-topic photos planted (real model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cleaning.detect import ISSUE_COLUMNS
from cleaning.detect.outlier import Z_FLAG, compute_outlier_scores, find_outliers
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
