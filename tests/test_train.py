"""Training with fastai on the current labels: a real (tiny, 64 px, one epoch) run through the CLI
and the library, the metrics file, the run record, the exported model, progress events and the split."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cleaning.model.train import TrainEvent, TrainSettings, classification_metrics, split_valid
from cleaning.model.trainrun import train_workspace

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "demo" / "data"
TINY = TrainSettings(epochs=1, freeze_epochs=0, size=64, batch_size=8)
QUICK = TrainSettings(mode="quick", size=64, batch_size=8)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bird/fruit/mammal, 9 real photos each, one exact duplicate."""
    root = tmp_path_factory.mktemp("train") / "data"
    for label in ("bird", "fruit", "mammal"):
        (root / label).mkdir(parents=True)
        for p in [p for p in sorted((DEMO / label).glob("*.jpg")) if "(" not in p.name][:9]:
            shutil.copy(p, root / label / p.name)
    first = sorted((root / "bird").iterdir())[0]
    shutil.copy(first, root / "bird" / "zz_copy.jpg")
    return root


@pytest.fixture(autouse=True)
def _shared_model_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANING_CACHE", str(tmp_path_factory.getbasetemp() / "model-cache"))


def test_cli_train_writes_metrics_and_records_the_run(tree: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from cleaning.cli import main
    from cleaning.data.workspace import Workspace
    from cleaning.model.runs import list_runs

    ws = Workspace.open(tree)
    frame = ws.items_frame()
    ws.store.record([frame.item_id[0]], "delete")  # deleted images are out
    ws.store.record([frame.item_id[1]], "relabel", label="fruit")  # decisions count without apply
    out = tmp_path / "m.json"
    code = main(["train", str(tree), "--epochs", "1", "--freeze-epochs", "0", "--size", "64",
                 "--batch-size", "8", "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "epoch 1/1" in printed and "validation accuracy" in printed
    m = json.loads(out.read_text())
    assert isinstance(m["accuracy"], float) and 0.0 <= m["accuracy"] <= 1.0
    assert m["arch"] == "tf_efficientnet_lite0" and isinstance(m["run_id"], str)
    assert isinstance(m["n_train"], int) and isinstance(m["n_valid"], int)
    assert m["n_train"] + m["n_valid"] == len(frame) - 1 and m["n_valid"] >= 2
    cm = np.array(m["confusion"])
    assert cm.shape == (3, 3) and cm.sum() == m["n_valid"]
    assert m["vocab"] == ["bird", "fruit", "mammal"]
    assert isinstance(m["probe_accuracy"], float) and m["accuracy"] >= m["probe_accuracy"]
    assert m["eval_set"] == ws.store.eval_set()[0] and m["status"] == "done" and m["mode"] == "full"
    model = ws.state_dir / "runs" / m["run_id"] / "model.pkl"
    assert model.exists() and (model.parent / "metrics.json").exists()

    runs = list_runs(Workspace.open(tree))
    assert [r.run_id for r in runs] == [m["run_id"]]
    rec = runs[0]
    assert rec.accuracy == pytest.approx(m["accuracy"]) and rec.dataset_version == 2
    assert rec.model_path == str(model) and rec.confusion == m["confusion"] and rec.history
    assert rec.settings["size"] == 64 and len(rec.batch_losses) >= 1


def test_library_training_reports_progress_and_exports_a_usable_model(tree: Path) -> None:
    from fastai.learner import load_learner

    from cleaning.data.workspace import Workspace

    ws = Workspace.open(tree)
    events: list[TrainEvent] = []
    record, result = train_workspace(ws, TINY, on_progress=events.append)
    batches = [e for e in events if e.kind == "batch"]
    epochs = [e for e in events if e.kind == "epoch"]
    assert batches and batches[-1].batch == batches[-1].n_batches
    assert len(epochs) == 1 and epochs[0].n_epochs == 1 and np.isfinite(epochs[0].valid_loss)
    assert len(result.batch_losses) == len(batches)
    learn = load_learner(result.model_path)
    pred, _, probs = learn.predict(str(next((tree / "fruit").iterdir())))
    assert str(pred) in {"bird", "fruit", "mammal"} and probs.shape == (3,)
    assert learn.dls.vocab == ["bird", "fruit", "mammal"]


def test_stop_request_ends_training_early(tree: Path) -> None:
    from cleaning.data.workspace import Workspace

    events: list[TrainEvent] = []
    record, result = train_workspace(Workspace.open(tree), TrainSettings(epochs=3, freeze_epochs=0, size=64,
                                                                         batch_size=4),
                                     on_progress=events.append,
                                     should_stop=lambda: sum(e.kind == "batch" for e in events) >= 1)
    assert len(result.batch_losses) == 1 and result.metrics["n_valid"] > 0
    assert record.status == "stopped" and Path(record.model_path).exists()  # the probe is kept


def test_stop_before_the_probe_records_a_stopped_run_and_leaves_no_folder(tree: Path) -> None:
    from cleaning.data.workspace import Workspace
    from cleaning.model.runs import get_run

    ws = Workspace.open(tree)
    record, result = train_workspace(ws, TINY, should_stop=lambda: True)
    assert result.stopped and result.model_path is None
    got = get_run(ws, record.run_id)
    assert got.status == "stopped" and got.model_path == "" and got.accuracy is None
    assert not (ws.state_dir / "runs" / record.run_id).exists()


def _shapes_tree(root: Path, n: int = 10) -> Path:
    """Generated images: noisy discs, squares and bars (3 classes) at random places and sizes."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    for label in ("disc", "square", "bar"):
        (root / label).mkdir(parents=True)
        for i in range(n):
            arr = rng.integers(0, 90, (48, 48, 3), dtype=np.uint8)
            im = Image.fromarray(arr)
            d = ImageDraw.Draw(im)
            r = int(rng.integers(8, 14))
            x, y = (int(v) for v in rng.integers(r, 48 - r, 2))
            colour = tuple(int(c) for c in rng.integers(150, 256, 3))
            if label == "disc":
                d.ellipse([x - r, y - r, x + r, y + r], fill=colour)
            elif label == "square":
                d.rectangle([x - r, y - r, x + r, y + r], fill=colour)
            else:
                d.rectangle([x - r, y - 3, x + r, y + 3], fill=colour)
            im.save(root / label / f"{label}_{i:02d}.png")
    return root


def test_warm_start_starts_at_the_probe_and_never_loses_to_it(tmp_path: Path) -> None:
    """Quick: the exported network reproduces the probe's probabilities (the head is the probe). Full:
    the kept model's validation accuracy is never below the probe's on the same images."""
    from fastai.learner import load_learner

    from cleaning.model.train import train_classifier

    root = _shapes_tree(tmp_path / "shapes")
    paths = sorted(str(p) for p in root.rglob("*.png"))
    labels = [Path(p).parent.name for p in paths]
    quick = train_classifier(paths, labels, tmp_path / "q", TrainSettings(mode="quick", size=32, batch_size=8))
    learn = load_learner(quick.model_path)
    dl = learn.dls.test_dl([paths[i] for i in quick.valid_index])
    probs, _ = learn.get_preds(dl=dl)
    assert np.allclose(probs.numpy(), quick.valid_probs, atol=2e-3)
    assert quick.metrics["accuracy"] == quick.metrics["probe_accuracy"] and quick.metrics["chosen"] == "probe"
    full = train_classifier(paths, labels, tmp_path / "f", TrainSettings(mode="full", epochs=2, size=32,
                                                                         batch_size=8, lr=5e-2))
    m = full.metrics
    assert m["probe_accuracy"] == pytest.approx(quick.metrics["probe_accuracy"])  # same probe, same images
    assert m["accuracy"] >= m["probe_accuracy"] and m["chosen"] in {"probe", "finetune"}
    assert m["finetune_accuracy"] is not None
    if m["chosen"] == "probe":  # the fine-tune lost (a learning rate this high usually wrecks it): probe kept
        assert m["finetune_accuracy"] <= m["probe_accuracy"]


def test_too_little_data_is_a_clear_error(tmp_path: Path) -> None:
    from cleaning.errors import CleaningError
    from cleaning.model.train import train_classifier

    with pytest.raises(CleaningError, match="too little to train on"):
        train_classifier([str(tmp_path / "a.jpg")] * 3, ["a", "b", "a"], tmp_path / "out", TINY)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 12)), min_size=6, max_size=60), st.integers(0, 9))
def test_validation_split_keeps_duplicate_groups_on_one_side(rows: list[tuple[int, int]], seed: int) -> None:
    y = np.array([r[0] for r in rows])
    groups = np.array([r[1] for r in rows])
    if len(set(groups)) < 2:
        return
    valid = split_valid(y, groups, 0.2, seed)
    for g in set(groups):
        assert len(set(valid[groups == g])) == 1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=50))
def test_confusion_matrix_sums_to_n_and_accuracy_is_its_trace(pairs: list[tuple[int, int]]) -> None:
    t = np.array([p[0] for p in pairs])
    p = np.array([p[1] for p in pairs])
    m = classification_metrics(t, p, ["a", "b", "c", "d"])
    cm = np.array(m["confusion"])
    assert cm.sum() == len(pairs)
    assert m["accuracy"] == pytest.approx(np.trace(cm) / len(pairs))
    for i, name in enumerate("abcd"):
        assert m["per_class"][name]["support"] == int((t == i).sum())
