"""Uploads: a good zip becomes ROOT/<label>/<image>; every hostile zip is refused with a clear error and
nothing written outside a temporary folder that is removed; images dropped onto a class."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from cleaning.data.upload import UploadError, UploadLimits, add_images, extract_zip, looks_like_image, safe_parts
from cleaning.data.workspace import Workspace
from tests.zips import HOSTILE, good_members, small_jpeg, write_zip


def snapshot(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def test_good_zip_becomes_a_data_set(tmp_path: Path) -> None:
    z = write_zip(tmp_path / "pets.zip", {**good_members(3), "cat/notes.txt": b"hi", "README.md": b"x",
                                          "__MACOSX/cat/._cat_0.jpg": b"junk", "cat/.DS_Store": b"x"},
                  top="pets/")
    rep = extract_zip(z, tmp_path / "ws" / "data")
    assert rep.per_label == {"cat": 3, "coffee": 3}
    assert sorted(n for n, _ in rep.left_out) == ["README.md", "cat/notes.txt"]
    root = tmp_path / "ws" / "data"
    assert snapshot(root) == {"cat", "coffee"} | {f"{lab}/{lab}_{i}.jpg" for lab in ("cat", "coffee") for i in range(3)}
    assert (root / "cat" / "cat_1.jpg").read_bytes() == good_members(3)["cat/cat_1.jpg"]
    ws = Workspace.open(root)
    assert sorted(ws.vocab) == ["cat", "coffee"] and len(ws.items_frame()) == 6
    assert snapshot(tmp_path / "ws") == {"data", "data.cleaning"} | {f"data/{p}" for p in snapshot(root)} | {
        f"data.cleaning/{p}" for p in snapshot(tmp_path / "ws" / "data.cleaning")}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_zip_is_refused_and_nothing_is_kept(case: str, tmp_path: Path) -> None:
    build, message = HOSTILE[case]
    src = tmp_path / "in" / f"{case}.zip"
    src.parent.mkdir()
    build(src)
    work = tmp_path / "ws"
    work.mkdir()
    before_tmp = set(os.listdir("/tmp"))
    with pytest.raises(UploadError) as e:
        extract_zip(src, work / "data")
    assert message in e.value.message, e.value.message
    assert e.value.hint
    assert snapshot(work) == set()  # no half-extracted folder left
    assert not (tmp_path / "evil.jpg").exists() and not Path("/tmp/evil-absolute.jpg").exists()
    assert {n for n in set(os.listdir("/tmp")) - before_tmp if "evil" in n} == set()


def test_the_ratio_check_does_not_trust_headers(tmp_path: Path) -> None:
    """A member that claims to be small but inflates past the upload cap is stopped while streaming."""
    z = write_zip(tmp_path / "a.zip", {"cat/big.jpg": b"\xff\xd8\xff" + bytes(3 * 2**20)})
    with pytest.raises(UploadError, match="zip bomb|expands to more than"):
        extract_zip(z, tmp_path / "ws" / "data", UploadLimits(max_total_bytes=2**20, max_ratio=10**9))
    assert not (tmp_path / "ws").exists() or snapshot(tmp_path / "ws") == set()


def test_a_bad_class_name_is_refused(tmp_path: Path) -> None:
    z = write_zip(tmp_path / "a.zip", {" cat/x.jpg": small_jpeg()})
    with pytest.raises(UploadError, match="cannot be a class"):
        extract_zip(z, tmp_path / "ws" / "data")


def test_an_existing_destination_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    with pytest.raises(UploadError, match="exists"):
        extract_zip(write_zip(tmp_path / "a.zip", good_members(1)), tmp_path / "data")


def test_safe_parts() -> None:
    assert safe_parts("pets/cat/./a.jpg") == ["pets", "cat", "a.jpg"]
    assert safe_parts("cat\\a.jpg") == ["cat", "a.jpg"]
    for bad in ("/etc/passwd", "C:/x.jpg", "c:x.jpg", "a/../../b", "..", "a\x00b", "a\nb"):
        with pytest.raises(UploadError):
            safe_parts(bad)


def test_magic_bytes() -> None:
    assert looks_like_image(small_jpeg())
    assert looks_like_image(b"RIFF\x00\x00\x00\x00WEBPVP8 ")
    assert not looks_like_image(b"<html>") and not looks_like_image(b"PK\x03\x04")


def test_add_images_to_a_class(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "cat").mkdir(parents=True)
    (root / "cat" / "a.jpg").write_bytes(small_jpeg())
    files = [("a.jpg", io.BytesIO(small_jpeg("coffee"))), ("../../escape.jpg", io.BytesIO(small_jpeg())),
             ("notes.txt", io.BytesIO(b"x")), ("fake.png", io.BytesIO(b"<html>"))]
    rep = add_images(root, "cat", files)
    assert rep.per_label == {"cat": 2}
    assert sorted(p.name for p in (root / "cat").iterdir()) == ["a-2.jpg", "a.jpg", "escape.jpg"]
    assert sorted(n for n, _ in rep.left_out) == ["fake.png", "notes.txt"]
    assert not (tmp_path / "escape.jpg").exists()
    with pytest.raises(UploadError, match="cannot be a class"):
        add_images(root, "../x", [("b.jpg", io.BytesIO(small_jpeg()))])
    assert not (tmp_path / "x").exists()


def test_add_images_cap_removes_what_it_wrote(tmp_path: Path) -> None:
    root = tmp_path / "data"
    files = [(f"{i}.jpg", io.BytesIO(small_jpeg())) for i in range(3)] + [("big.jpg", io.BytesIO(
        b"\xff\xd8\xff" + bytes(2 * 2**20)))]
    with pytest.raises(UploadError):
        add_images(root, "cat", files, UploadLimits(max_total_bytes=2**20))
    assert list((root / "cat").iterdir()) == []


def test_zip_members_are_read_once_in_order(tmp_path: Path) -> None:
    z = write_zip(tmp_path / "a.zip", good_members(2))
    with zipfile.ZipFile(z) as zf:
        assert len(zf.namelist()) == 4
    rep = extract_zip(io.BytesIO(z.read_bytes()), tmp_path / "d")  # a file object, as Streamlit gives
    assert rep.n_images == 4
