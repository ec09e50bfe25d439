"""Test helpers that write awkward files: hostile inputs for the image checks and small photo trees.

- ``make_hostile_files(folder)``: one file per hostile case, returns ``{filename: expected_kind}`` with
  kind ``"bad"`` (must be reported as not usable, with a reason), ``"ok"`` (must load and be normalised
  to RGB; ``HOSTILE_OK_SIZES`` gives the expected size after EXIF rotation) or ``"skipped"`` (hidden).
- ``make_image_tree(root, {"cat": 5, ...})``: ``root/<label>/img_<i>.jpg`` crops of real photos from
  ``skimage.data``, a different photo per class so the classes are separable.
- ``make_odd_files(folder)``: rewrites the committed corpus in ``tests/data/odd/``
  (``python tests/hostile.py``).

Everything is deterministic and small; nothing touches the network.
"""

from __future__ import annotations

import functools
import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

# skimage.data photos that ship inside the scikit-image wheel (no download), most colourful first
PHOTOS = (
    "chelsea",
    "coffee",
    "astronaut",
    "rocket",
    "retina",
    "immunohistochemistry",
    "hubble_deep_field",
    "brick",
    "grass",
    "gravel",
    "camera",
    "coins",
    "moon",
    "clock",
)
BOMB_SIDE = 20000  # declared width and height of the decompression bomb (400 Mpx)
ORIENTATION = 0x0112  # EXIF tag

# expected (width, height) after loading + EXIF rotation, for the "ok" hostile files
HOSTILE_OK_SIZES: dict[str, tuple[int, int]] = {
    "animated.gif": (48, 32),
    "cmyk.jpg": (48, 32),
    "grey16.png": (48, 32),
    "palette_transparent.png": (48, 32),
    "rgba.png": (48, 32),
    "exif_rotated.jpg": (20, 40),  # stored 40x20 with orientation 6 (rotate 90° clockwise)
    "ünï cödé photo.png": (48, 32),
}
ODD_FILES: dict[str, str] = {"truncated.jpg": "bad", "cmyk.jpg": "ok", "exif_rotated.jpg": "ok"}


@functools.cache
def load_photo(name: str) -> Image.Image:
    """An RGB photo from ``skimage.data`` by name (e.g. ``"chelsea"``)."""
    import skimage.data

    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


def photo_crop(name: str, size: tuple[int, int], rng: np.random.Generator | None = None) -> Image.Image:
    """A ``size`` (w, h) RGB crop of a real photo; random position and scale if ``rng`` is given."""
    im = load_photo(name)
    aspect = size[0] / size[1]
    if rng is None:
        frac, fx, fy = 0.8, 0.5, 0.5
    else:
        frac, fx, fy = rng.uniform(0.35, 0.8), rng.uniform(), rng.uniform()
    h = int(min(im.height, im.width / aspect) * frac)
    w = int(h * aspect)
    x, y = int((im.width - w) * fx), int((im.height - h) * fy)
    return im.crop((x, y, x + w, y + h)).resize(size, Image.Resampling.LANCZOS)


def jpeg_bytes(im: Image.Image, quality: int = 90, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality, **kwargs)
    return buf.getvalue()


def png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def bomb_png(side: int = BOMB_SIDE) -> bytes:
    """A valid 1-bit greyscale PNG of ``side``x``side`` white-on-black zeros, built in small chunks.

    20000x20000 decodes to 400 Mpx (Pillow refuses it as a decompression bomb) but the file is ~50 KB
    and building it needs only a few MB.
    """
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # bit depth 1, greyscale
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed pixels
    comp = zlib.compressobj(9)
    block, n_blocks = 500, side // 500
    idat = b"".join(comp.compress(row * block) for _ in range(n_blocks))
    idat += comp.compress(row * (side - block * n_blocks)) + comp.flush()
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def exif_rotated_jpeg(upright: tuple[int, int]) -> bytes:
    """A JPEG stored on its side, as a camera does, with EXIF orientation 6 (rotate 90° clockwise).

    The pixels are stored ``upright[1]`` wide and ``upright[0]`` high; after applying the tag the photo
    is upright again at ``upright`` (w, h).
    """
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    stored = photo_crop("chelsea", upright).transpose(Image.Transpose.ROTATE_90)  # counter-clockwise
    return jpeg_bytes(stored, exif=exif.tobytes())


def truncated_jpeg(size: tuple[int, int], keep: float = 0.5) -> bytes:
    data = jpeg_bytes(photo_crop("chelsea", size))
    return data[: int(len(data) * keep)]


def make_hostile_files(folder: Path) -> dict[str, str]:
    """Write one file per hostile case into ``folder``; return ``{filename: "bad" | "ok" | "skipped"}``."""
    folder.mkdir(parents=True, exist_ok=True)
    size = (48, 32)
    cat = photo_crop("chelsea", size)
    kinds: dict[str, str] = {}

    def put(name: str, data: bytes, kind: str) -> None:
        (folder / name).write_bytes(data)
        kinds[name] = kind

    def put_image(name: str, im: Image.Image, kind: str = "ok", **save: object) -> None:
        buf = io.BytesIO()
        im.save(buf, format=save.pop("format", None) or Image.registered_extensions()[Path(name).suffix], **save)
        put(name, buf.getvalue(), kind)

    # not usable
    put(
        "html_page.jpg",
        b"<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head><body><h1>Forbidden</h1></body></html>\n",
        "bad",
    )
    put("truncated.jpg", truncated_jpeg(size), "bad")
    put("empty.jpg", b"", "bad")
    put("bomb.png", bomb_png(), "bad")
    put(
        "vector.svg",
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40">'
        b'<circle cx="20" cy="20" r="15" fill="red"/></svg>\n',
        "bad",
    )
    put("notes.txt", b"cat photos to download later\n", "bad")
    put(
        "document.pdf",
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
        "bad",
    )
    # usable after normalisation
    frames = [cat, photo_crop("coffee", size), photo_crop("astronaut", size)]
    put_image("animated.gif", frames[0], save_all=True, append_images=frames[1:], duration=100, loop=0)
    put_image("cmyk.jpg", cat.convert("CMYK"), quality=90)
    grey = np.asarray(cat.convert("L"), dtype=np.uint16) * 257
    put_image("grey16.png", Image.fromarray(grey))  # mode I;16, saved as 16-bit greyscale
    palette = cat.convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    put_image("palette_transparent.png", palette, transparency=0)
    rgba = cat.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(size))
    put_image("rgba.png", rgba)
    put("exif_rotated.jpg", exif_rotated_jpeg((20, 40)), "ok")  # stored 40x20
    put_image("ünï cödé photo.png", cat)
    # hidden
    put(".DS_Store", b"\x00\x00\x00\x01Bud1" + b"\x00" * 54, "skipped")
    return kinds


def make_image_tree(root: Path, classes: dict[str, int], size: int = 64, seed: int = 0) -> dict[str, list[Path]]:
    """Write ``root/<label>/img_<i>.jpg`` (i from 0): ``size``-px random crops of real photos.

    Each class crops a different ``skimage.data`` photo (in ``PHOTOS`` order), so the classes are
    visually separable. Returns ``{label: [paths]}``. Raises ValueError for more classes than photos.
    """
    if len(classes) > len(PHOTOS):
        raise ValueError(f"at most {len(PHOTOS)} classes (one source photo each), got {len(classes)}")
    rng = np.random.default_rng(seed)
    written: dict[str, list[Path]] = {}
    for photo, (label, n) in zip(PHOTOS, classes.items(), strict=False):
        (root / label).mkdir(parents=True, exist_ok=True)
        written[label] = []
        for i in range(n):
            path = root / label / f"img_{i}.jpg"
            path.write_bytes(jpeg_bytes(photo_crop(photo, (size, size), rng)))
            written[label].append(path)
    return written


def make_odd_files(folder: Path) -> dict[str, str]:
    """Write the committed odd-file corpus (each < 20 KB); return ``{filename: kind}`` like ``ODD_FILES``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "truncated.jpg").write_bytes(truncated_jpeg((120, 80), keep=0.6))
    (folder / "cmyk.jpg").write_bytes(jpeg_bytes(photo_crop("chelsea", (120, 80)).convert("CMYK"), quality=85))
    (folder / "exif_rotated.jpg").write_bytes(exif_rotated_jpeg((80, 120)))  # stored 120x80
    return dict(ODD_FILES)


if __name__ == "__main__":
    print(make_odd_files(Path(__file__).resolve().parent / "data" / "odd"))


def cli(*args: object, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``python -m cleaning ARGS`` in a real subprocess from the repository (output captured as text)."""
    return subprocess.run([sys.executable, "-m", "cleaning", *map(str, args)], cwd=Path(__file__).resolve().parent.parent,
                          capture_output=True, text=True, timeout=timeout)

