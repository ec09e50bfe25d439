"""A rescan after images were added starts from what the previous scan kept (cleaning/detect/memo.py) and finds
exactly what a scan of the same tree from nothing finds (issue 15: the incremental scan)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import ImageEnhance

from cleaning.data.workspace import Workspace
from cleaning.detect import duplicates
from cleaning.review.analysis import find_issues
from tests.hostile import jpeg_bytes, make_image_tree, photo_crop

CLASSES = {"cat": 24, "coffee": 24, "astronaut": 24}


@pytest.fixture(autouse=True)
def _shared_model_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANING_CACHE", str(tmp_path_factory.getbasetemp() / "model-cache"))


def _plant(root: Path, rng: np.random.Generator, start: int, n: int) -> None:
    """``n`` new crops per class numbered from ``start``, plus near copies (brightened, re-encoded) of
    images already there, one exact copy and one image filed under the wrong class."""
    names = {"cat": "chelsea", "coffee": "coffee", "astronaut": "astronaut"}
    for label, photo in names.items():
        for i in range(start, start + n):
            (root / label / f"img_{i}.jpg").write_bytes(jpeg_bytes(photo_crop(photo, (64, 64), rng)))
    from PIL import Image

    for label, i in (("cat", start // 3), ("coffee", start // 4)):  # images of the first tree
        im = Image.open(root / label / f"img_{i}.jpg").convert("RGB")
        (root / label / f"near_{start}_{i}.jpg").write_bytes(jpeg_bytes(ImageEnhance.Brightness(im).enhance(1.15), 70))
    shutil.copy(root / "astronaut" / f"img_{start // 5}.jpg", root / "astronaut" / f"copy_{start}.jpg")
    (root / "cat" / f"wrong_{start}.jpg").write_bytes(jpeg_bytes(photo_crop("coffee", (64, 64), rng)))


def _rows(issues) -> list[tuple]:
    return sorted((r.path, r.issue, round(r.severity, 6), r.suggested_label, r.related_path, r.reason, r.group)
                  for r in issues.itertuples())


def test_rescan_after_adding_images_equals_a_scan_from_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    root = tmp_path / "ds"
    rng = np.random.default_rng(7)
    make_image_tree(root, CLASSES, size=64, seed=5)
    _plant(root, rng, 24, 0)
    ws = Workspace.open(root)
    first = find_issues(ws)
    assert (first["issue"] == "near_duplicate").any() and (first["issue"] == "duplicate").any()
    assert list((ws.cache_dir).glob("memo-*.npz")), "the scan keeps its neighbour tables and pair similarities"

    _plant(root, rng, 30, 6)  # 18 new crops + near copies of old images + a copy + a misfiled one: > 10 % new
    compared: list[int] = []
    real = duplicates.compute_pixel_similarity
    monkeypatch.setattr(duplicates, "compute_pixel_similarity",
                        lambda thumbs, pairs, *a, **k: compared.append(len(pairs)) or real(thumbs, pairs, *a, **k))
    ws.refresh()
    again = find_issues(ws)
    monkeypatch.undo()

    fresh_root = tmp_path / "copy" / "ds"  # the same files, a new workspace: nothing kept
    shutil.copytree(root, fresh_root)
    cold: list[int] = []
    monkeypatch.setattr(duplicates, "compute_pixel_similarity",
                        lambda thumbs, pairs, *a, **k: cold.append(len(pairs)) or real(thumbs, pairs, *a, **k))
    fresh = find_issues(Workspace.open(fresh_root))
    assert len(again) == len(fresh) and _rows(again) == _rows(fresh)
    dup = again[again["issue"].isin(["duplicate", "near_duplicate"])]
    found = set(dup["path"]) | set(dup["related_path"])  # new copies of old images, found by the rescan
    assert "astronaut/copy_30.jpg" in found and {"cat/near_30_10.jpg", "coffee/near_30_7.jpg"} & found
    assert compared and cold and 0 < compared[0] < cold[0], (compared, cold)  # only pairs with a new image
