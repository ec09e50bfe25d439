"""Data in from a browser: a zip of a folder-per-class tree, or images dropped onto one class.

Everything a visitor sends is hostile until checked. :func:`extract_zip` refuses, with one clear
:class:`UploadError` and nothing written outside a fresh temporary folder (removed on failure):

* a file that is not a zip archive, an encrypted member;
* names that escape: absolute (``/etc/x``, ``C:\\x``), ``..`` components, NUL or control characters;
* symbolic links (a link member could later make a write land outside the workspace);
* zip bombs: a member or the whole archive expanding past the caps, a compression ratio past
  ``max_ratio``, or a member that produces more bytes than its header declared;
* too many files (``max_files``), class folder names that cannot be labels, no images at all.

Members that are not images (by their first bytes: JPEG, PNG, GIF, WebP, BMP, TIFF) are left out and
listed, like files outside a class folder. Images that *look* like images but are broken are kept:
the scan reports them, as it does for a data set on disk.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import unicodedata
import uuid
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..errors import CleaningError, LabelError
from .images import MAX_FILE_BYTES
from .tree import validate_label

#: File name suffixes accepted as images (the first bytes are checked as well).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".mpo"})
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")
_CHUNK = 1 << 20


class UploadError(CleaningError):
    """An upload that was refused; nothing of it was kept."""


@dataclass(frozen=True)
class UploadLimits:
    """Caps on what one upload may contain (all checked before and while extracting)."""

    max_files: int = 5000
    max_total_bytes: int = 500 * 2**20
    max_member_bytes: int = MAX_FILE_BYTES
    max_ratio: float = 100.0  # uncompressed / compressed, for members above 1 MB


@dataclass
class UploadReport:
    """What an upload wrote: images per class, and what was left out with the reason."""

    root: Path
    per_label: dict[str, int] = field(default_factory=dict)
    left_out: list[tuple[str, str]] = field(default_factory=list)
    n_bytes: int = 0

    @property
    def n_images(self) -> int:
        return sum(self.per_label.values())


def looks_like_image(head: bytes) -> bool:
    """True when the first bytes are those of an image format the app reads."""
    return head.startswith(_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def safe_parts(name: str) -> list[str]:
    """The path components of a member name, or :class:`UploadError` if it could escape its folder."""
    if "\x00" in name or any(unicodedata.category(c) == "Cc" for c in name):
        raise UploadError(f"the zip holds a file name with control characters: {name!r}",
                          "rename the file and zip the folder again")
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        raise UploadError(f"the zip holds an absolute path: {name!r}",
                          "zip the folder itself so that names start with the class folder, e.g. cat/img1.jpg")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UploadError(f"the zip holds a path that leaves its folder: {name!r}",
                          "zip the data-set folder itself; names must not contain '..'")
    return parts


def _is_junk(parts: list[str]) -> bool:
    return bool(parts) and (parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)
                            or parts[-1] in ("Thumbs.db", "desktop.ini"))


def _check_members(zf: zipfile.ZipFile, limits: UploadLimits) -> list[tuple[zipfile.ZipInfo, list[str]]]:
    """Validate every member's name, type and declared size; return the file members with their parts."""
    files = []
    total = 0
    for info in zf.infolist():
        parts = safe_parts(info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UploadError(f"the zip holds a symbolic link: {info.filename!r}",
                              "zip real files only (e.g. `zip -r data.zip data` without -y)")
        if info.is_dir() or not parts:
            continue
        if info.flag_bits & 0x1:
            raise UploadError(f"the zip is encrypted ({info.filename!r})", "zip the folder without a password")
        if _is_junk(parts):
            continue
        files.append((info, parts))
        if len(files) > limits.max_files:
            raise UploadError(f"the zip holds more than {limits.max_files:,} files",
                              "upload a smaller data set, or run the app on your own machine for large ones")
        if info.file_size > limits.max_member_bytes:
            raise UploadError(f"{info.filename!r} expands to {info.file_size / 2**20:,.0f} MB "
                              f"(limit {limits.max_member_bytes / 2**20:,.0f} MB per file)",
                              "leave very large files out of the zip")
        if info.file_size > _CHUNK and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise UploadError(f"{info.filename!r} is compressed {info.file_size / max(info.compress_size, 1):,.0f}"
                              f"-fold: a zip bomb, not photos", "upload the real images")
        total += info.file_size
        if total > limits.max_total_bytes:
            raise UploadError(f"the zip expands to more than {limits.max_total_bytes / 2**20:,.0f} MB",
                              "upload a smaller data set, or run the app on your own machine for large ones")
    return files


def _strip_top(files: list[tuple[zipfile.ZipInfo, list[str]]]) -> int:
    """1 when every file sits below one common top folder (the zipped ROOT itself), else 0."""
    if not files:
        return 0
    tops = {parts[0] for _, parts in files}
    return 1 if len(tops) == 1 and any(len(parts) >= 3 for _, parts in files) else 0


def _copy_limited(src: BinaryIO, dst: Path, cap: int, what: str) -> tuple[int, bytes]:
    """Stream ``src`` into a new file ``dst``; refuse past ``cap`` bytes. Returns (bytes, first bytes)."""
    n, head = 0, b""
    with open(dst, "xb") as out:
        while chunk := src.read(_CHUNK):
            n += len(chunk)
            if n > cap:
                raise UploadError(f"{what} expands past its declared size or the upload cap: a zip bomb",
                                  "upload the real images")
            if len(head) < 16:
                head += chunk[:16]
            out.write(chunk)
    return n, head


def extract_zip(src: str | Path | BinaryIO, dest: str | Path, limits: UploadLimits | None = None
                ) -> UploadReport:
    """Extract a zip of ``<label>/<image>`` (optionally inside one top folder) into the new folder ``dest``.

    Args:
        src: the zip (path or binary file object).
        dest: the data-set ROOT to create; it must not exist. Its parent is created.
        limits: caps on files and bytes (default :class:`UploadLimits`).
    Returns:
        UploadReport with images per class and the files left out, with reasons.
    Raises:
        UploadError: not a zip, a hostile or oversized archive, a bad class name, no images (nothing kept).
    """
    limits = limits or UploadLimits()
    dest = Path(dest)
    if dest.exists():
        raise UploadError(f"{dest} exists already", "remove the current data set first")
    try:
        zf = zipfile.ZipFile(src)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise UploadError("the file is not a zip archive",
                          "zip the data-set folder (ROOT/<label>/<image>) and upload the .zip") from e
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".upload-{uuid.uuid4().hex[:12]}"
    report = UploadReport(dest)
    try:
        with zf:
            files = _check_members(zf, limits)
            skip = _strip_top(files)
            tmp.mkdir()
            base = tmp.resolve()
            for info, parts in files:
                rel = parts[skip:]
                shown = "/".join(rel)
                if len(rel) != 2:
                    report.left_out.append((shown, "not directly in a class folder (ROOT/<label>/<image>)"))
                    continue
                label, name = rel
                try:
                    validate_label(label)
                except LabelError as e:
                    raise UploadError(f"folder {label!r} cannot be a class: {e.message}", e.hint) from e
                if os.path.splitext(name)[1].lower() not in IMAGE_SUFFIXES:
                    report.left_out.append((shown, "not an image file (by its name)"))
                    continue
                target = (tmp / label / name)
                if base not in target.resolve().parents:  # belt and braces after safe_parts
                    raise UploadError(f"the zip holds a path that leaves its folder: {info.filename!r}")
                target.parent.mkdir(exist_ok=True)
                cap = min(info.file_size, limits.max_total_bytes - report.n_bytes)
                try:
                    with zf.open(info) as f:
                        n, head = _copy_limited(f, target, cap, repr(info.filename))
                except FileExistsError as e:
                    raise UploadError(f"the zip holds {shown!r} twice", "zip each file once") from e
                except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as e:
                    raise UploadError(f"the zip is damaged at {info.filename!r}: {e}",
                                      "zip the folder again") from e
                if not looks_like_image(head):
                    target.unlink()
                    report.left_out.append((shown, "not an image (its content is not JPEG/PNG/GIF/WebP/BMP/TIFF)"))
                    continue
                report.n_bytes += n
                report.per_label[label] = report.per_label.get(label, 0) + 1
            if not report.n_images:
                raise UploadError("the zip holds no images in class folders",
                                  "zip a folder laid out as ROOT/<label>/<image>, e.g. cat/1.jpg, dog/2.jpg")
        for d in tmp.iterdir():
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # our own half-extracted folder
        raise
    report.per_label = dict(sorted(report.per_label.items()))
    return report


def add_images(root: str | Path, label: str, files: Iterable[tuple[str, BinaryIO]],
               limits: UploadLimits | None = None) -> UploadReport:
    """Write images dropped onto class ``label`` into ``ROOT/<label>/`` under collision-free names.

    Args:
        files: ``(file name, binary file object)``; only the base name is used.
    Returns:
        UploadReport (``per_label`` counts what was written; non-images are left out with a reason).
    Raises:
        UploadError: the label cannot be a class name, or the files pass the caps (what was written of
        this call is removed).
    """
    limits = limits or UploadLimits()
    try:
        validate_label(label)
    except LabelError as e:
        raise UploadError(f"{label!r} cannot be a class: {e.message}", e.hint) from e
    folder = Path(root) / label
    folder.mkdir(parents=True, exist_ok=True)
    report = UploadReport(Path(root))
    written: list[Path] = []
    try:
        for name, f in files:
            base = os.path.basename(str(name).replace("\\", "/")) or "image"
            base = "".join(c for c in base if unicodedata.category(c) != "Cc")
            if base.startswith(".") or os.path.splitext(base)[1].lower() not in IMAGE_SUFFIXES:
                report.left_out.append((base, "not an image file (by its name)"))
                continue
            if len(written) >= limits.max_files:
                raise UploadError(f"more than {limits.max_files:,} files at once", "add them in smaller groups")
            stem, ext = os.path.splitext(base)
            target, k = folder / base, 2
            while target.exists():
                target, k = folder / f"{stem}-{k}{ext}", k + 1
            cap = min(limits.max_member_bytes, limits.max_total_bytes - report.n_bytes)
            written.append(target)
            n, head = _copy_limited(f, target, cap, repr(base))
            if not looks_like_image(head):
                target.unlink()
                written.pop()
                report.left_out.append((base, "not an image (its content is not JPEG/PNG/GIF/WebP/BMP/TIFF)"))
                continue
            report.n_bytes += n
            report.per_label[label] = report.per_label.get(label, 0) + 1
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)  # only the files this call wrote
        raise
    return report
