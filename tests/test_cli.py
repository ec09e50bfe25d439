"""The CLI's exact forms, run as a user would (a real subprocess), and its one-line errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.hostile import cli, make_image_tree

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def root(tmp_path: Path) -> Path:
    make_image_tree(tmp_path / "ds", {"cat": 2, "dog": 2})
    return tmp_path / "ds"


def test_help_lists_the_commands() -> None:
    out = cli("--help")
    assert out.returncode == 0
    for cmd in ("relabel", "delete", "restore", "undo", "redo", "history", "apply", "export"):
        assert cmd in out.stdout


def test_full_round_trip(root: Path, tmp_path: Path) -> None:
    assert cli("relabel", root, "cat/img_0.jpg", "dog").returncode == 0
    assert cli("delete", root, "dog/img_1.jpg").returncode == 0
    assert (root / "dog" / "img_1.jpg").exists()  # recording moves nothing
    hist = cli("history", root)
    assert "relabel" in hist.stdout and "cat/img_0.jpg" in hist.stdout and "delete" in hist.stdout
    assert cli("apply", root).returncode == 0
    assert not (root / "dog" / "img_1.jpg").exists() and not (root / "cat" / "img_0.jpg").exists()
    assert cli("restore", root, "dog/img_1.jpg").returncode == 0
    assert cli("apply", root).returncode == 0
    assert (root / "dog" / "img_1.jpg").exists()
    assert "undid restore" in cli("undo", root).stdout
    assert "redid restore" in cli("redo", root).stdout
    out = cli("export", root, "--to", tmp_path / "out")
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(open(tmp_path / "out" / "labels.csv", encoding="utf-8")))
    assert sorted(r["label"] for r in rows) == ["cat", "dog", "dog", "dog"]


@pytest.mark.parametrize("args, words", [
    (("relabel", "{root}", "cat/missing.jpg", "dog"), "no image at"),
    (("relabel", "{root}", "cat/img_0.jpg", "../x"), "label"),
    (("relabel", "{root}", "cat/img_0.jpg", ""), "label is empty"),
    (("delete", "{tmp}/nowhere", "cat/img_0.jpg"), "does not exist"),
    (("export", "{root}", "--to", "{root}/out"), "inside the data set"),
])
def test_bad_input_exits_non_zero_with_one_line(root: Path, tmp_path: Path, args: tuple, words: str) -> None:
    out = cli(*[a.format(root=root, tmp=tmp_path) for a in args])
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], out.stderr
    assert "Traceback" not in out.stderr
