"""The CLI contract of issue 12, run as a user would (real subprocesses): ``keep``, look-alike class names
need ``--new-class``, a missing ``--state-dir`` needs ``--create``, and a closed pipe is quiet."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cleaning.data.labels import label_key, similar_label
from tests.hostile import cli, make_image_tree

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def root(tmp_path: Path) -> Path:
    make_image_tree(tmp_path / "ds", {"fruit": 2, "teddy bear": 2})
    return tmp_path / "ds"


def one_error_line(out: subprocess.CompletedProcess[str], *words: str) -> None:
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), out.stderr
    assert all(w in lines[0] for w in words), lines[0]


def test_keep_records_looks_fine_shown_as_keep(root: Path) -> None:
    out = cli("keep", root, "fruit/img_0.jpg", "fruit/img_1.jpg")
    assert out.returncode == 0 and "recorded keep for 2 image(s)" in out.stdout, out.stderr
    hist = cli("history", root)
    lines = [ln for ln in hist.stdout.splitlines() if "fruit/img_" in ln]
    assert len(lines) == 2 and all(" keep " in ln and " cli " in ln for ln in lines)
    again = cli("keep", root, "fruit/img_0.jpg")
    assert again.returncode == 0 and "already marked as fine" in again.stdout


@pytest.mark.parametrize("new", ["Fruit", "FRUIT", " fruit", "fru it", "Teddy_Bear", "teddy-bear", "ＦＲＵＩＴ"])
def test_relabel_to_a_look_alike_class_needs_new_class(root: Path, new: str) -> None:
    image = "fruit/img_0.jpg" if "bear" in new.lower() else "teddy bear/img_0.jpg"
    out = cli("relabel", root, image, new)
    one_error_line(out, "already exists", "--new-class")
    assert "no decisions yet" in cli("history", root).stdout  # nothing recorded


def test_relabel_look_alike_with_new_class_and_exact_names_work(root: Path) -> None:
    assert cli("relabel", root, "teddy bear/img_0.jpg", "fruit").returncode == 0  # exact: a plain relabel
    out = cli("relabel", root, "teddy bear/img_1.jpg", "Fruit", "--new-class")
    assert out.returncode == 0, out.stderr
    assert cli("relabel", root, "fruit/img_0.jpg", "vegetable").returncode == 0  # a new, unlike name
    info = json.loads(cli("info", root, "--json").stdout)
    assert info["per_label"] == {"Fruit": 1, "fruit": 2, "vegetable": 1}


def test_label_key_and_similar_label() -> None:
    assert label_key("Teddy_Bear") == label_key("teddy bear") == label_key("TEDDY-BEAR") == "teddybear"
    assert label_key("cafe\u0301") != label_key("cafe") and label_key("café") == label_key("cafe\u0301")
    assert similar_label("Fruit", ["fruit", "bird"]) == "fruit"
    assert similar_label("fruit", ["fruit", "Fruit"]) is None  # exactly a class: no question
    assert similar_label("mammal", ["fruit"]) is None


def test_missing_state_dir_is_an_error_unless_create(root: Path, tmp_path: Path) -> None:
    typo = tmp_path / "stat"
    one_error_line(cli("history", root, "--state-dir", typo), "does not exist", "--create")
    assert not typo.exists()
    one_error_line(cli("keep", root, "fruit/img_0.jpg", "--state-dir", typo), "does not exist")
    out = cli("keep", root, "fruit/img_0.jpg", "--state-dir", typo, "--create")
    assert out.returncode == 0, out.stderr
    assert (typo / "store.sqlite").exists()
    assert " keep " in cli("history", root, "--state-dir", typo).stdout  # exists now: no --create needed


def test_history_json_into_a_closed_pipe_is_quiet(root: Path) -> None:
    for i in range(2):
        cli("keep", root, f"fruit/img_{i}.jpg")
        cli("undo", root)
        cli("redo", root)
    p = subprocess.run(f"{sys.executable} -m cleaning history '{root}' --json | head -c 100", shell=True,
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert len(p.stdout) == 100 and p.stdout.startswith("[")
    assert p.stderr == ""


def test_closed_pipe_even_for_long_output(root: Path, tmp_path: Path) -> None:
    make_image_tree(tmp_path / "big", {"a": 60})
    paths = [f"a/img_{i}.jpg" for i in range(60)]
    assert cli("keep", tmp_path / "big", *paths).returncode == 0
    p = subprocess.run(f"{sys.executable} -m cleaning history '{tmp_path / 'big'}' | head -n 1", shell=True,
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.stdout.count("\n") == 1 and p.stderr == ""
