"""Test helpers that build zips, good and hostile, for the upload tests (library, AppTest and browser).

``HOSTILE`` maps a case name to a builder ``(path) -> None`` and a fragment of the error message the
upload must show; every builder writes a zip whose extraction must be refused with nothing kept.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

from tests.hostile import jpeg_bytes, photo_crop


def small_jpeg(photo: str = "chelsea", size: int = 48) -> bytes:
    return jpeg_bytes(photo_crop(photo, (size, size)))


def write_zip(path: Path, members: dict[str, bytes], top: str = "") -> Path:
    """A zip of ``members`` (name → bytes), optionally below one top folder."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(f"{top}{name}", data)
    return path


def good_members(per_class: int = 4) -> dict[str, bytes]:
    """Two classes of real-photo crops: ``cat/cat_<i>.jpg`` and ``coffee/coffee_<i>.jpg``."""
    out = {}
    for label, photo in (("cat", "chelsea"), ("coffee", "coffee")):
        for i in range(per_class):
            out[f"{label}/{label}_{i}.jpg"] = jpeg_bytes(photo_crop(photo, (48 + i, 48)))
    return out


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _traversal(path: Path) -> None:
    write_zip(path, {**good_members(1), "cat/../../evil.jpg": small_jpeg()})


def _absolute(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("cat/ok.jpg", small_jpeg())
        info = zipfile.ZipInfo("/tmp/evil-absolute.jpg")
        zf.writestr(info, small_jpeg())


def _symlink(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("cat/ok.jpg", small_jpeg())
        info = zipfile.ZipInfo("cat/link.jpg")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")


def _bomb(path: Path) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("cat/ok.jpg", small_jpeg())
        zf.writestr("cat/bomb.jpg", b"\xff\xd8\xff" + bytes(40 * 2**20))  # 40 MB of zeros in ~40 KB


def _many(path: Path) -> None:
    jpg = b"\xff\xd8\xff\xe0"  # tiny: the count is what must be refused
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for i in range(10_000):
            zf.writestr(f"cat/{i}.jpg", jpg)


def _not_zip(path: Path) -> None:
    path.write_bytes(b"<html><body>not a zip</body></html>")


def _no_images(path: Path) -> None:
    write_zip(path, {"cat/readme.txt": b"hello", "cat/fake.jpg": b"MZ\x90\x00 an exe", "dog/page.jpg": b"<html>"})


HOSTILE: dict[str, tuple[Callable[[Path], None], str]] = {
    "traversal": (_traversal, "leaves its folder"),
    "absolute": (_absolute, "absolute path"),
    "symlink": (_symlink, "symbolic link"),
    "bomb": (_bomb, "zip bomb"),
    "many_files": (_many, "more than 5,000 files"),
    "not_zip": (_not_zip, "not a zip archive"),
    "no_images": (_no_images, "no images"),
}
