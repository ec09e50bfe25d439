"""The fixed evaluation set: chosen once, scored with today's labels, runs compared on identical images,
deleted images left out, old runs re-scored; McNemar's exact test; what changed between runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from cleaning.model.evalset import (
    compare_on_eval,
    load_or_choose_eval_set,
    mcnemar_exact,
    rescore_run,
    score_run,
    training_split,
)
from cleaning.model.train import TrainSettings

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "demo" / "data"
QUICK = TrainSettings(mode="quick", size=64, batch_size=8)


def _tree(root: Path, n: int = 8) -> Path:
    for label in ("bird", "fruit", "mammal"):
        (root / label).mkdir(parents=True)
        for p in [p for p in sorted((DEMO / label).glob("*.jpg")) if "(" not in p.name][:n]:
            shutil.copy(p, root / label / p.name)
    return root


@pytest.fixture(autouse=True)
def _shared_model_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANING_CACHE", str(tmp_path_factory.getbasetemp() / "model-cache"))


def test_mcnemar_exact_matches_the_binomial_test() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)  # 2 · 0.5^6
    assert mcnemar_exact(1, 9) == pytest.approx(2 * 11 / 1024)
    assert mcnemar_exact(2, 8) == mcnemar_exact(8, 2)


def test_eval_set_is_chosen_once_stratified_with_duplicate_groups_together(tmp_path: Path) -> None:
    from cleaning.data.workspace import Workspace

    root = _tree(tmp_path / "data", 10)
    first = sorted((root / "bird").iterdir())[0]
    for i in range(3):
        shutil.copy(first, root / "bird" / f"zz_copy{i}.jpg")
    ws = Workspace.open(root)
    ev = load_or_choose_eval_set(ws)
    frame = ws.items_frame()
    chosen = frame[frame["item_id"].isin(ev.item_ids)]
    assert set(chosen["label"]) == {"bird", "fruit", "mammal"}  # stratified
    assert 0.1 * len(frame) <= len(chosen) <= 0.35 * len(frame)
    copies = frame[frame["sha256"] == frame[frame["path"] == f"bird/{first.name}"]["sha256"].iloc[0]]
    assert len(set(copies["item_id"].isin(ev.item_ids))) == 1  # a duplicate group is on one side
    ws.store.record([frame.item_id[0]], "delete")
    assert load_or_choose_eval_set(ws).item_ids == ev.item_ids  # chosen once, never re-drawn
    valid, keep = training_split(frame, set(ev.item_ids))
    assert valid.sum() == len(ev.item_ids) and keep.all()


def test_a_new_copy_of_an_evaluation_image_is_kept_out_of_training(tmp_path: Path) -> None:
    from cleaning.data.workspace import Workspace

    root = _tree(tmp_path / "data", 6)
    ws = Workspace.open(root)
    ev = load_or_choose_eval_set(ws)
    frame = ws.items_frame()
    src = frame[frame["item_id"] == ev.item_ids[0]]["abs_path"].iloc[0]
    shutil.copy(src, root / "fruit" / "late_copy.jpg")
    ws.refresh()
    frame = ws.items_frame()
    valid, keep = training_split(frame, set(ev.item_ids))
    late = (frame["path"] == "fruit/late_copy.jpg").to_numpy()
    assert not valid[late].any() and not keep[late].any()


@pytest.mark.slow
def test_runs_scored_with_todays_labels_compared_on_identical_images_and_rescored(tmp_path: Path) -> None:
    from cleaning.data.workspace import Workspace
    from cleaning.model.runs import get_run
    from cleaning.model.trainrun import train_workspace

    ws = Workspace.open(_tree(tmp_path / "data"))
    a, res_a = train_workspace(ws, QUICK)
    ev = ws.store.eval_set()
    assert a.eval_id == ev[0] and res_a.metrics["eval_set"] == ev[0]
    sa = score_run(ws, a.run_id)
    assert sa.item_ids == sorted(ev[1]) and sa.left_out == 0 and sa.deleted == 0
    assert sa.accuracy == pytest.approx(a.accuracy)  # same labels as at training time

    # today's labels: relabel an evaluation image the run got right; delete another
    right = [i for i, c in zip(sa.item_ids, sa.correct) if c]
    target = right[0]
    old = sa.labels[sa.item_ids.index(target)]
    new = next(v for v in sa.vocab if v != old)
    ws.store.record([target], "relabel", label=new)
    gone = sa.item_ids[-1] if sa.item_ids[-1] != target else sa.item_ids[-2]
    ws.store.record([gone], "delete")
    b, _ = train_workspace(ws, QUICK)
    sa2, sb = score_run(ws, a.run_id), score_run(ws, b.run_id)
    assert gone not in sa2.item_ids and gone not in sb.item_ids and sa2.deleted == 1
    assert sa2.item_ids == sb.item_ids == sorted(set(ev[1]) - {gone})  # identical evaluation images
    assert sa2.labels[sa2.item_ids.index(target)] == new  # scored with today's label
    assert not sa2.correct[sa2.item_ids.index(target)]
    assert get_run(ws, b.run_id).n_valid == len(ev[1]) - 1  # the deleted image is not validated on either

    cmp = compare_on_eval(ws, a.run_id, b.run_id)
    assert cmp.item_ids == sa2.item_ids and 0.0 <= cmp.p_value <= 1.0
    assert cmp.accuracy_before == pytest.approx(sa2.accuracy) and cmp.accuracy_after == pytest.approx(sb.accuracy)
    assert cmp.only_before + cmp.only_after == int((sa2.correct != sb.correct).sum())
    assert "same" in cmp.verdict()

    # an old run without stored predictions is re-scored by predicting with its model
    with ws.store.transaction() as c:
        c.execute("DELETE FROM run_predictions WHERE run_id=?", (a.run_id,))
    assert score_run(ws, a.run_id).left_out == len(sa2.item_ids)
    again = rescore_run(ws, a.run_id)
    assert again.left_out == 0 and again.item_ids == sa2.item_ids
    assert np.array_equal(again.correct, sa2.correct)

    # restoring the deleted image brings it back into the score (its prediction was stored at training)
    ws.store.record([gone], "restore")
    assert gone in score_run(ws, b.run_id).item_ids
