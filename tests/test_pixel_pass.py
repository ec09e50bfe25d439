"""The scan's pixel statistics and thumbnails measured from the embedding's own decode (issue 15: each file
decoded once) are exactly those the pixel pass measures from its decode; files the embedding decoded at a
reduced scale (large JPEGs) are decoded again by the pixel pass, and nothing else is."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cleaning.model.embed as embed
from cleaning.data.cache import load_arrays
from cleaning.data.images import file_sha256
from cleaning.data.workspace import Workspace
from cleaning.review.analysis import find_issues
from cleaning.review.pixels import PixelsFromEmbedding, compute_pixels
from tests.hostile import load_photo, photo_crop

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "demo" / "data"


@pytest.fixture(autouse=True)
def _shared_model_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANING_CACHE", str(tmp_path_factory.getbasetemp() / "model-cache"))


def _odd_files(d: Path) -> tuple[list[Path], set[str]]:
    """Real photos in every form the scan meets; returns (paths, names the embedding decodes at reduced scale)."""
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for p in sorted(DEMO.glob("*/*.jpg"))[::9][:8]:  # the demo's JPEGs, 46 to 256 px
        out.append(Path(shutil.copy(p, d / f"demo_{p.parent.name}_{p.name}")))
    cut = photo_crop("chelsea", (300, 220)).convert("RGBA")  # a cut-out on transparency (flattened on white)
    alpha = np.zeros((220, 300), np.uint8)
    alpha[30:190, 40:260] = 255
    cut.putalpha(Image.fromarray(alpha))
    cut.save(d / "cutout.png")
    photo_crop("coffee", (200, 150)).convert("P", palette=Image.Palette.ADAPTIVE).save(d / "palette.png")
    rot = photo_crop("astronaut", (160, 120))
    exif = Image.Exif()
    exif[0x0112] = 6
    rot.save(d / "rotated.jpg", quality=92, exif=exif)
    photo_crop("camera", (500, 300)).convert("L").save(d / "grey.jpg", quality=90)  # < 448 px: full decode
    load_photo("astronaut").resize((1100, 800)).save(d / "big.png")  # any size of PNG: full decode, then shrunk
    load_photo("chelsea").resize((900, 700)).save(d / "big.jpg", quality=90)  # drafted to 1/2 for the model
    photo_crop("rocket", (20, 12)).save(d / "tiny.jpg")
    (d / "page.jpg").write_bytes(b"<html>not an image</html>")
    names = ["cutout.png", "palette.png", "rotated.jpg", "grey.jpg", "big.png", "big.jpg", "tiny.jpg", "page.jpg"]
    return out + [d / n for n in names], {"big.jpg", "page.jpg"}


def test_rows_measured_in_the_embedding_equal_the_pixel_pass(tmp_path: Path) -> None:
    paths, not_measured = _odd_files(tmp_path / "files")
    measured = PixelsFromEmbedding()
    res = embed.embed_images(paths, on_decoded=lambda i, im: measured(str(paths[i]), im))
    assert set(measured.rows) == {str(p) for p in paths if p.name not in not_measured}
    stats, thumbs, failed = compute_pixels([str(p) for p in paths])
    assert list(failed) == [len(paths) - 1] and list(res.errors) == [len(paths) - 1]
    for p, st, th in zip(paths, stats, thumbs):
        if p.name in not_measured:
            continue
        mst, mth = measured.rows[str(p)]
        assert np.array_equal(mst, st), p.name  # the same pixels: bit for bit, not just close
        assert np.array_equal(mth, th), p.name
    plain = embed.embed_images(paths)
    np.testing.assert_allclose(res.embeddings, plain.embeddings, atol=1e-6)  # the model's input is unchanged


def test_a_scan_decodes_again_only_what_the_embedding_read_reduced(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for label in ("bird", "fruit", "mammal"):
        (root / label).mkdir(parents=True)
        for p in sorted((DEMO / label).glob("*.jpg"))[:5]:
            shutil.copy(p, root / label / p.name)
    load_photo("chelsea").resize((900, 700)).save(root / "mammal" / "big.jpg", quality=90)
    said: list[str] = []
    ws = Workspace.open(root)
    find_issues(ws, progress=lambda what, frac: said.append(what))
    assert [w for w in said if w.startswith("checking pixels")] == ["checking pixels 0/1"]  # big.jpg alone
    cached = load_arrays(ws.cache_dir, "pixels", "v2")
    files = sorted(root.rglob("*.jpg"))
    stats, thumbs, failed = compute_pixels([str(p) for p in files])
    assert not failed and len(cached["sha256"]) == len(files)
    where = {str(s): i for i, s in enumerate(cached["sha256"])}
    rows = [where[file_sha256(p)] for p in files]
    assert np.array_equal(cached["stats"][rows], np.stack(stats))
    assert np.array_equal(cached["thumbs"][rows], np.stack(thumbs))
