"""Autofix: the pure plan from an issue table, one undoable batch, and the CLI (dry run records nothing)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cleaning.data.workspace import Workspace
from cleaning.review.autofix import LEVELS, plan_autofix, record_autofix
from tests.hostile import cli, make_image_tree

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    make_image_tree(tmp_path / "ds", {"cat": 6, "dog": 6})
    return Workspace.open(tmp_path / "ds", refresh=True)


def table(ws: Workspace) -> pd.DataFrame:
    i = {p: ws.item_id_for_path(p) for p in ws.items_frame()["path"]}
    rows = [  # item, issue, severity, suggested, related
        ("cat/img_0.jpg", "outlier", 0.95, None, None),
        ("cat/img_1.jpg", "outlier", 0.5, None, None),
        ("cat/img_2.jpg", "label", 0.97, "dog", None),
        ("cat/img_3.jpg", "label", 0.8, "dog", None),
        ("cat/img_4.jpg", "label", 0.3, None, None),  # no suggestion: never relabelled
        ("dog/img_0.jpg", "duplicate", 1.0, None, "dog/img_1.jpg"),
        ("dog/img_2.jpg", "near_duplicate", 0.96, None, "cat/img_5.jpg"),  # different classes: left alone
        ("dog/img_3.jpg", "near_duplicate", 0.5, None, "dog/img_4.jpg"),
        ("cat/img_0.jpg", "label", 0.99, "dog", None),  # also off-topic: the delete wins
    ]
    return pd.DataFrame([{"item_id": i[p], "path": p, "label": p.split("/")[0], "issue": t, "severity": s,
                          "suggested_label": g, "related_item_id": i.get(r) if r else None, "related_path": r,
                          "reason": "planted"} for p, t, s, g, r in rows])


def named(ws: Workspace, plan) -> dict[str, list]:  # noqa: ANN001
    paths = dict(zip(ws.items_frame()["item_id"], ws.items_frame()["path"]))
    return {s.kind: [(paths[i], a, lab) for i, a, lab in s.decisions] for s in plan.steps}


def test_levels_touch_more_as_they_get_bolder(ws: Workspace) -> None:
    t, items = table(ws), ws.items_frame()
    cautious = named(ws, plan_autofix(t, items, "cautious"))
    assert cautious == {"offtopic": [("cat/img_0.jpg", "delete", None)],
                        "relabel": [("cat/img_2.jpg", "relabel", "dog")],
                        "copies": [("dog/img_0.jpg", "delete", None)]}
    balanced = named(ws, plan_autofix(t, items, "balanced"))
    assert balanced["relabel"] == [("cat/img_2.jpg", "relabel", "dog"), ("cat/img_3.jpg", "relabel", "dog")]
    bold = named(ws, plan_autofix(t, items, "bold"))
    assert bold["offtopic"] == [("cat/img_0.jpg", "delete", None), ("cat/img_1.jpg", "delete", None)]
    assert ("dog/img_3.jpg", "delete", None) in bold["copies"]
    assert all(p != "dog/img_2.jpg" for p, _, _ in bold["copies"])  # copies in two classes: a person decides
    ns = [plan_autofix(t, items, lv).n_images for lv in LEVELS]
    assert ns == sorted(ns) and ns[0] < ns[-1]
    with pytest.raises(ValueError):
        plan_autofix(t, items, "reckless")


def test_one_batch_one_undo_and_reviewed_items_are_skipped(ws: Workspace) -> None:
    t = table(ws)
    done = ws.item_id_for_path("cat/img_2.jpg")
    ws.store.record([done], "keep")  # marked fine: autofix leaves it alone
    plan = plan_autofix(t, ws.items_frame(), "balanced")
    assert done not in {i for s in plan.steps for i, _, _ in s.decisions}
    before = ws.store.current()
    batch = record_autofix(ws.store, plan)
    hist = [d for d in ws.store.history() if d.batch == batch]
    assert len(hist) == plan.n_images and {d.action for d in hist} == {"delete", "relabel"}
    assert all(d.note.startswith("autofix balanced:") for d in hist)
    ws.store.undo()
    assert ws.store.current() == before


def test_cli_dry_run_prints_the_plan_and_records_nothing(tmp_path: Path) -> None:
    from cleaning.data.demo import prepare_demo

    root = prepare_demo(tmp_path / "demo")
    n0 = Workspace.open(root).store.decision_count()
    out = cli("autofix", root, "--level", "cautious", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "autofix plan (cautious):" in out.stdout and "dry run: nothing recorded" in out.stdout
    assert "relabel confident label errors:" in out.stdout and "expected precision" in out.stdout
    assert Workspace.open(root).store.decision_count() == n0
    out = cli("autofix", root, "--level", "cautious")
    assert out.returncode == 0 and "one `python -m cleaning undo" in out.stdout, out.stderr
    ws = Workspace.open(root)
    assert ws.store.decision_count() > n0
    assert len({d.batch for d in ws.store.history() if d.state == "active"}) == 1
    assert cli("undo", root).returncode == 0
    assert Workspace.open(root).store.decision_count() == n0


def test_expected_precision_is_per_level_from_the_committed_benchmark(ws: Workspace) -> None:
    import json

    from cleaning.review.autofix import KIND_NAMES, PRECISION_FILE, expected_precision, precision_text

    measured = json.loads(PRECISION_FILE.read_text(encoding="utf-8"))["expected"]
    assert set(measured) == set(LEVELS)  # bench/bench_autofix.py measured every level and kind
    for level in LEVELS:
        assert set(measured[level]) == set(KIND_NAMES)
        for kind in KIND_NAMES:
            p, src = expected_precision(level, kind)
            assert p == measured[level][kind][0] and "planned" in src
            assert p is None or 0.0 <= p <= 1.0
        plan = plan_autofix(table(ws), ws.items_frame(), level)
        text = "\n".join(plan.lines())
        for kind in KIND_NAMES:  # the CLI prints the number measured at this level, not one for all levels
            assert f"{KIND_NAMES[kind]}: " in text and f"expected precision at {level} {precision_text(level, kind)}" in text
    assert expected_precision("bold", "no-such-kind") == (None, "not measured: run `python bench/bench_autofix.py`")


def test_copies_by_kind_of_copy_exact_ones_only_when_cautious(ws: Workspace) -> None:
    """A pair's severity says whether its copies disagree, not how sure the match is: the dial gates copies by
    kind (byte-identical at cautious, near copies from balanced on)."""
    t, items = table(ws), ws.items_frame()
    cautious = named(ws, plan_autofix(t, items, "cautious"))["copies"]
    balanced = named(ws, plan_autofix(t, items, "balanced"))["copies"]
    assert cautious == [("dog/img_0.jpg", "delete", None)]
    assert ("dog/img_3.jpg", "delete", None) in balanced and ("dog/img_0.jpg", "delete", None) in balanced
    plan = plan_autofix(t, items, "balanced")
    step = next(s for s in plan.steps if s.kind == "copies")
    paths = dict(zip(items["item_id"], items["path"]))
    assert {paths[d]: paths[k] for d, k in step.keeps.items()} == {"dog/img_0.jpg": "dog/img_1.jpg",
                                                                   "dog/img_3.jpg": "dog/img_4.jpg"}
