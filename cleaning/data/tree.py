"""The data set on disk: a folder-per-class tree ``ROOT/<label>/<image>``.

:func:`walk_tree` lists every file below ROOT, decodes each candidate image once (reusing earlier
results for files whose size and mtime did not change) and sorts them into usable images and files
that are not, each with a reason. It never raises for a bad file.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..cpus import n_cpus
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


#: Unicode categories refused in labels: controls, format characters (bidi overrides such as U+202E,
#: zero-width spaces and joiners, BOM), surrogates, line and paragraph separators.
FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
#: The usual file-name limit in bytes (ext4, XFS, btrfs, APFS, NTFS in UTF-16 units).
DEFAULT_NAME_MAX = 255
#: Bytes a file name inside a class folder needs beyond its label-derived part: none; but a class
#: folder name must leave room for the collision suffix ``-<id8>-NNN`` when it is used as a file stem.
COLLISION_SUFFIX_BYTES = len("-01234567-999")


def name_max(folder: str | Path | None = None) -> int:
    """The longest file name (in bytes) the file system of ``folder`` (or its nearest existing parent) allows."""
    p = Path(folder) if folder is not None else Path(".")
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return min(int(os.pathconf(p, "PC_NAME_MAX")), DEFAULT_NAME_MAX)
    except (OSError, ValueError, AttributeError):
        return DEFAULT_NAME_MAX


def validate_label(label: str, root: str | Path | None = None, existing: bool = False) -> str:
    """Return ``label`` NFC-normalised if it can be a class folder name, else raise :class:`LabelError`.

    Refuses empty names, names with slashes, ``.``/``..``, hidden names (leading dot), surrounding
    white space, control / bidi / zero-width characters, names longer than 100 characters, and names
    whose UTF-8 bytes plus a collision suffix do not fit the file system's name limit (of ``root``
    when given, else 255 bytes; ``existing``: a folder already on disk, no room for a suffix needed).
    "café" typed as e + combining accent and as é is one label.
    """
    if not isinstance(label, str) or not label:
        raise LabelError("label is empty", "give a class name such as 'cat'")
    label = unicodedata.normalize("NFC", label)
    if label != label.strip():
        raise LabelError(f"label {label!r} has leading or trailing spaces", "remove the spaces")
    if label in (".", "..") or label.startswith("."):
        raise LabelError(f"label {label!r} is hidden or a relative path", "use a plain class name")
    if any(c in label for c in "/\\\x00"):
        raise LabelError(f"label {label!r} contains a path separator", "use a plain class name without '/' or '\\'")
    bad = [c for c in label if unicodedata.category(c) in FORBIDDEN_CATEGORIES]
    if bad:
        raise LabelError(f"label {label!r} contains an invisible or control character (U+{ord(bad[0]):04X})",
                         "type the class name again without control, bidi or zero-width characters")
    if len(label) > MAX_LABEL_LENGTH:
        raise LabelError(f"label is longer than {MAX_LABEL_LENGTH} characters")
    limit = name_max(root) - (0 if existing else COLLISION_SUFFIX_BYTES)
    if len(label.encode("utf-8")) > limit:
        raise LabelError(f"label is {len(label.encode('utf-8'))} bytes long in UTF-8; folder names may have at most "
                         f"{limit}", "use a shorter class name")
    return label


def fit_name(name: str, limit: int) -> str:
    """``name`` shortened (in its stem, on a character boundary) to at most ``limit`` UTF-8 bytes."""
    if len(name.encode()) <= limit:
        return name
    stem, ext = os.path.splitext(name)
    if len(ext.encode()) > 16:
        stem, ext = name, ""
    room = max(limit - len(ext.encode()), 1)
    return stem.encode()[:room].decode("utf-8", "ignore") + ext


def free_name(folder: Path, name: str, item_id: str, taken: Iterable[Path] = ()) -> Path:
    """``folder/name`` if free, else ``stem-<id8>.ext``, else ``stem-<id8>-N.ext``.

    Every candidate fits the file system's name limit in bytes (the stem is shortened to leave room
    for the suffix); paths in ``taken`` (held by items in the store) count as used.
    """
    used = set(taken)
    limit = name_max(folder)

    def free(p: Path) -> bool:
        return p not in used and not os.path.lexists(p)

    cand = folder / fit_name(name, limit)
    if free(cand):
        return cand
    stem, ext = os.path.splitext(name)
    n = 1
    while True:
        suffix = f"-{item_id[:8]}" + (f"-{n}" if n > 1 else "") + ext
        room = limit - len(suffix.encode())
        cand = folder / (stem.encode()[:room].decode("utf-8", "ignore") + suffix)
        if free(cand):
            return cand
        n += 1


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
                label = validate_label(entry.name, existing=True)
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
                            candidates.append((rel, label, os.lstat(full)))
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

    def look(i: int) -> ImageInfo | UnreadableImage:
        try:
            return inspect_image(root / candidates[i][0])
        except UnreadableImage as e:
            return e

    def unchanged(rel: str, st: os.stat_result) -> ImageInfo | None:
        prev = known.get(rel)
        return prev[2] if prev is not None and prev[0] == st.st_size and prev[1] == st.st_mtime_ns else None

    infos = [unchanged(rel, st) for rel, _, st in candidates]
    todo = [i for i, info in enumerate(infos) if info is None]
    images: list[ScannedImage] = []
    # decoding, hashing and pHash release the GIL for most of their time: one thread per CPU, new files only
    with ThreadPoolExecutor(max_workers=n_cpus()) as pool:
        looked = (info for c in range(0, len(todo), 1024)  # a bounded number of futures at a time
                  for info in pool.map(look, todo[c:c + 1024]))
        for i, ((rel, label, st), known_info) in enumerate(zip(candidates, infos)):
            info = known_info if known_info is not None else next(looked)
            if isinstance(info, UnreadableImage):
                kind = "unsupported" if info.message.startswith(("unsupported", "not an image")) else "corrupt"
                bad.append(BadFile(rel, info.message, kind))
            else:
                images.append(ScannedImage(rel, label, st.st_size, st.st_mtime_ns, info))
            if progress:  # every file, known ones too, in order
                progress(i + 1, len(candidates))
    bad.sort(key=lambda b: b.path)
    return TreeWalk(images, bad)
