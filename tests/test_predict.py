"""Predictions from exported learners: `predict --image` (the contract), your own fastai model (a tiny one
built here) with the same classes, differing names (mapped and shown) and a class mismatch (a clear error),
and its confident disagreements as an extra opinion in the scan."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cleaning.model.predict import ClassMismatch, ForeignPredictions, map_classes, model_opinion_rows, save_foreign

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "demo" / "data"
CLASSES = ("bird", "fruit", "mammal")


def _tree(root: Path, names: tuple[str, ...] = CLASSES, n: int = 6) -> Path:
    for label, src in zip(names, CLASSES):
        (root / label).mkdir(parents=True)
        for p in [p for p in sorted((DEMO / src).glob("*.jpg")) if "(" not in p.name][:n]:
            shutil.copy(p, root / label / p.name)
    return root


def _tiny_learner(root: Path, out: Path) -> Path:
    """A real fastai learner (a 2-layer CNN, untrained) on ``root``'s folders, exported to ``out``."""
    from fastai.vision.all import (
        CategoryBlock,
        DataBlock,
        ImageBlock,
        Learner,
        RandomSplitter,
        Resize,
        get_image_files,
        nn,
        parent_label,
    )

    dls = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label,
                    splitter=RandomSplitter(0.25, seed=0), item_tfms=Resize(32)).dataloaders(root, bs=4, num_workers=0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, dls.c))
    out.parent.mkdir(parents=True, exist_ok=True)
    learn = Learner(dls, model, path=out.parent)
    learn.export(out.name)
    return out


@pytest.fixture(autouse=True)
def _shared_model_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANING_CACHE", str(tmp_path_factory.getbasetemp() / "model-cache"))


def test_class_mapping_exact_normalised_explicit_and_mismatch() -> None:
    assert map_classes(["bird", "fruit"], ["bird", "fruit"]) == {"bird": "bird", "fruit": "fruit"}
    assert map_classes(["Bird", "ripe_fruit"], ["bird", "ripe fruit"]) == {"Bird": "bird", "ripe_fruit": "ripe fruit"}
    assert map_classes(["b", "f"], ["bird", "fruit"], {"b": "bird", "f": "fruit"}) == {"b": "bird", "f": "fruit"}
    with pytest.raises(ClassMismatch, match="the data set has \\['fruit'\\] which the model does not know"):
        map_classes(["bird", "cat"], ["bird", "fruit"])
    with pytest.raises(ClassMismatch, match="unknown classes"):
        map_classes(["bird"], ["bird"], {"dog": "bird"})


def test_model_opinion_rows_only_confident_disagreements_and_say_the_model_saw_them(tmp_path: Path) -> None:
    from cleaning.data.workspace import Workspace

    ws = Workspace.open(_tree(tmp_path / "data", n=2))
    frame = ws.items_frame()
    ids = list(frame["item_id"])
    probs = np.full((len(ids), 3), 0.05, np.float32)
    probs[:, 0] = 0.9  # "bird" for everything, confidently
    probs[0] = [0.5, 0.3, 0.2]  # not confident
    save_foreign(ws, ForeignPredictions(ids, list(CLASSES), probs, {c: c for c in CLASSES}, "mine.pkl", "abc"))
    labels = dict(zip(frame["item_id"], frame["label"]))
    rows = model_opinion_rows(ws, labels)
    flagged = {r["item_id"] for r in rows}
    assert flagged == {i for i in ids[1:] if labels[i] != "bird"}
    assert all(r["suggested_label"] == "bird" and "may have been trained on this very image" in r["reason"]
               for r in rows)


@pytest.mark.slow
def test_predict_with_your_own_learner_mapping_and_mismatch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cleaning.cli import main
    from cleaning.data.workspace import Workspace
    from cleaning.model.predict import load_foreign

    root = _tree(tmp_path / "data")
    same = _tiny_learner(root, tmp_path / "same" / "export.pkl")
    assert main(["predict", str(root), "--model", str(same)]) == 0
    out = capsys.readouterr().out
    assert "predicted 18 images" in out and "has seen them" in out
    fp = load_foreign(Workspace.open(root))
    assert fp is not None and len(fp.item_ids) == 18 and fp.pred_probs.shape == (18, 3)
    assert np.allclose(fp.pred_probs.sum(1), 1.0, atol=1e-4)

    renamed = _tiny_learner(_tree(tmp_path / "renamed", ("Bird", "FRUIT", "mammal"), n=2), tmp_path / "r" / "m.pkl")
    assert main(["predict", str(root), "--model", str(renamed)]) == 0
    assert "Bird → bird" in capsys.readouterr().out

    other = _tiny_learner(_tree(tmp_path / "other", ("cat", "dog", "mammal"), n=2), tmp_path / "o" / "m.pkl")
    assert main(["predict", str(root), "--model", str(other)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "do not match" in err and "cat" in err

    assert main(["predict", str(root), "--model", str(tmp_path / "missing.pkl")]) == 2
    assert "no model file" in capsys.readouterr().err
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    assert main(["predict", str(root), "--model", str(tmp_path / "junk.pkl")]) == 2
    assert "not a loadable fastai learner" in capsys.readouterr().err

    img = next((root / "fruit").iterdir())
    assert main(["predict", str(root), "--model", str(same), "--image", str(img), "--json"]) == 0
    preds = json.loads(capsys.readouterr().out)["predictions"]
    assert len(preds) == 3 and {p["label"] for p in preds} == set(CLASSES)


@pytest.mark.slow
def test_predict_image_json_contract_latest_run_or_given_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cleaning.cli import main
    from cleaning.data.workspace import Workspace
    from cleaning.model.train import TrainSettings
    from cleaning.model.trainrun import train_workspace

    root = _tree(tmp_path / "data")
    ws = Workspace.open(root)
    first, _ = train_workspace(ws, TrainSettings(mode="quick", size=64, batch_size=8))
    img = next((root / "mammal").iterdir())
    assert main(["predict", str(root), "--image", str(img), "--json"]) == 0
    preds = json.loads(capsys.readouterr().out)["predictions"]
    assert [sorted(p) for p in preds] == [["label", "probability"]] * 3
    probs = [p["probability"] for p in preds]
    assert probs == sorted(probs, reverse=True) and abs(sum(probs) - 1) < 0.01
    assert {p["label"] for p in preds} == set(CLASSES)
    assert main(["predict", str(root), "--image", str(img), "--run", first.run_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["predictions"] == preds
    assert main(["predict", str(root), "--image", str(img), "--run", "nope"]) == 2
    assert "no training run" in capsys.readouterr().err
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"<html>not an image</html>")
    assert main(["predict", str(root), "--image", str(bad)]) == 2
    assert capsys.readouterr().err.startswith("error:")
