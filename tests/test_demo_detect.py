"""The scan on the bundled demo, checked against its manifest (issue 9): the wrong-class images are found with
the right suggestion, the off-topic images are found, and an off-topic image is never offered a class as
its primary action (no suggested label on an outlier row; the Issues page makes Delete primary)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cleaning.data.demo import demo_manifest, prepare_demo
from cleaning.data.workspace import Workspace
from cleaning.review import analysis
from cleaning.review.queue import build_queue
from tests.hostile import jpeg_bytes, photo_crop


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    root = prepare_demo(tmp_path_factory.mktemp("demo_detect"))
    ws = Workspace.open(root)
    issues = analysis.find_issues(ws)
    return issues, build_queue(issues, ws.items_frame()), demo_manifest()


def _planted(manifest: dict, problem: str) -> list[dict]:
    return [p for p in manifest["planted"] if p["problem"] == problem]


def test_every_wrong_class_image_is_found_with_the_right_suggestion(scanned: tuple) -> None:
    issues, _, manifest = scanned
    wrong = _planted(manifest, "wrong_label")
    assert len(wrong) == 8
    label = issues[issues["issue"] == "label"].set_index("path")
    for p in wrong:
        assert p["path"] in label.index, p
        assert label.loc[p["path"], "suggested_label"] == p["true_label"], p


def test_every_off_topic_image_is_flagged(scanned: tuple) -> None:
    issues, _, manifest = scanned
    off = _planted(manifest, "off_topic")
    assert len(off) == 5
    flagged = set(issues.loc[issues["issue"].isin(["outlier", "label"]), "path"])
    assert {p["path"] for p in off} <= flagged


def test_outlier_rows_never_suggest_a_class(scanned: tuple) -> None:
    issues, queue, manifest = scanned
    out = issues[issues["issue"] == "outlier"]
    assert len(out) >= 2 and (out["suggested_label"] == "").all()
    found = {p["path"] for p in _planted(manifest, "off_topic")} & set(out["path"])
    assert len(found) >= 2  # rocket, coffee: alone in the data set and unlike their class
    entries = queue[queue["path"].isin(found)]
    assert entries["suggested_label"].isna().all()


def test_no_off_topic_image_is_offered_a_class(scanned: tuple) -> None:
    """Every planted off-topic image gets an ``outlier`` row and no class. The Earth (under *flower*) and the Moon
    (under *mammal*) look round and on white like the fruit to the embedding (the classifier: *fruit* 0.98 / 0.94),
    so the label check would move them to *fruit*; the backbone's own ImageNet head sees no fruit in them (a gong,
    a nautilus: fruit mass ≈ 0.01–0.03, where most of the demo's fruit reach 0.05), so the split evidence is
    said and no class is offered (:mod:`cleaning.detect.semantic`)."""
    issues, _, manifest = scanned
    off = {p["path"] for p in _planted(manifest, "off_topic")}
    rows = issues[issues["path"].isin(off)]
    assert off <= set(rows.loc[rows["issue"] == "outlier", "path"])
    assert (rows["suggested_label"] == "").all()
    for path in ("flower/flower_0017.jpg", "mammal/mammal_0005.jpg"):  # the Earth, the Moon
        reason = rows.loc[(rows["path"] == path) & (rows["issue"] == "outlier"), "reason"].iloc[0]
        assert "*fruit*" in reason and "ImageNet head does not see a *fruit*" in reason, reason


def test_every_planted_copy_is_paired_with_its_original(scanned: tuple) -> None:
    """Exact and near copies of the demo, each paired with the file it copies (either may be the one kept). The
    brightened apricot (``fruit_0014``, highlights clipped: pixels 0.978 alike) sits among round fruit on white whose
    pixels are 0.86–0.90 alike to it: it fails the pixel distinctiveness ratio by a hair and is found because it
    stands out in content (:func:`cleaning.detect.duplicates.compute_duplicate_groups`)."""
    issues, _, manifest = scanned
    dup = issues[issues["issue"].isin(["duplicate", "near_duplicate"])]
    found = {frozenset((a, b)) for a, b in zip(dup["path"], dup["related_path"])}
    planted = [p for p in manifest["planted"] if p["problem"] in ("duplicate", "near_duplicate")]
    assert len(planted) == 7
    for p in planted:
        assert frozenset((p["path"], p["duplicate_of"])) in found, p
    assert len(found) == len(planted)  # and nothing else


def test_an_image_with_split_label_evidence_that_fits_no_class_is_off_topic(tmp_path: Path) -> None:
    """The demo plus two crops of one unrelated photo (the cameraman) filed under *flower* and *fruit*. Each
    crop has the other as a close neighbour, so neither is lonely. The label check flags the *flower* one,
    but the evidence is split: the classifier says *fruit* (0.80), only 1 of its 10 neighbours is a fruit,
    and the blend gives *fruit* 0.54, below the bar of a clear suggestion (``SUGGEST_SURE``). It is as unlike
    its class as an off-topic image (``z ≥ Z_FLAG``), so it gets an ``outlier`` row with no suggested class
    and the split evidence in the reason — not "Accept → fruit" (the code before the split-evidence rule
    reported it as a label error → fruit)."""
    root = tmp_path / "data"
    shutil.copytree(prepare_demo(tmp_path / "demo"), root, ignore=shutil.ignore_patterns(".cleaning*"))
    rng = np.random.default_rng(7)
    for j, label in enumerate(("flower", "fruit")):
        (root / label / f"zz_camera_{j}.jpg").write_bytes(jpeg_bytes(photo_crop("camera", (192, 192), rng)))
    issues = analysis.find_issues(Workspace.open(root))
    rows = issues[issues["path"] == "flower/zz_camera_0.jpg"]
    assert rows["issue"].tolist() == ["outlier"], rows[["issue", "suggested_label", "reason"]].to_dict("records")
    assert rows["suggested_label"].tolist() == [""]
    reason = rows["reason"].iloc[0]
    assert "split evidence" in reason and "*fruit*" in reason and not reason.startswith("alone")
    assert not issues.loc[issues["path"].str.contains("zz_camera"), "suggested_label"].astype(bool).any()


SPACE = Path(__file__).parent / "data" / "space"


def test_a_sun_photo_query_junk_is_one_group_on_the_demo(tmp_path: Path) -> None:
    """The demo plus the junk a ``"{label} sun photo"`` query brings: eight photos of the sun, planets and a moon filed
    round-robin under the four classes (with the demo's own Earth under *flower* and Moon under *mammal*, ten).

    The planets are round and on white, like the demo's fruit: to the embedding they fit *fruit* about as well as
    fruit fit each other (median ``fit`` z −0.33), so before the junk rule let a far-apart group fit another class
    (``junk.Z_FAR``: ``apart`` z 2.96 here) no group was found and four of them were label errors with a class
    suggested. And the two planets filed under *fruit* took the head's cover of *fruit* under its bar (0.79), so
    the lemon filed under *mammal* and the mandarine under *flower*, which sit beside the planets, were swept into the
    group, until the junk groups as found stopped counting as class members there (:func:`cleaning.detect.run.join_checks`).
    Not yet found: the sun (among the yellow flowers to the embedding: a label row suggesting *flower*) and Saturn."""
    root = tmp_path / "data"
    shutil.copytree(prepare_demo(tmp_path / "demo"), root, ignore=shutil.ignore_patterns(".cleaning*"))
    classes = ["bird", "flower", "fruit", "mammal"]
    space = {"flower/flower_0017.jpg", "mammal/mammal_0005.jpg"}  # the demo's Earth and Moon
    for k, src in enumerate(sorted(SPACE.glob("*.jpg"))):
        folder = classes[k % 4]
        name = f"{folder}/{folder}_{len(list((root / folder).glob('*.jpg'))) + 1:04d}.jpg"
        (root / name).write_bytes(src.read_bytes())
        space.add(name)
    issues = analysis.find_issues(Workspace.open(root))
    out = issues[issues["issue"] == "outlier"]
    groups = out[out["group"] != ""].groupby("group")["path"].apply(set)
    assert len(groups) == 1
    members = groups.iloc[0]
    assert len(members & space) >= 8 and len(members - space) <= 1, members
    assert (out["suggested_label"] == "").all()
    label = issues[issues["issue"] == "label"].set_index("path")["suggested_label"]
    assert label.get("mammal/mammal_0013.jpg") == "fruit" and label.get("flower/flower_0012.jpg") == "fruit"
    wrong = {p["path"] for p in _planted(demo_manifest(), "wrong_label")}
    assert wrong <= set(label.index)  # every planted wrong label is still found as one
