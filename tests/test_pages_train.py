"""The Train page with AppTest: runs shown and compared, the Try-the-model box, and training in the
background: it goes on after switching page, and Stop (in the sidebar) records a stopped run."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from cleaning.model.train import TrainSettings

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "demo" / "data"

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _shared_model_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANING_CACHE", str(tmp_path_factory.getbasetemp() / "model-cache"))


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bird/fruit/mammal, 8 real photos each, with two quick runs (a relabel in between)."""
    from cleaning.data.workspace import Workspace
    from cleaning.model.trainrun import train_workspace

    root = tmp_path_factory.mktemp("pages-train") / "data"
    for label in ("bird", "fruit", "mammal"):
        (root / label).mkdir(parents=True)
        for p in [p for p in sorted((DEMO / label).glob("*.jpg")) if "(" not in p.name][:8]:
            shutil.copy(p, root / label / p.name)
    ws = Workspace.open(root)
    quick = TrainSettings(mode="quick", size=64, batch_size=8)
    train_workspace(ws, quick)
    ws.store.record([ws.items_frame().item_id[0]], "relabel", label="fruit")
    train_workspace(ws, quick)
    return root


def _app(tree: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN202
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CLEANING_ROOT", str(tree))
    at = AppTest.from_file(str(REPO / "dashboard.py"), default_timeout=300).run()
    at.switch_page("pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_train_page_shows_runs_compares_them_on_the_evaluation_set(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(tree, monkeypatch)
    labels = [m.label for m in at.metric]
    assert "Accuracy (at training)" in labels and "Linear probe" in labels and "Accuracy today" in labels
    assert "Decisions that differ" in labels
    differ = next(m for m in at.metric if m.label == "Decisions that differ")
    assert differ.value == "1"
    verdicts = [e.value for e in list(at.info) + list(at.success) if "images" in str(e.value)]
    assert any("On the same" in v for v in verdicts), verdicts


def test_try_the_model_box_shows_top_3(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(tree, monkeypatch)
    pick = at.selectbox(key="try_pick")
    pick.set_value(pick.options[0]).run()
    assert not at.exception, [e.value for e in at.exception]
    [df] = [d.value for d in at.dataframe if list(d.value.columns) == ["label", "probability"]]
    assert list(df.columns) == ["label", "probability"] and len(df) == 3
    assert set(df["label"]) == {"bird", "fruit", "mammal"}
    assert list(df["probability"]) == sorted(df["probability"], reverse=True)
    assert abs(float(df["probability"].sum()) - 1.0) < 0.01


def test_training_goes_on_after_switching_page_and_stop_records_a_stopped_run(
        tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cleaning.data.workspace import Workspace
    from cleaning.model.runs import list_runs
    from pages._training import train_jobs

    n_before = len(list_runs(Workspace.open(tree)))
    at = _app(tree, monkeypatch)
    at.radio(key="train_mode").set_value("full")
    at.select_slider(key="train_size").set_value(64)
    at.select_slider(key="train_bs").set_value(8)
    at.number_input(key="train_epochs").set_value(50)
    at.button(key="FormSubmitter:train_settings-Train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    job = train_jobs()[str(tree)]
    at.switch_page("pages/overview.py").run()  # leave the Train page: the run goes on
    assert not at.exception, [e.value for e in at.exception]
    deadline = time.time() + 240
    while time.time() < deadline and not job.snapshot()["losses"]:
        time.sleep(0.5)
    assert job.active and job.snapshot()["losses"], job.snapshot()["text"]  # fine-tuning batches after the switch
    at.run()
    at.button(key="train_stop_sidebar").click().run()  # the sidebar's Stop, on another page
    while time.time() < deadline and job.active:
        time.sleep(0.5)
    assert job.state == "stopped", job.snapshot()
    runs = list_runs(Workspace.open(tree))
    assert len(runs) == n_before + 1 and runs[0].status == "stopped" and runs[0].mode == "full"
    assert Path(runs[0].model_path).exists()  # the best model so far (at least the probe) is kept
    for d in (tree.parent / "data.cleaning" / "runs").iterdir():
        assert any(d.iterdir()), f"empty run folder {d}"
