"""Run records in the workspace's SQLite file and the before/after comparison of two runs."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from cleaning.model.runs import RunNotFound, compare_runs, get_run, list_runs, record_run
from cleaning.model.train import classification_metrics

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def ws(tmp_path: Path):  # noqa: ANN201
    from cleaning.data.workspace import Workspace

    root = tmp_path / "data"
    for label in ("bird", "fruit"):
        (root / label).mkdir(parents=True)
        for p in sorted((REPO / "demo" / "data" / label).glob("*.jpg"))[:3]:
            shutil.copy(p, root / label / p.name)
    return Workspace.open(root)


def _metrics(true: list[int], pred: list[int], vocab: list[str]) -> dict:
    m = classification_metrics(np.array(true), np.array(pred), vocab)
    m.update(n_train=10, n_valid=len(true), arch="tf_efficientnet_lite0", valid_loss=0.5, seconds=1.0,
             settings={"size": 64, "epochs": 1, "freeze_epochs": 0})
    return m


def _tables(ws) -> set[str]:  # noqa: ANN001
    return {r[0] for r in ws.store.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_runs_table_is_part_of_the_store(ws) -> None:  # noqa: ANN001
    assert "runs" in _tables(ws)
    assert list_runs(ws) == []
    with sqlite3.connect(ws.state_dir / "store.sqlite") as other:  # it is in the workspace file
        assert other.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


def test_record_and_read_back(ws) -> None:  # noqa: ANN001
    m = _metrics([0, 0, 1, 1], [0, 1, 1, 1], ["bird", "fruit"])
    rec = record_run(ws, "r1", m, "/x/model.pkl", history=[{"epoch": 0, "valid_loss": 0.4}], batch_losses=[1.0, 0.5])
    got = get_run(ws, "r1")
    assert got == rec
    assert got.accuracy == pytest.approx(0.75) and got.confusion == [[1, 1], [0, 2]]
    assert got.per_class["bird"]["recall"] == pytest.approx(0.5) and got.per_class["fruit"]["precision"] == \
        pytest.approx(2 / 3)
    assert got.dataset_version == 0 and got.settings["size"] == 64 and got.batch_losses == [1.0, 0.5]
    with pytest.raises(RunNotFound):
        get_run(ws, "nope")


def test_compare_runs_before_and_after_cleaning(ws) -> None:  # noqa: ANN001
    ids = list(ws.items_frame()["item_id"])
    record_run(ws, "before", _metrics([0, 0, 1, 1], [1, 1, 1, 1], ["bird", "fruit"]), "/m1",
               created_at="2026-01-01T00:00:00.000+00:00")
    ws.store.record([ids[0]], "relabel", label="fruit", note="was a fruit")
    ws.store.record([ids[1]], "delete")
    after = record_run(ws, "after", _metrics([0, 0, 1, 2], [0, 0, 1, 2], ["bird", "fruit", "mammal"]), "/m2",
                       created_at="2026-01-02T00:00:00.000+00:00")
    ws.store.record([ids[2]], "delete")  # after both runs: not "between"
    assert after.dataset_version == 2

    cmp = compare_runs(ws, "before", "after")
    assert cmp.accuracy_delta == pytest.approx(1.0 - 0.5)
    assert cmp.vocab == ["bird", "fruit", "mammal"]
    assert cmp.confusion_before.shape == (3, 3) and cmp.confusion_before[:2, :2].tolist() == [[0, 2], [0, 2]]
    assert cmp.confusion_diff.tolist() == (cmp.confusion_after - cmp.confusion_before).tolist()
    assert cmp.confusion_diff[0].tolist() == [2, -2, 0]
    assert cmp.recall_delta["bird"] == pytest.approx(1.0) and cmp.recall_delta["mammal"] is None
    assert [(d.action, d.item_id) for d in cmp.decisions] == [("relabel", ids[0]), ("delete", ids[1])]
    assert [r.run_id for r in list_runs(ws)] == ["after", "before"]
    assert [d.seq for d in compare_runs(ws, "after", "before").decisions] == [d.seq for d in cmp.decisions]
    with pytest.raises(RunNotFound):
        compare_runs(ws, "before", "missing")


def test_a_store_with_an_old_runs_table_is_migrated(tmp_path) -> None:  # noqa: ANN001
    """A version-2 store holding the runs table as earlier code created it on first use (fewer columns,
    one run in it) opens at version 3 with the run intact and the new columns filled with defaults."""
    from cleaning.data.store import SCHEMA_VERSION, Store
    from cleaning.data.workspace import Workspace

    root = tmp_path / "data"
    (root / "a").mkdir(parents=True)
    ws0 = Workspace.open(root)
    path = ws0.state_dir / "store.sqlite"
    ws0.store.close()
    with sqlite3.connect(path) as c:
        c.execute("DROP TABLE runs")
        c.execute("CREATE TABLE runs(run_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, "
                  "dataset_version INTEGER NOT NULL, last_seq INTEGER NOT NULL, arch TEXT NOT NULL, "
                  "settings TEXT NOT NULL, accuracy REAL, valid_loss REAL, n_train INTEGER NOT NULL, "
                  "n_valid INTEGER NOT NULL, vocab TEXT NOT NULL, per_class TEXT NOT NULL, "
                  "confusion TEXT NOT NULL, history TEXT NOT NULL DEFAULT '[]', "
                  "model_path TEXT NOT NULL, seconds REAL)")
        c.execute("INSERT INTO runs VALUES('old', '2026-01-01T00:00:00', 0, 0, 'tf_efficientnet_lite0', '{}', 0.75, "
                  "0.5, 10, 4, '[\"a\", \"b\"]', '{}', '[[2, 0], [1, 1]]', '[]', '/m.pkl', 3.0)")
        c.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
    assert Store(path).query("SELECT value FROM meta WHERE key='schema_version'")[0][0] == str(SCHEMA_VERSION) == "3"
    ws = Workspace.open(root)
    run = get_run(ws, "old")
    assert run.accuracy == 0.75 and run.vocab == ["a", "b"] and run.batch_losses == [] and run.status == "done"
    record_run(ws, "r", _metrics([0, 1], [0, 1], ["a", "b"]), "/m", batch_losses=[0.3])
    assert get_run(ws, "r").batch_losses == [0.3] and [r.run_id for r in list_runs(ws)][-1] == "old"


def test_comparison_counts_only_decisions_active_at_one_of_the_runs(ws) -> None:  # noqa: ANN001
    ids = list(ws.items_frame()["item_id"])
    ws.store.record([ids[0]], "delete")  # active at both runs: not a change
    record_run(ws, "a", _metrics([0, 1], [0, 1], ["bird", "fruit"]), "/m1", created_at="2026-01-01T00:00:00.000+00:00")
    ws.store.record([ids[1]], "relabel", label="fruit")
    ws.store.record([ids[2]], "delete")
    ws.store.undo()  # the delete of ids[2] is undone before run b: it counts nowhere
    ws.store.record([ids[3]], "delete")  # discards the undone batch
    record_run(ws, "b", _metrics([0, 1], [0, 1], ["bird", "fruit"]), "/m2", created_at="2026-01-02T00:00:00.000+00:00")
    ws.store.undo()  # after run b: does not change what either run saw
    cmp = compare_runs(ws, "a", "b")
    assert [(d.action, d.item_id) for d in cmp.decisions] == [("relabel", ids[1]), ("delete", ids[3])]
    assert cmp.undone == []
    assert get_run(ws, "b").active_seqs == [1, 2, 4]
