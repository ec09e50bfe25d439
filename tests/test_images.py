"""Reading hostile files: every bad one gets a clear reason, every odd-but-valid one is normalised."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from cleaning.data.images import UnreadableImage, inspect_image, load_image, make_thumbnail
from tests.hostile import HOSTILE_OK_SIZES, make_hostile_files

ODD = Path(__file__).parent / "data" / "odd"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("hostile")
    return folder, make_hostile_files(folder)


def test_bad_files_get_a_specific_reason(hostile: tuple[Path, dict[str, str]]) -> None:
    folder, kinds = hostile
    expected_words = {"html_page.jpg": "HTML", "truncated.jpg": "truncated", "empty.jpg": "empty",
                      "bomb.png": "decompression bomb", "vector.svg": "SVG", "notes.txt": "not an image",
                      "document.pdf": "PDF"}
    bad = [n for n, k in kinds.items() if k == "bad"]
    assert set(expected_words) <= set(bad)
    for name in bad:
        with pytest.raises(UnreadableImage) as e:
            inspect_image(folder / name)
        if name in expected_words:
            assert expected_words[name].lower() in e.value.message.lower(), (name, e.value.message)


def test_odd_but_valid_files_are_normalised_to_rgb(hostile: tuple[Path, dict[str, str]]) -> None:
    folder, kinds = hostile
    for name, (w, h) in HOSTILE_OK_SIZES.items():
        assert kinds[name] == "ok"
        im = load_image(folder / name)
        assert im.mode == "RGB", name
        assert im.size == (w, h), name
        info = inspect_image(folder / name)
        assert (info.width, info.height) == (w, h)
        assert len(info.sha256) == 64 and len(info.phash) == 16


def test_transparent_areas_become_white(hostile: tuple[Path, dict[str, str]]) -> None:
    folder, _ = hostile
    im = load_image(folder / "rgba.png")
    src = Image.open(folder / "rgba.png").convert("RGBA")
    alpha = src.getchannel("A")
    transparent = [(x, y) for x in range(src.width) for y in range(src.height) if alpha.getpixel((x, y)) < 16]
    assert transparent, "fixture should contain (nearly) transparent pixels"
    assert all(min(im.getpixel(p)) >= 230 for p in transparent[:50])


def test_bomb_is_refused_without_decoding(hostile: tuple[Path, dict[str, str]]) -> None:
    import resource

    folder, _ = hostile
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(UnreadableImage, match="decompression bomb.*400000000"):
        inspect_image(folder / "bomb.png")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # < 200 MB more


def test_committed_odd_files() -> None:
    with pytest.raises(UnreadableImage, match="truncated|corrupt"):
        inspect_image(ODD / "truncated.jpg")
    cmyk = load_image(ODD / "cmyk.jpg")
    assert Image.open(ODD / "cmyk.jpg").mode == "CMYK" and cmyk.mode == "RGB"
    stored = Image.open(ODD / "exif_rotated.jpg").size
    assert load_image(ODD / "exif_rotated.jpg").size == (stored[1], stored[0])


def test_load_image_max_side_and_thumbnail_placeholder(tmp_path: Path) -> None:
    big = Image.new("RGB", (1200, 600), (10, 200, 30))
    big.save(tmp_path / "big.jpg")
    small = load_image(tmp_path / "big.jpg", max_side=200)
    assert max(small.size) == 200 and small.size[0] == 2 * small.size[1]
    (tmp_path / "junk.jpg").write_bytes(b"junk")
    assert make_thumbnail(tmp_path / "junk.jpg", 64).size == (64, 64)
