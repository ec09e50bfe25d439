"""Scanning a folder-per-class tree: every file is either an image or listed with a reason."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cleaning.data.tree import check_root, validate_label, walk_tree
from cleaning.errors import DatasetError, LabelError
from tests.hostile import make_hostile_files, make_image_tree


def test_scan_lists_images_and_bad_files_with_reasons(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    make_image_tree(root, {"cat": 3, "dog": 2})
    kinds = make_hostile_files(root / "dog")
    (root / "loose.jpg").write_bytes((root / "cat" / "img_0.jpg").read_bytes())
    (root / "cat" / "nested").mkdir()
    (root / "cat" / "nested" / "deep.jpg").write_bytes(b"x")
    (root / ".hidden_dir").mkdir()
    (root / ".hidden_dir" / "x.jpg").write_bytes(b"x")
    os.symlink(root / "cat" / "img_0.jpg", root / "cat" / "link.jpg")
    res = walk_tree(root)
    paths = {im.path for im in res.images}
    ok = {f"dog/{n}" for n, k in kinds.items() if k == "ok"}
    assert ok <= paths
    assert {"cat/img_0.jpg", "cat/img_1.jpg", "cat/img_2.jpg"} <= paths
    bad = {b.path: b for b in res.bad}
    for n, k in kinds.items():
        if k == "bad":
            assert f"dog/{n}" in bad and bad[f"dog/{n}"].reason, n
        if k == "skipped":
            assert bad[f"dog/{n}"].kind == "skipped"
    assert "not in a class folder" in bad["loose.jpg"].reason
    assert "nested" in bad["cat/nested/deep.jpg"].reason
    assert "symbolic link" in bad["cat/link.jpg"].reason
    assert not any(p.startswith(".hidden_dir") for p in paths | set(bad))
    assert all(im.label == im.path.split("/")[0] for im in res.images)
    assert len(paths) + len(bad) == len(paths | set(bad))  # nothing listed twice


def test_unicode_and_space_names(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    make_image_tree(root, {"chat noir": 1})
    (root / "chat noir" / "img_0.jpg").rename(root / "chat noir" / "fëlis é 01.jpg")
    res = walk_tree(root)
    assert [im.path for im in res.images] == ["chat noir/fëlis é 01.jpg"]


def test_rescan_reuses_known_results(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    make_image_tree(root, {"cat": 2})
    first = walk_tree(root)
    known = {im.path: (im.size, im.mtime_ns, im.info) for im in first.images}
    (root / "cat" / "img_0.jpg").write_bytes((root / "cat" / "img_1.jpg").read_bytes())
    second = walk_tree(root, known)
    by = {im.path: im.info.sha256 for im in second.images}
    assert by["cat/img_0.jpg"] == by["cat/img_1.jpg"]  # changed file was read again


def test_rescan_decodes_only_new_or_changed_files_and_reports_progress_to_the_end(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cleaning.data.tree as tree

    root = tmp_path / "ds"
    make_image_tree(root, {"cat": 3, "dog": 3})
    first = walk_tree(root)
    known = {im.path: (im.size, im.mtime_ns, im.info) for im in first.images}
    make_image_tree(root, {"bird": 2})
    decoded: list[str] = []
    real = tree.inspect_image
    monkeypatch.setattr(tree, "inspect_image", lambda p: decoded.append(Path(p).parent.name) or real(p))
    seen: list[tuple[int, int]] = []
    second = walk_tree(root, known, progress=lambda d, n: seen.append((d, n)))
    assert sorted(decoded) == ["bird", "bird"]  # the six known files are not decoded again
    assert [im.path for im in second.images] == sorted(im.path for im in second.images)
    assert len(second.images) == 8 and seen[-1] == (8, 8) and [d for d, _ in seen] == sorted(d for d, _ in seen)


@pytest.mark.parametrize("bad", ["", "..", ".", "../x", "a/b", "a\\b", ".hidden", " cat", "x\x00y", "a\nb", "x" * 101])
def test_bad_labels_refused(bad: str) -> None:
    with pytest.raises(LabelError):
        validate_label(bad)


@pytest.mark.parametrize("good", ["cat", "grizzly bear", "chat é", "猫", "3-d"])
def test_good_labels(good: str) -> None:
    assert validate_label(good) == good


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        check_root(tmp_path / "nope")
    (tmp_path / "f").write_text("x")
    with pytest.raises(DatasetError, match="not a folder"):
        check_root(tmp_path / "f")
