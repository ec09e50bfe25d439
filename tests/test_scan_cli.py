"""``python -m cleaning scan``: the exact CSV contract, planted problems found, hostile files survived,
and the cached queue the pages read (reviewed and deleted images left out)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from cleaning.cli import main
from tests.hostile import jpeg_bytes, make_hostile_files, make_image_tree, photo_crop

ISSUES = ["path", "label", "issue", "severity", "suggested_label", "related_path", "reason", "group"]
SCORES = ["path", "label", "predicted_label", "label_issue_score", "outlier_score"]
KINDS = {"label", "outlier", "duplicate", "near_duplicate", "corrupt", "low_quality"}


@pytest.fixture(autouse=True)
def _shared_model_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANING_CACHE", str(tmp_path_factory.getbasetemp() / "model-cache"))


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, pd.DataFrame, dict[str, str]]:
    import os

    os.environ.setdefault("CLEANING_CACHE", str(tmp_path_factory.getbasetemp() / "model-cache"))
    base = tmp_path_factory.mktemp("scan")
    root = base / "data"
    make_image_tree(root, {"cat": 12, "coffee": 12, "astronaut": 12}, size=64, seed=5)
    (root / "coffee" / "stray_cat.jpg").write_bytes(jpeg_bytes(photo_crop("chelsea", (64, 64))))
    (root / "cat" / "img_1 copy.jpg").write_bytes((root / "cat" / "img_1.jpg").read_bytes())
    Image.new("RGB", (64, 64), (255, 255, 255)).save(root / "astronaut" / "placeholder.png")
    hostile = make_hostile_files(root / "cat")
    out, scores = base / "out" / "issues.csv", base / "out" / "scores.csv"
    assert main(["scan", str(root), "--out", str(out), "--scores", str(scores), "--quiet"]) == 0
    return (root, pd.read_csv(out, keep_default_na=False), pd.read_csv(scores, keep_default_na=False),
            hostile)


def test_issues_csv_contract(scanned: tuple) -> None:
    root, issues, _, _ = scanned
    assert list(issues.columns) == ISSUES
    assert set(issues["issue"]) <= KINDS
    sev = issues["severity"].astype(float)
    assert sev.between(0, 1).all() and sev.is_monotonic_decreasing
    for p in issues["path"]:
        assert "\\" not in p and not p.startswith("/") and (root / p).exists(), p
    assert (issues["path"].str.split("/").str[0] == issues["label"]).all()
    assert (issues.loc[issues["issue"] == "label", "suggested_label"] != "").all()
    dup = issues[issues["issue"].isin(["duplicate", "near_duplicate"])]
    assert (dup["related_path"] != "").all() and all((root / p).exists() for p in dup["related_path"])
    assert (issues["reason"] != "").all()
    out = issues[issues["issue"] == "outlier"]
    assert (out["suggested_label"] == "").all()  # off-topic is not a label error: no class suggested
    assert (issues.loc[issues["issue"] != "outlier", "group"] == "").all()  # only junk-group members have one


def test_scores_csv_contract(scanned: tuple) -> None:
    root, _, scores, hostile = scanned
    assert list(scores.columns) == SCORES
    for c in ("label_issue_score", "outlier_score"):
        assert scores[c].astype(float).between(0, 1).all()
    ok = {f"cat/{n}" for n, k in hostile.items() if k == "ok"}
    bad = {f"cat/{n}" for n, k in hostile.items() if k == "bad"}
    assert ok <= set(scores["path"]) and not bad & set(scores["path"])
    assert len(scores) == 36 + 3 + len(ok)
    assert set(scores["predicted_label"]) <= {"cat", "coffee", "astronaut"}


def test_planted_problems_and_every_hostile_file(scanned: tuple) -> None:
    _, issues, _, hostile = scanned
    by = {(r.path, r.issue): r for r in issues.itertuples()}
    assert by[("coffee/stray_cat.jpg", "label")].suggested_label == "cat"
    copy = by.get(("cat/img_1 copy.jpg", "duplicate"))
    assert copy is not None and copy.related_path == "cat/img_1.jpg"
    assert ("astronaut/placeholder.png", "low_quality") in by
    for name, kind in hostile.items():
        if kind == "bad":
            assert (f"cat/{name}", "corrupt") in by, name
    assert not any(p.endswith(".DS_Store") for p in issues["path"])


def test_pages_queue_leaves_out_reviewed_and_deleted_images(scanned: tuple) -> None:
    from cleaning.data.workspace import Workspace
    from cleaning.review.analysis import compute_scores, find_issues, load_or_find_issues

    root = scanned[0]
    ws = Workspace.open(root)
    assert list(ws.cache_dir.glob("scan-*.npz"))  # the CLI's results are reused, not recomputed
    q = load_or_find_issues(ws)
    stray, copy = ws.item_id_for_path("coffee/stray_cat.jpg"), ws.item_id_for_path("cat/img_1 copy.jpg")
    assert {stray, copy} <= set(q["item_id"])
    ws.store.record([stray], "keep")
    ws.store.record([copy], "delete")
    after = load_or_find_issues(ws)
    assert stray not in set(after["item_id"]) and copy not in set(after["item_id"])
    assert stray in set(find_issues(ws, include_reviewed=True)["item_id"])
    assert copy not in set(compute_scores(ws)["item_id"])
    ws.store.undo()
    ws.store.undo()
    assert {stray, copy} <= set(load_or_find_issues(ws)["item_id"])


def test_scan_to_stdout_and_a_missing_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(tmp_path / "nope")]) == 2
    assert "error:" in capsys.readouterr().err
    root = tmp_path / "one"
    make_image_tree(root, {"cat": 3}, size=32)
    assert main(["scan", str(root), "--quiet"]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert head == ",".join(ISSUES)
