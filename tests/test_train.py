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

from cleaning.model.train import TrainEvent, TrainSettings, classification_metrics, split_valid, train_workspace

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "demo" / "data"
TINY = TrainSettings(epochs=1, freeze_epochs=0, size=64, batch_size=8)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bird/fruit, 9 real photos each, one exact duplicate."""
    root = tmp_path_factory.mktemp("train") / "data"
    for label in ("bird", "fruit"):
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
    assert cm.shape == (2, 2) and cm.sum() == m["n_valid"]
    assert m["vocab"] == ["bird", "fruit"]
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
    assert str(pred) in {"bird", "fruit"} and probs.shape == (2,)
    assert learn.dls.vocab == ["bird", "fruit"]


def test_stop_request_ends_training_early(tree: Path) -> None:
    from cleaning.data.workspace import Workspace

    events: list[TrainEvent] = []
    _, result = train_workspace(Workspace.open(tree), TrainSettings(epochs=3, freeze_epochs=0, size=64, batch_size=4),
                                on_progress=events.append, should_stop=lambda: len(events) >= 1)
    assert len(result.batch_losses) == 1 and result.metrics["n_valid"] > 0


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


def test_train_page_shows_runs_compares_them_and_trains(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs after the tests above (module order): the tree already has runs to show and compare."""
    from streamlit.testing.v1 import AppTest

    from cleaning.data.workspace import Workspace
    from cleaning.model.runs import list_runs

    n_before = len(list_runs(Workspace.open(tree)))
    assert n_before >= 2
    monkeypatch.setenv("CLEANING_ROOT", str(tree))
    at = AppTest.from_file(str(REPO / "dashboard.py"), default_timeout=300).run()
    at.switch_page("pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    labels = [m.label for m in at.metric]
    assert "Validation accuracy" in labels and "Decisions in between" in labels
    at.select_slider(key="train_size").set_value(64)
    at.select_slider(key="train_bs").set_value(8)
    at.number_input(key="train_freeze").set_value(0)
    at.number_input(key="train_epochs").set_value(1)
    at.button(key="FormSubmitter:train_settings-Train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(list_runs(Workspace.open(tree))) == n_before + 1
