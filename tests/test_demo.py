"""The bundled demo data set: the manifest tells the truth about the files, and the script reproduces them."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import numpy as np
import PIL
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "demo"
DATA = DEMO / "data"
SCRIPT = REPO / "scripts" / "make_demo.py"
PROBLEMS = {"wrong_label", "off_topic", "duplicate", "near_duplicate", "corrupt", "blank"}


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((DEMO / "manifest.json").read_text(encoding="utf-8"))


def files_on_disk() -> list[str]:
    return sorted(p.relative_to(DATA).as_posix() for p in DATA.rglob("*") if p.is_file())


def test_classes_and_counts(manifest: dict) -> None:
    folders = sorted(p.name for p in DATA.iterdir() if p.is_dir())
    assert manifest["classes"] == folders == ["bird", "flower", "fruit", "mammal"]
    counts = Counter(path.split("/")[0] for path in files_on_disk())
    assert dict(counts) == manifest["counts"]
    assert all(20 <= n <= 40 for n in counts.values())
    assert 120 <= sum(counts.values()) <= 150


def test_small_enough() -> None:
    total = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert total < 3_000_000


def test_every_planted_path_exists(manifest: dict) -> None:
    on_disk = set(files_on_disk())
    for p in manifest["planted"]:
        assert p["problem"] in PROBLEMS
        assert p["path"] in on_disk
        if p["duplicate_of"] is not None:
            assert p["duplicate_of"] in on_disk
        if p["true_label"] is not None:
            assert p["true_label"] in manifest["classes"]
    kinds = Counter(p["problem"] for p in manifest["planted"])
    assert kinds == {"wrong_label": 8, "off_topic": 5, "duplicate": 3, "near_duplicate": 4, "corrupt": 1, "blank": 1}


def test_wrong_labels_sit_in_another_folder(manifest: dict) -> None:
    for p in manifest["planted"]:
        if p["problem"] == "wrong_label":
            assert p["path"].split("/")[0] != p["true_label"]


def test_duplicates_are_byte_identical(manifest: dict) -> None:
    dups = [p for p in manifest["planted"] if p["problem"] == "duplicate"]
    for p in dups:
        assert (DATA / p["path"]).read_bytes() == (DATA / p["duplicate_of"]).read_bytes()
    assert any(p["path"].split("/")[0] != p["duplicate_of"].split("/")[0] for p in dups)


def test_near_duplicates_differ_in_bytes_but_not_much_in_look(manifest: dict) -> None:
    for p in manifest["planted"]:
        if p["problem"] == "near_duplicate":
            a, b = DATA / p["path"], DATA / p["duplicate_of"]
            assert a.read_bytes() != b.read_bytes()
            thumbs = [np.asarray(Image.open(x).convert("L").resize((16, 16)), dtype=float) for x in (a, b)]
            assert np.abs(thumbs[0] - thumbs[1]).mean() < 40


def test_corrupt_file_fails_to_load(manifest: dict) -> None:
    (corrupt,) = [p["path"] for p in manifest["planted"] if p["problem"] == "corrupt"]
    with pytest.raises(OSError), Image.open(DATA / corrupt) as im:
        im.load()


def test_blank_is_uniform(manifest: dict) -> None:
    (blank,) = [p["path"] for p in manifest["planted"] if p["problem"] == "blank"]
    assert np.asarray(Image.open(DATA / blank).convert("RGB"), dtype=float).std() < 1.0


def test_all_other_files_are_readable_rgb_jpegs(manifest: dict) -> None:
    corrupt = {p["path"] for p in manifest["planted"] if p["problem"] == "corrupt"}
    for rel in files_on_disk():
        if rel in corrupt:
            continue
        with Image.open(DATA / rel) as im:
            im.load()
            assert im.format == "JPEG" and im.mode == "RGB"
            assert max(im.size) <= 256


def test_awkward_names_are_there() -> None:
    names = files_on_disk()
    assert any(" " in n for n in names)
    assert any(not n.isascii() for n in names)


def test_provenance_and_origin_cover_every_file(manifest: dict) -> None:
    names = files_on_disk()
    assert sorted(manifest["provenance"]) == names
    assert sorted(manifest["origin"]) == names
    for rec in manifest["provenance"].values():
        assert set(rec) == {"query", "url"}
        assert rec["url"].startswith("https://") and ".example." in rec["url"]
    bad = [manifest["provenance"][p["path"]]["query"] for p in manifest["planted"] if p["problem"] == "off_topic"]
    assert sum(q.endswith("wallpaper") for q in bad) > len(bad) / 2


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_demo", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def test_script_reproduces_committed_bytes(manifest: dict) -> None:
    if not Path("/usr/share/tuxpaint/stamps").is_dir():
        pytest.skip("Debian package tuxpaint-stamps-default is not installed")
    if importlib.util.find_spec("skimage") is None:
        pytest.skip("scikit-image is not installed")
    if manifest["generator"]["pillow"] != PIL.__version__:
        pytest.skip(f"JPEG bytes depend on the Pillow build: demo made with {manifest['generator']['pillow']}")
    make_demo = load_script()
    files = make_demo.build()
    assert make_demo.check(DEMO, files) == []
    assert make_demo.main(["--check"]) == 0
    # the comparison is by content (sha256), so one changed byte is noticed
    files["manifest.json"] += b" "
    assert make_demo.check(DEMO, files) == ["different bytes in manifest.json"]
