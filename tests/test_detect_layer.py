"""The label check's choice of layer (issue 9, twelfth session): the backbone's final embedding or its tapped
block 5, whichever out-of-sample classifier predicts the given labels more often (:func:`cleaning.detect.run.prefers_mid`).

On real handwritten digits (scikit-learn's 8×8 scans, enlarged) with 10 % wrong labels, block 5 is chosen and gives
the label rows; the off-topic check is the same either way (it stays on the embedding).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cleaning.detect.run import DetectorInputs, MidLayer, prefers_mid, run_detectors

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _shared_model_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANING_CACHE", str(tmp_path_factory.getbasetemp() / "model-cache"))


def test_the_block_is_preferred_only_when_it_explains_the_given_labels_clearly_better() -> None:
    """A paired test on the log-probability of each given label: a steady gain over many images chooses the block;
    the same fit, a loss, or one image's large gain (not evidence about the layer) keeps the embedding."""
    rng = np.random.default_rng(0)
    n, k = 200, 4
    y = rng.integers(0, k, n)

    def probs(p_given: np.ndarray) -> np.ndarray:
        out = np.repeat(((1 - p_given) / (k - 1))[:, None], k, axis=1)
        out[np.arange(n), y] = p_given
        return out
    base = rng.uniform(0.3, 0.9, n)
    final = probs(base)
    assert prefers_mid(y, final, probs(np.minimum(base + rng.uniform(0.0, 0.1, n), 0.99)))  # steadily better
    assert not prefers_mid(y, final, final)
    assert not prefers_mid(y, final, probs(base * 0.9))  # worse
    one = base.copy()
    one[0] = 0.999
    final_one = base.copy()
    final_one[0] = 0.001
    assert not prefers_mid(y, probs(final_one), probs(one))  # one image 7 nats better, the rest the same
    noisy = np.clip(base + rng.normal(0.005, 0.1, n), 0.01, 0.99)  # better on average, by less than the noise
    assert not prefers_mid(y, final, probs(noisy))
    assert not prefers_mid(y, final, np.ones((n, k + 1)) / (k + 1))  # heads over other classes: not comparable
    assert not prefers_mid(np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros((0, 3)))


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """800 real handwritten digits as 64-px PNGs, 10 % of them filed under another digit, and 4 of the demo's
    photos filed under digits (off-topic), embedded with the tap."""
    from sklearn.datasets import load_digits

    from cleaning.model.engines import embed_images
    from cleaning.model.oos import compute_oos_pred_probs

    d = load_digits()
    rng = np.random.default_rng(0)
    idx = rng.choice(len(d.target), 800, replace=False)
    root = tmp_path_factory.mktemp("digits")
    paths = []
    for i in idx:
        im = Image.fromarray((255 - d.images[i] * 16).clip(0, 255).astype(np.uint8))
        paths.append(root / f"{i}.png")
        im.resize((64, 64), Image.Resampling.BILINEAR).save(paths[-1])
    photos = [sorted((REPO / "demo" / "data" / c).glob("*.jpg"))[3] for c in ("bird", "fruit", "mammal", "flower")]
    paths += photos
    true = np.concatenate([d.target[idx], np.full(len(photos), -1)])
    y = true.copy()
    y[-len(photos):] = np.arange(len(photos)) % 10
    wrong = rng.choice(800, 80, replace=False)
    y[wrong] = (y[wrong] + rng.integers(1, 10, len(wrong))) % 10
    res = embed_images(paths, tap=True)
    assert not res.errors and res.mid is not None and res.mid.shape == (804, 192)
    vocab = [str(c) for c in range(10)]
    groups = np.arange(len(y))
    probs = {name: compute_oos_pred_probs(x, y, vocab, groups=groups) for name, x in
             (("final", res.embeddings), ("mid", res.mid))}
    return dict(paths=paths, y=y, true=true, vocab=vocab, x=res.embeddings, mid=res.mid, probs=probs, groups=groups)


def _scan(dg: dict, with_mid: bool):  # noqa: ANN202
    from cleaning.detect.quality import STATS_COLUMNS
    from cleaning.model.oos import compute_oos_pred_probs

    n, vocab, groups = len(dg["y"]), dg["vocab"], dg["groups"]
    mid = MidLayer(dg["mid"], dg["probs"]["mid"],
                   relearn=lambda lab: compute_oos_pred_probs(dg["mid"], lab, vocab, groups=groups)) if with_mid else None
    inp = DetectorInputs([str(i) for i in range(n)], [str(p) for p in dg["paths"]], dg["y"], vocab, dg["x"],
                         dg["probs"]["final"], [f"{i:064x}" for i in range(n)], [f"{i:016x}" for i in range(n)], None,
                         pd.DataFrame([dict(zip(STATS_COLUMNS, (0.5, 0.05, 0.95, 0.25, 7.0, 0.5)))] * n),
                         [64] * n, [64] * n, mid=mid)
    return run_detectors(inp, relearn=lambda lab: compute_oos_pred_probs(dg["x"], lab, vocab, groups=groups))


def test_on_real_handwritten_digits_the_label_rows_come_from_block_5_and_off_topic_stays(digits: dict) -> None:
    """The block is chosen; the label rows are its label check's flags less what is off-topic; the off-topic rows
    are the embedding's, photos included. (Whether that finds more wrong labels is measured by the benchmarks:
    ``bench/bench_photos.py``, ``bench/bench_layers.py --mode choose``.)"""
    y = digits["y"]
    acc = {k: float((p.argmax(1) == y).mean()) for k, p in digits["probs"].items()}
    assert prefers_mid(y, digits["probs"]["final"], digits["probs"]["mid"]), acc  # accuracy 0.823 / 0.808
    plain, tapped = _scan(digits, False), _scan(digits, True)
    assert plain.label_layer == "embedding" and tapped.label_layer == "tapped block"
    rows = {k: set(r.issues.loc[r.issues["issue"] == "label", "item_id"]) for k, r in (("p", plain), ("t", tapped))}
    off = {k: set(r.issues.loc[r.issues["issue"] == "outlier", "item_id"]) for k, r in (("p", plain), ("t", tapped))}
    assert off["p"] == off["t"] and {str(i) for i in range(800, 804)} <= off["t"]
    assert rows["t"] == {str(i) for i in np.flatnonzero(tapped.labels.flagged)} - off["t"]
    assert rows["t"] != rows["p"]


def test_the_scan_embeds_the_block_as_far_as_the_label_check_uses_it() -> None:
    from cleaning.detect.run import MID_MAX
    from cleaning.model.embed import TAP_MAX

    assert TAP_MAX == MID_MAX


def test_above_mid_max_images_the_embedding_alone_is_used(digits: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """The block is not used above MID_MAX images (not measured at that scale), even when it would be chosen."""
    import cleaning.detect.run as run

    monkeypatch.setattr(run, "MID_MAX", 100)
    assert _scan(digits, True).label_layer == "embedding"


@pytest.fixture(scope="module")
def digit_tree(tmp_path_factory: pytest.TempPathFactory, digits: dict):  # noqa: ANN201 — a Workspace
    """The same 800 digits and 4 photos as a folder-per-class tree, each file under its given (noisy) label."""
    import shutil

    from cleaning.data.workspace import Workspace

    root = tmp_path_factory.mktemp("digit_tree") / "data"
    for i, (p, y) in enumerate(zip(digits["paths"], digits["y"])):
        (root / str(y)).mkdir(parents=True, exist_ok=True)
        shutil.copy(p, root / str(y) / f"{i:04d}{Path(p).suffix}")
    return Workspace.open(root)


def test_the_scan_and_the_review_pages_read_block_5_on_digits(digit_tree, digits: dict) -> None:  # noqa: ANN001
    """End to end on the tree: the scan says it read label errors on the block, its label rows name wrong digits,
    and the predictions the confusion matrix and the map show are the block's heads (they agree with the rows)."""
    from cleaning.model.oos import load_or_compute_oos
    from cleaning.review import analysis
    from cleaning.review.state import Analysis

    said: list[str] = []
    issues = analysis.find_issues(digit_tree, progress=lambda what, f: said.append(what))
    assert any("earlier block" in s for s in said), said
    labels = issues[issues["issue"] == "label"]
    rows = [int(Path(p).stem) for p in labels["path"]]
    planted = (digits["y"] != digits["true"]) & (digits["true"] >= 0)
    hit = planted[rows]
    assert hit.mean() >= 0.7 and hit.sum() >= 0.6 * planted.sum()  # precision, recall (0.93, 0.78 when written)
    preds = Analysis(digit_tree).predictions()
    assert preds is not None
    block = load_or_compute_oos(digit_tree, mid=True)
    np.testing.assert_array_equal(preds.pred_probs, block.pred_probs)
    assert list(preds.item_ids) == list(block.item_ids)


def test_above_mid_max_images_the_review_pages_show_the_embeddings_predictions(digit_tree, monkeypatch) -> None:  # noqa: ANN001
    """The pages make the scan's choice (``run.reads_mid``), size bar included: the same tree above MID_MAX."""
    import cleaning.detect.run as run
    from cleaning.model.oos import load_or_compute_oos
    from cleaning.review.analysis import load_or_compute_predictions

    block, final = load_or_compute_oos(digit_tree, mid=True).pred_probs, load_or_compute_oos(digit_tree).pred_probs
    assert not np.array_equal(block, final)
    np.testing.assert_array_equal(load_or_compute_predictions(digit_tree).pred_probs, block)
    monkeypatch.setattr(run, "MID_MAX", 100)
    np.testing.assert_array_equal(load_or_compute_predictions(digit_tree).pred_probs, final)


def test_on_photos_the_review_pages_keep_the_embeddings_predictions(tmp_path: Path, tmp_path_factory, monkeypatch) -> None:  # noqa: ANN001
    from cleaning.model.oos import load_or_compute_oos
    from cleaning.review.state import Analysis
    from tests.conftest import demo_subset_workspace

    ws = demo_subset_workspace(tmp_path, tmp_path_factory, monkeypatch, per_class=16)
    preds = Analysis(ws).predictions()
    assert preds is not None
    np.testing.assert_array_equal(preds.pred_probs, load_or_compute_oos(ws).pred_probs)
