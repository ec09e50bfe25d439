"""Duplicate detector: exact copies, near copies (re-encoded, resized, cropped, brightened) and
conflict groups across classes with the copy to keep, on a small tree of real photo crops."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from cleaning.data.images import inspect_image, load_image
from cleaning.detect import ISSUE_COLUMNS
from cleaning.detect.duplicates import (
    DuplicateGroups,
    compute_duplicate_groups,
    compute_pixel_similarity,
    compute_thumbnail,
    find_duplicates,
    phash_distance,
)
from tests.hostile import load_photo, photo_crop


@pytest.fixture(autouse=True)
def _shared_model_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANING_CACHE", str(tmp_path_factory.getbasetemp() / "model-cache"))


def _jpeg(im: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def test_pixel_similarity_survives_crop_and_brightness_but_not_another_photo() -> None:
    im = photo_crop("chelsea", (120, 90))
    w, h = im.size
    variants = [im.crop((int(w * 0.08), int(h * 0.08), w, h)), ImageEnhance.Brightness(im).enhance(1.3),
                im.resize((60, 45)), photo_crop("coffee", (120, 90)), Image.new("RGB", (120, 90), "white")]
    thumbs = np.stack([compute_thumbnail(v) for v in [im, *variants]])
    sim = compute_pixel_similarity(thumbs, [(0, i) for i in range(1, 6)])
    assert sim[0] > 0.9 and (sim[1:3] > 0.97).all() and sim[3] < 0.8 and abs(sim[4]) < 0.1


def test_phash_distance() -> None:
    assert phash_distance("ff00", "ff01") == 1 and phash_distance("", "ff") == 64


def tile_tree(root: Path, classes: dict[str, str], n: int, size: int = 96) -> dict[str, list[Path]]:
    """``root/<label>/img_<i>.jpg``: non-overlapping tiles of one real photo per class, so no two
    images of the tree are copies of each other (random crops of one photo can overlap)."""
    tree: dict[str, list[Path]] = {}
    for label, photo in classes.items():
        im = load_photo(photo)
        cols = 4
        rows = -(-n // cols)
        tw, th = im.width // cols, im.height // rows
        (root / label).mkdir(parents=True)
        tree[label] = []
        for i in range(n):
            x, y = (i % cols) * tw, (i // cols) * th
            p = root / label / f"img_{i}.jpg"
            p.write_bytes(_jpeg(im.crop((x, y, x + tw, y + th)).resize((size, size))))
            tree[label].append(p)
    return tree


def test_planted_copies_in_a_real_photo_tree(tmp_path: Path) -> None:
    from cleaning.model.embed import compute_embeddings

    tree = tile_tree(tmp_path, {"cat": "chelsea", "coffee": "coffee"}, n=12)
    src = load_image(tree["cat"][0])
    w, h = src.size
    planted = {
        "cat/copy_q30.jpg": _jpeg(src, 30),
        "cat/copy_small.jpg": _jpeg(src.resize((w // 2, h // 2))),
        "cat/copy_crop.jpg": _jpeg(src.crop((int(w * 0.08), int(h * 0.08), w, h))),
        "cat/copy_bright.jpg": _jpeg(ImageEnhance.Brightness(src).enhance(1.25)),
        "cat/img_3 (1).jpg": tree["cat"][3].read_bytes(),
        "cat/from_coffee.jpg": tree["coffee"][5].read_bytes(),  # a conflict: same bytes, other class
    }
    for rel, data in planted.items():
        (tmp_path / rel).write_bytes(data)
    paths = sorted(tmp_path.rglob("*.jpg"))
    rel = [p.relative_to(tmp_path).as_posix() for p in paths]
    infos = [inspect_image(p) for p in paths]
    thumbs = np.stack([compute_thumbnail(load_image(p)) for p in paths])
    groups = compute_duplicate_groups(compute_embeddings(paths), [i.sha256 for i in infos],
                                      [i.phash for i in infos], thumbs)
    found = sorted(sorted(rel[i] for i in m) for m in groups.members())
    assert found == sorted([
        sorted(["cat/img_0.jpg", "cat/copy_q30.jpg", "cat/copy_small.jpg", "cat/copy_crop.jpg", "cat/copy_bright.jpg"]),
        ["cat/img_3 (1).jpg", "cat/img_3.jpg"],
        ["cat/from_coffee.jpg", "coffee/img_5.jpg"],
    ])
    labels = [r.split("/")[0] for r in rel]
    support = np.array([0.9 if r.startswith("coffee") else 0.2 for r in rel])
    df = find_duplicates(rel, rel, labels, groups, [i.sha256 for i in infos], [i.width for i in infos],
                         [i.height for i in infos], support=support)
    assert list(df.columns) == ISSUE_COLUMNS
    by = df.set_index("item_id")
    assert by.loc["cat/img_3 (1).jpg", "related_item_id"] == "cat/img_3.jpg"  # the simpler name is kept
    assert by.loc["cat/img_3 (1).jpg", "issue"] == "duplicate"
    conflict = by.loc["cat/from_coffee.jpg"]
    assert conflict["related_item_id"] == "coffee/img_5.jpg" and conflict["severity"] > 0.9
    assert "conflict" in conflict["reason"] and "*coffee*" in conflict["reason"]
    assert set(by.loc[["cat/copy_q30.jpg", "cat/copy_crop.jpg"], "issue"]) == {"near_duplicate"}
    assert "cat/img_0.jpg" not in by.index  # the largest original is the keeper
    assert len(df) == 4 + 1 + 1


def test_without_thumbnails_phash_stands_in() -> None:
    x = np.eye(3, 8, dtype=np.float32)
    x[1] = (x[0] + 0.6 * np.eye(1, 8, 5)[0]) / np.linalg.norm(x[0] + 0.6 * np.eye(1, 8, 5)[0])
    g = compute_duplicate_groups(x, ["a", "b", "c"], ["ffff0000ffff0000", "ffff0000ffff0001", "0000ffff0000ffff"])
    assert isinstance(g, DuplicateGroups)
    assert [m.tolist() for m in g.members()] == [[0, 1]]


def _digit_tree(root: Path, per_class: int = 20, side: int = 24) -> list[Path]:
    """``root/<digit>/d_<i>.png``: real handwritten digits (scikit-learn's 8×8 scans, enlarged to ``side``)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    paths = []
    for c in range(10):
        (root / str(c)).mkdir(parents=True)
        for n, i in enumerate(np.flatnonzero(d.target == c)[:per_class]):
            im = Image.fromarray((d.images[i] * (255 / 16)).astype(np.uint8)).resize((side, side), Image.Resampling.BICUBIC)
            p = root / str(c) / f"d_{n}.png"
            im.save(p)
            paths.append(p)
    return paths


def test_small_digits_rotated_reencoded_or_halved_copies_are_paired_other_digits_are_not(tmp_path: Path) -> None:
    """On tiny handwritten digits a near duplicate is the same scan (turned 7°, JPEG q30, half size,
    mirrored), not the most alike other scans of the same digit."""
    from cleaning.model.embed import compute_embeddings

    originals = _digit_tree(tmp_path)
    src = {name: Image.open(tmp_path / name) for name in ("0/d_3.png", "1/d_5.png", "7/d_2.png", "4/d_8.png")}
    planted = {
        "0/copy_rot.png": src["0/d_3.png"].rotate(7, resample=Image.Resampling.BICUBIC),
        "1/copy_q30.jpg": Image.open(io.BytesIO(_jpeg(src["1/d_5.png"], 30))),
        "7/copy_half.png": src["7/d_2.png"].resize((12, 12), Image.Resampling.LANCZOS),
        "4/copy_flip.png": src["4/d_8.png"].transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    }
    for rel, im in planted.items():
        im.save(tmp_path / rel)
    paths = sorted([*originals, *(tmp_path / r for r in planted)])
    rel = [p.relative_to(tmp_path).as_posix() for p in paths]
    infos = [inspect_image(p) for p in paths]
    thumbs = np.stack([compute_thumbnail(load_image(p)) for p in paths])
    groups = compute_duplicate_groups(compute_embeddings(paths), [i.sha256 for i in infos], [i.phash for i in infos],
                                      thumbs, sizes=np.array([[i.width, i.height] for i in infos]))
    group = dict(zip(rel, groups.group.tolist()))
    for copy, original in [("0/copy_rot.png", "0/d_3.png"), ("1/copy_q30.jpg", "1/d_5.png"),
                           ("7/copy_half.png", "7/d_2.png"), ("4/copy_flip.png", "4/d_8.png")]:
        assert group[copy] == group[original], copy
        # the same digit by other hands: the original's most alike other scans of its class (by pixels) stay apart
        cls = original.split("/")[0]
        same = [r for r in rel if r.startswith(cls + "/d_") and r != original]
        sim = compute_pixel_similarity(thumbs, [(rel.index(original), rel.index(r)) for r in same])
        for r in np.array(same)[np.argsort(-sim)[:3]]:
            assert group[r] != group[original], (original, r)
        assert sum(g == group[original] for g in group.values()) == 2, original
    # scikit-learn's 8×8 scans quantise strokes to 16 levels on 64 cells: a few distinct scans of one writer
    # are nearly the same picture there (correlation 0.97 at 8×8) and may pair; no planted copy joins them.


def test_rotation_and_size_aware_pixel_similarity_on_a_real_photo() -> None:
    """A 7°-turned photo is as alike as a re-encode once rotations are tried; another photo is not."""
    im = photo_crop("chelsea", (120, 90))
    other = photo_crop("coffee", (120, 90))
    thumbs = np.stack([compute_thumbnail(v) for v in [im, im.rotate(7, resample=Image.Resampling.BICUBIC), other]])
    sim = compute_pixel_similarity(thumbs, [(0, 1), (0, 2)])
    assert sim[0] > 0.9 and sim[1] < 0.8  # without the rotation search: 0.66 (the corners differ: ~0.94)
