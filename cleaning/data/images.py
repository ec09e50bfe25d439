"""Reading image files safely: inspect without trusting names, decode with limits, normalise.

Every function here takes a path to a file the user (or the web) gave us and must survive anything:
HTML saved as ``.jpg``, truncated JPEGs, zero-byte files, decompression bombs, SVG, CMYK, 16-bit,
palette-with-transparency, EXIF rotation. Failures are returned as a reason, never raised, by
:func:`inspect_image`; :func:`load_image` raises :class:`UnreadableImage` with that reason.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ..errors import CleaningError

#: Pillow formats we accept as images of a data set.
#: PPM covers the Netpbm family (PBM, PGM, PPM); the last ones are rarer formats Pillow decodes fully.
SUPPORTED_FORMATS = frozenset({"JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "MPO", "PPM", "TGA", "PCX", "SGI",
                               "ICO", "JPEG2000", "QOI"})
#: Images larger than this many pixels are refused before decoding (decompression-bomb guard).
MAX_PIXELS = 40_000_000
#: Files larger than this are refused without decoding.
MAX_FILE_BYTES = 64 * 1024 * 1024

# Pillow's own bomb check warns at MAX_IMAGE_PIXELS and raises at 2x; we check sizes ourselves first.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
ImageFile.LOAD_TRUNCATED_IMAGES = False


class UnreadableImage(CleaningError):
    """A file that is not a usable image; ``message`` is the reason."""


@dataclass(frozen=True)
class ImageInfo:
    """What a readable image is: its size after EXIF rotation, format, and content hashes."""

    width: int
    height: int
    format: str
    mode: str
    sha256: str
    phash: str
    n_frames: int = 1


def file_sha256(path: Path) -> str:
    """sha256 hex digest of a file's bytes (streamed)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sniff_kind(head: bytes) -> str | None:
    """Name what the first bytes of a file look like when Pillow cannot read it."""
    stripped = head.lstrip()[:256].lower()
    if not head:
        return "empty file (0 bytes)"
    if stripped.startswith((b"<!doctype html", b"<html")) or b"<html" in stripped:
        return "not an image: HTML page"
    if stripped.startswith(b"<?xml") or b"<svg" in stripped:
        return "unsupported format: SVG (vector graphics)"
    if head.startswith(b"%PDF"):
        return "not an image: PDF document"
    if head.startswith(b"PK\x03\x04"):
        return "not an image: ZIP archive"
    return None


def _decode(path: Path, draft_side: int | None = None) -> Image.Image:
    """Open, check size/format, fully decode the first frame; raise UnreadableImage on any failure.

    With ``draft_side``, JPEGs are decoded at a reduced scale (Pillow's ``draft``) no smaller than it.
    """
    try:
        size = path.stat().st_size
    except OSError as e:
        raise UnreadableImage(f"cannot read file: {e.strerror or e}") from e
    if size == 0:
        raise UnreadableImage("empty file (0 bytes)")
    if size > MAX_FILE_BYTES:
        raise UnreadableImage(f"file too large ({size / 2**20:.0f} MB > {MAX_FILE_BYTES // 2**20} MB)")
    with open(path, "rb") as f:
        head = f.read(512)
    kind = sniff_kind(head)
    if kind:
        raise UnreadableImage(kind)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
            fmt = im.format or "?"
            if fmt not in SUPPORTED_FORMATS:
                raise UnreadableImage(f"unsupported format: {fmt}")
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise UnreadableImage(
                    f"image too large: {w}×{h} pixels (possible decompression bomb; limit {MAX_PIXELS:,})"
                )
            if w < 1 or h < 1:
                raise UnreadableImage(f"image has no pixels ({w}×{h})")
            if fmt == "JPEG":
                im.draft("RGB", (draft_side, draft_side) if draft_side else (w, h))
            im.load()
            return im
    except UnreadableImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise UnreadableImage(f"image too large (possible decompression bomb): {e}") from e
    except UnidentifiedImageError as e:
        raise UnreadableImage("not an image: Pillow cannot identify the file") from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        msg = str(e)
        if "truncated" in msg.lower() or isinstance(e, EOFError):
            raise UnreadableImage(f"truncated or corrupt image data ({msg or 'unexpected end'})") from e
        raise UnreadableImage(f"corrupt image data ({msg})") from e


def normalise(im: Image.Image) -> Image.Image:
    """Apply EXIF rotation and convert any mode (CMYK, I;16, P+transparency, LA, RGBA) to RGB.

    Transparent areas are flattened onto white (cut-out photos look as intended).
    """
    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # noqa: BLE001 — a broken EXIF block must not make a readable image unusable
        pass
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        hi = arr.max() if arr.size else 1.0
        scale = 255.0 / (65535.0 if hi > 255 else max(hi, 1.0))
        im = Image.fromarray(np.clip(arr * scale, 0, 255).astype(np.uint8), "L")
    elif im.mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        im = Image.fromarray(((arr - lo) / max(hi - lo, 1e-9) * 255).astype(np.uint8), "L")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA"):
        rgba = im.convert("RGBA")
        bg = Image.new("RGB", rgba.size, (255, 255, 255))
        bg.paste(rgba, mask=rgba.getchannel("A"))
        return bg
    return im.convert("RGB") if im.mode != "RGB" else im


def load_image(path: str | Path, max_side: int | None = None) -> Image.Image:
    """Decode an image file into an RGB PIL image, EXIF-rotated, optionally shrunk to ``max_side``.

    Raises:
        UnreadableImage: the file is not a usable image (the message says why).
    """
    im = normalise(_decode(Path(path), draft_side=max_side))
    if max_side and max(im.size) > max_side:
        im.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    return im


def inspect_image(path: str | Path) -> ImageInfo:
    """Fully decode ``path`` and describe it.

    Returns:
        ImageInfo with size after EXIF rotation, format, sha256 of the bytes and a 64-bit pHash.
    Raises:
        UnreadableImage: the file is not a usable image (the message says why).
    """
    path = Path(path)
    im = _decode(path)
    fmt, mode = im.format or "?", im.mode
    n_frames = int(getattr(im, "n_frames", 1) or 1)
    rgb = normalise(im)
    return ImageInfo(
        width=rgb.width,
        height=rgb.height,
        format=fmt,
        mode=mode,
        sha256=file_sha256(path),
        phash=str(imagehash.phash(rgb)),
        n_frames=n_frames,
    )


def make_thumbnail(path: str | Path, size: int = 256) -> Image.Image:
    """A small RGB copy for display; a grey placeholder with no error if the file is unreadable."""
    try:
        return load_image(path, max_side=size)
    except UnreadableImage:
        return Image.new("RGB", (size, size), (200, 200, 200))
