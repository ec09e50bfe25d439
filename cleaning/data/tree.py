"""The data set on disk: a folder-per-class tree ``ROOT/<label>/<image>``.

:func:`walk_tree` lists every file below ROOT, decodes each candidate image once (reusing earlier
results for files whose size and mtime did not change) and sorts them into usable images and files
that are not, each with a reason. It never raises for a bad file.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetError, LabelError
from .images import ImageInfo, UnreadableImage, inspect_image

MAX_LABEL_LENGTH = 100


@dataclass(frozen=True)
class ScannedImage:
    """A usable image: ``path`` is relative to ROOT with forward slashes, ``label`` its folder."""

    path: str
    label: str
    size: int
    mtime_ns: int
    info: ImageInfo


@dataclass(frozen=True)
class BadFile:
    """A file below ROOT that is not a usable image, with the reason in words."""

    path: str
    reason: str
    kind: str = "corrupt"  # corrupt | unsupported | skipped


@dataclass
class TreeWalk:
    images: list[ScannedImage]
    bad: list[BadFile]

    @property
    def labels(self) -> list[str]:
        return sorted({im.label for im in self.images})


def validate_label(label: str) -> str:
    """Return ``label`` if it can be a class folder name, else raise :class:`LabelError`.

    Refuses empty names, names with slashes or NUL/control characters, ``.``/``..``, hidden names
    (leading dot), surrounding white space, and names longer than 100 characters.
    """
    if not isinstance(label, str) or not label:
        raise LabelError("label is empty", "give a class name such as 'cat'")
    if label != label.strip():
        raise LabelError(f"label {label!r} has leading or trailing spaces", "remove the spaces")
    if label in (".", "..") or label.startswith("."):
        raise LabelError(f"label {label!r} is hidden or a relative path", "use a plain class name")
    if any(c in label for c in "/\\\x00") or any(unicodedata.category(c) == "Cc" for c in label):
        raise LabelError(f"label {label!r} contains a path separator or control character",
                         "use a plain class name without '/', '\\' or control characters")
    if len(label) > MAX_LABEL_LENGTH:
        raise LabelError(f"label is longer than {MAX_LABEL_LENGTH} characters")
    return label


def check_root(root: str | Path) -> Path:
    """Resolve ROOT and check it is a readable folder; raise :class:`DatasetError` otherwise."""
    p = Path(root).expanduser()
    if not p.exists():
        raise DatasetError(f"data set folder {str(p)!r} does not exist",
                           "pass a folder laid out as ROOT/<label>/<image>")
    if not p.is_dir():
        raise DatasetError(f"{str(p)!r} is not a folder", "pass a folder laid out as ROOT/<label>/<image>")
    return p.resolve()


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("~$") or name in ("Thumbs.db", "desktop.ini")


def list_files(root: Path) -> tuple[list[tuple[str, str, os.stat_result]], list[BadFile]]:
    """Walk ROOT: return candidate image files ``(relpath, label, stat)`` and files skipped with a reason.

    Class folders are ROOT's non-hidden sub-folders; files directly in ROOT, in nested folders, hidden
    files and symbolic links are reported, not read.
    """
    candidates: list[tuple[str, str, os.stat_result]] = []
    skipped: list[BadFile] = []
    try:
        top = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as e:
        raise DatasetError(f"cannot list {str(root)!r}: {e.strerror}") from e
    for entry in top:
        if _is_hidden(entry.name):
            continue  # hidden files and folders at the top (e.g. .git, .DS_Store) are not the data set
        if entry.is_symlink():
            skipped.append(BadFile(entry.name, "symbolic link (not followed)", "skipped"))
        elif entry.is_file():
            skipped.append(BadFile(entry.name, "file directly in ROOT, not in a class folder", "skipped"))
        elif entry.is_dir():
            try:
                validate_label(entry.name)
            except LabelError as e:
                skipped.append(BadFile(entry.name + "/", f"folder name cannot be a label: {e.message}", "skipped"))
                continue
            for dirpath, dirnames, filenames in os.walk(entry.path):
                rel_dir = Path(dirpath).relative_to(root).as_posix()
                nested = rel_dir != entry.name
                dirnames.sort()
                for name in sorted(filenames):
                    rel = f"{rel_dir}/{name}"
                    full = os.path.join(dirpath, name)
                    if _is_hidden(name):
                        skipped.append(BadFile(rel, "hidden file", "skipped"))
                    elif os.path.islink(full):
                        skipped.append(BadFile(rel, "symbolic link (not followed)", "skipped"))
                    elif nested:
                        skipped.append(BadFile(rel, f"in a nested folder; move it into {entry.name}/", "skipped"))
                    else:
                        try:
                            candidates.append((rel, entry.name, os.stat(full)))
                        except OSError as e:
                            skipped.append(BadFile(rel, f"cannot read file: {e.strerror}", "corrupt"))
                dirnames[:] = [d for d in dirnames if not _is_hidden(d)]
    return candidates, skipped


def walk_tree(
    root: str | Path,
    known: Mapping[str, tuple[int, int, ImageInfo]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TreeWalk:
    """Scan ROOT and decode every candidate image.

    Args:
        root: the data-set folder.
        known: ``{relpath: (size, mtime_ns, info)}`` from an earlier scan; files whose size and mtime
            match are not decoded again.
        progress: called as ``progress(done, total)``.
    Returns:
        TreeWalk with usable images and bad files (each with a reason), both sorted by path.
    Raises:
        DatasetError: ROOT does not exist or cannot be listed.
    """
    root = check_root(root)
    known = known or {}
    candidates, bad = list_files(root)
    images: list[ScannedImage] = []
    for i, (rel, label, st) in enumerate(candidates):
        prev = known.get(rel)
        if prev is not None and prev[0] == st.st_size and prev[1] == st.st_mtime_ns:
            info = prev[2]
        else:
            try:
                info = inspect_image(root / rel)
            except UnreadableImage as e:
                kind = "unsupported" if e.message.startswith(("unsupported", "not an image")) else "corrupt"
                bad.append(BadFile(rel, e.message, kind))
                info = None
        if info is not None:
            images.append(ScannedImage(rel, label, st.st_size, st.st_mtime_ns, info))
        if progress:
            progress(i + 1, len(candidates))
    bad.sort(key=lambda b: b.path)
    return TreeWalk(images, bad)
