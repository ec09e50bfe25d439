"""Benchmark of the detectors against cleanlab, plain loss ranking and imagehash pHash.

    python bench/bench_detect.py            # full run (3 test seeds), writes bench/results/detect.{md,json}
    python bench/bench_detect.py --quick    # small smoke run (1 seed), writes nothing under results/

Real images only, all offline: Tux Paint photo stamps (7 classes, flattened onto white), Tux Paint /
skimage photos of other things (off-topic), fashion-MNIST (10 classes, 28×28 grey; the embedder
upscales), sklearn digits (off-topic for fashion). Every image is written to ``bench/out/`` once and
embedded once with the product's own embedder (``cleaning.model.embed``); the cache is content-addressed,
so problems are then planted many times cheaply: label noise and off-topic insertion change only
labels and which rows take part, and near duplicates are real files (re-encoded, resized, cropped,
brightened) embedded like any other image.

Thresholds and blend weights in ``cleaning/detect`` were chosen on the *tuning* split (seed 0 and,
for fashion, a disjoint set of images); the reported numbers come from seeds 1–3 only.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageEnhance

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out" / "detect"
RESULTS = REPO / "bench" / "results"
STAMPS = Path("/usr/share/tuxpaint/stamps")
FASHION = Path("/usr/share/datasets/fashion-mnist")
FASHION_NAMES = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]
PHOTO_CLASSES = {"bird": "animals/birds", "mammal": "animals/mammals", "fish": "animals/fish",
                 "insect": "animals/insects", "fruit": "food/fruit", "vegetable": "food/vegetables",
                 "flower": "plants/flowers"}
OFF_DIRS = ["vehicles", "household", "space", "town/monuments", "hobbies", "sports", "clothes", "naturalforces"]
SKIP_PARTS = {"cartoon", "toys", "plastic"}
SKIP_STEMS = {"albino_peahen", "echidna", "hedgehog"}
SKIMAGE = ["astronaut", "brick", "camera", "chelsea", "clock", "coffee", "coins", "grass", "gravel",
           "hubble_deep_field", "immunohistochemistry", "moon", "retina", "rocket"]
TRANSFORMS = ["jpeg_q30", "resize_50pct", "crop_10pct", "brighten_30pct", "resize70_crop5_q50"]


# ---- real images, written once ------------------------------------------------------------------
def _stamps(sub: str) -> list[Path]:
    return sorted(p for p in (STAMPS / sub).rglob("*.png")
                  if not SKIP_PARTS.intersection(p.relative_to(STAMPS).parts)
                  and "_back" not in p.stem and p.stem not in SKIP_STEMS)


def _flatten(path: Path) -> Image.Image:
    im = Image.open(path).convert("RGBA")
    white = Image.new("RGBA", im.size, (255, 255, 255, 255))
    white.alpha_composite(im)
    im = white.convert("RGB")
    im.thumbnail((256, 256), Image.Resampling.LANCZOS)
    return im


def _skimage(name: str) -> Image.Image:
    import skimage.data

    im = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
    im.thumbnail((256, 256), Image.Resampling.LANCZOS)
    return im


def _jpeg(im: Image.Image, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def near_copy(im: Image.Image, transform: str) -> bytes:
    """A near duplicate: re-encoded, resized, cropped, brightened, or a mix of these."""
    w, h = im.size
    if transform == "jpeg_q30":
        return _jpeg(im, 30)
    if transform == "resize_50pct":
        return _jpeg(im.resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.LANCZOS))
    if transform == "crop_10pct":
        return _jpeg(im.crop((round(w * 0.1), round(h * 0.1), w, h)))
    if transform == "brighten_30pct":
        return _jpeg(ImageEnhance.Brightness(im).enhance(1.3))
    if transform == "resize70_crop5_q50":
        im = im.crop((round(w * 0.05), 0, w, round(h * 0.95)))
        return _jpeg(im.resize((max(1, round(im.width * 0.7)), max(1, round(im.height * 0.7)))), 50)
    raise ValueError(transform)


def _idx(name: str) -> np.ndarray:
    with gzip.open(FASHION / name) as f:
        data = f.read()
    return np.frombuffer(data, np.uint8, offset=16 if "images" in name else 8)


def _grey28(im: Image.Image) -> Image.Image:
    """An off-topic photo dressed like fashion-MNIST: grey, 28×28, object bright on dark."""
    g = im.convert("L").resize((28, 28), Image.Resampling.LANCZOS)
    return Image.eval(g, lambda v: 255 - v)


def build_items(quick: bool) -> pd.DataFrame:
    """Write every benchmark image under ``OUT/img`` (once) and list them.

    Columns: key (file name stem), pool, label (true class; "" for off-topic), origin, transform, base.
    """
    img = OUT / "img"
    img.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []

    def put(key: str, data: bytes, ext: str, **meta: str) -> None:
        path = img / f"{key}.{ext}"
        if not path.exists():
            path.write_bytes(data)
        rows.append({"key": key, "path": str(path), "transform": "", "base": "", **meta})

    photos: list[tuple[str, Image.Image]] = []
    for label, sub in PHOTO_CLASSES.items():
        for p in _stamps(sub):
            key = f"photo-{label}-{p.stem}"
            im = _flatten(p)
            photos.append((key, im))
            put(key, _jpeg(im), "jpg", pool="photo", label=label, origin=f"tuxpaint:{p.relative_to(STAMPS)}")
    offs = [(f"off-{p.parent.name}-{p.stem}", _flatten(p), f"tuxpaint:{p.relative_to(STAMPS)}")
            for sub in OFF_DIRS for p in _stamps(sub)]
    offs += [(f"off-skimage-{n}", _skimage(n), f"skimage:{n}") for n in SKIMAGE]
    for key, im, origin in offs:
        put(key, _jpeg(im), "jpg", pool="offtopic", label="", origin=origin)
        put(f"grey-{key}", _png(_grey28(im)), "png", pool="fashion_off", label="", origin=origin)
    rng = np.random.default_rng(12345)
    n_var = 60 if quick else len(photos) + len(offs)
    for i, (key, im) in enumerate([(k, im) for k, im in photos] + [(k, im) for k, im, _ in offs]):
        if i >= n_var:
            break
        for t in TRANSFORMS:
            put(f"var-{t}-{key}", near_copy(im, t), "jpg", pool="variant", label="", origin=key, transform=t,
                base=key)
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i in rng.choice(len(digits.images), 60 if quick else 120, replace=False):
        d = Image.fromarray((digits.images[i] * 255 / 16).astype(np.uint8)).resize((28, 28), Image.Resampling.BILINEAR)
        put(f"digit-{i}", _png(d), "png", pool="fashion_off", label="", origin=f"sklearn:digits[{i}]")
    x_tr, y_tr = _idx("train-images-idx3-ubyte.gz").reshape(-1, 28, 28), _idx("train-labels-idx1-ubyte.gz")
    x_te, y_te = _idx("t10k-images-idx3-ubyte.gz").reshape(-1, 28, 28), _idx("t10k-labels-idx1-ubyte.gz")
    per = {"fashion_tune": 30 if quick else 100, "fashion_test": 60 if quick else 200,
           "fashion_eval": 40 if quick else 100}
    order = np.random.default_rng(0).permutation(len(y_tr))
    for c in range(10):
        mine = order[y_tr[order] == c]
        cuts = {"fashion_tune": mine[:per["fashion_tune"]],
                "fashion_test": mine[per["fashion_tune"]:per["fashion_tune"] + per["fashion_test"]]}
        for pool, js in cuts.items():
            for j in js:
                put(f"fm-train-{j}", _png(Image.fromarray(x_tr[j])), "png", pool=pool, label=FASHION_NAMES[c],
                    origin=f"fashion-mnist:train[{j}]")
    quota = {c: per["fashion_eval"] for c in range(10)}
    for j in np.random.default_rng(1).permutation(len(y_te)):
        c = int(y_te[j])
        if quota[c]:
            quota[c] -= 1
            put(f"fm-test-{j}", _png(Image.fromarray(x_te[j])), "png", pool="fashion_eval",
                label=FASHION_NAMES[c], origin=f"fashion-mnist:t10k[{j}]")
    return pd.DataFrame(rows)


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def embed_items(items: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of every item (N×1280) and its tapped-block rows (N×192, the label check's other layer), from
    content-addressed caches under ``OUT/cache`` (:mod:`embedcache`)."""
    sys.path.insert(0, str(REPO / "bench"))
    from embedcache import tables

    table, side, shas = tables(OUT / "cache", list(items["path"]))
    return table.get(shas), side.get(shas)


# ---- planting problems -------------------------------------------------------------------------
def plant_noise(y: np.ndarray, k: int, rate: float, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Symmetric noise: ``rate``·N random images get a uniformly drawn other class. Pair-flip:
    ``rate`` of every class c moves to class c+1 (mod K)."""
    noisy = y.copy()
    if kind == "symmetric":
        for i in rng.choice(len(y), int(round(rate * len(y))), replace=False):
            noisy[i] = rng.choice([c for c in range(k) if c != y[i]])
    else:
        for c in range(k):
            members = np.flatnonzero(y == c)
            noisy[rng.choice(members, int(round(rate * len(members))), replace=False)] = (c + 1) % k
    return noisy


def prf(flag: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    tp = int((flag & truth).sum())
    p, r = tp / max(int(flag.sum()), 1), tp / max(int(truth.sum()), 1)
    return {"precision": p, "recall": r, "f1": 2 * p * r / max(p + r, 1e-12), "flagged": int(flag.sum())}


def _head():  # noqa: ANN202 — the same head as cleaning.model.oos (standardised features, logistic, C=0.05)
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from cleaning.model.oos import DEFAULT_C

    return make_pipeline(StandardScaler(), LogisticRegression(C=DEFAULT_C, max_iter=300))


def _pool(items: pd.DataFrame, emb: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    m = (items["pool"] == name).to_numpy()
    labels = items["label"][m].to_numpy()
    vocab = sorted(set(labels))
    return emb[m], np.array([vocab.index(v) for v in labels]), vocab


# ---- experiments --------------------------------------------------------------------------------
def run_label(items: pd.DataFrame, emb: np.ndarray, pool: str, seeds: list[int], rates: list[float],
              retrain: bool, per_class: int | None = None, mid: np.ndarray | None = None) -> list[dict]:
    """Label noise: ours vs cleanlab vs plain loss ranking on the same out-of-sample probabilities.

    ``per_class``: each seed draws this many images per class from the pool (None = all). ``mid``: every item's
    tapped-block rows; the label check then runs as the scan runs it, on the embedding or on the block, whichever
    heads predict the noisy labels more often (:func:`cleaning.detect.run.prefers_mid`), and cleanlab and the loss
    ranking get the same probabilities. The retraining head is always on the embedding.
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores
    from sklearn.metrics import roc_auc_score

    from cleaning.detect import compute_neighbours
    from cleaning.detect.label import K_NEIGHBOURS, compute_label_scores
    from cleaning.detect.run import prefers_mid
    from cleaning.model.oos import compute_oos_pred_probs

    x_all, y_all, vocab = _pool(items, emb, pool)
    m_all = _pool(items, mid, pool)[0] if mid is not None else None
    k = len(vocab)
    if retrain:
        x_eval, y_eval, _ = _pool(items, emb, "fashion_eval")
    out = []
    for seed in seeds:
        rng = np.random.default_rng(1000 + seed)
        take = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y_all == c))[:per_class] for c in range(k)]))
        x, y = x_all[take], y_all[take]
        xm = m_all[take] if m_all is not None else None
        nb = compute_neighbours(x, K_NEIGHBOURS)
        nb_m = compute_neighbours(xm, K_NEIGHBOURS) if xm is not None else None
        oracle = _head().fit(x, y).score(x_eval, y_eval) if retrain else float("nan")
        for kind, rate in [(kd, rt) for kd in ("symmetric", "pairflip") for rt in rates]:
            t0 = time.process_time()
            noisy = plant_noise(y, k, rate, kind, np.random.default_rng(seed))
            truth = noisy != y
            probs = compute_oos_pred_probs(x, noisy, vocab)
            xl, nbl, layer = x, nb, "embedding"
            if xm is not None:
                probs_m = compute_oos_pred_probs(xm, noisy, vocab)
                if prefers_mid(noisy, probs, probs_m):
                    probs, xl, nbl, layer = probs_m, xm, nb_m, "block"
            rows = np.arange(len(y))
            cl = np.asarray(find_label_issues(noisy, probs), dtype=bool)
            loss_flag = probs.argmax(axis=1) != noisy
            ours = compute_label_scores(
                noisy, probs, nbl, relearn=lambda lab, xl=xl: compute_oos_pred_probs(xl, lab, vocab))
            r = {"pool": pool, "noise": kind, "rate": rate, "seed": seed, "n": len(y), "n_errors": int(truth.sum()),
                 "layer": layer,
                 "ours": {**prf(ours.flagged, truth), "auroc": roc_auc_score(truth, ours.score),
                          "suggestion_correct": float((ours.suggested[truth & ours.flagged]
                                                       == y[truth & ours.flagged]).mean())},
                 "cleanlab": {**prf(cl, truth),
                              "auroc": roc_auc_score(truth, -get_label_quality_scores(noisy, probs))},
                 "loss": {**prf(loss_flag, truth), "auroc": roc_auc_score(truth, -np.log(probs[rows, noisy]))}}
            if retrain:
                def acc(mask: np.ndarray, labels: np.ndarray, x: np.ndarray = x) -> float:
                    return float(_head().fit(x[mask], labels[mask]).score(x_eval, y_eval))
                every = np.ones(len(y), dtype=bool)
                base = acc(every, noisy)
                relabelled = np.where(ours.flagged, ours.suggested, noisy)
                accs = {"noisy": base, "oracle": oracle, "ours_drop": acc(~ours.flagged, noisy),
                        "ours_relabel": acc(every, relabelled), "cleanlab_drop": acc(~cl, noisy)}
                lost = oracle - base
                r["retrain"] = {**accs, **{f"recovered_{m}": (accs[m] - base) / lost if lost > 0 else float("nan")
                                           for m in ("ours_drop", "ours_relabel", "cleanlab_drop")}}
            r["cpu_s"] = time.process_time() - t0
            out.append(r)
            print(f"label {pool} {kind} {rate:.0%} seed {seed} ({layer}): F1 ours {r['ours']['f1']:.3f} "
                  f"cleanlab {r['cleanlab']['f1']:.3f}; AUROC {r['ours']['auroc']:.4f} vs "
                  f"{r['cleanlab']['auroc']:.4f}", flush=True)
    return out


def run_offtopic(items: pd.DataFrame, emb: np.ndarray, pool: str, off_pool: str, seeds: list[int],
                 frac: float) -> list[dict]:
    """Off-topic images (another source, random labels) inserted at ``frac``: our outlier score vs
    cleanlab's OutOfDistribution (kNN on the same embeddings); and the per-image flags joined with the junk
    groups (:mod:`cleaning.detect.junk`, as the scan finds them without the classifier), whose false groups on
    a clean set are ordinary images flagged."""
    from cleanlab.outlier import OutOfDistribution
    from sklearn.metrics import roc_auc_score

    from cleaning.detect.junk import compute_junk_groups
    from cleaning.detect.outlier import compute_outlier_scores

    x, y, vocab = _pool(items, emb, pool)
    off = emb[(items["pool"] == off_pool).to_numpy()]
    out = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        m = max(3, int(round(frac * len(y))))
        xs = np.vstack([x, off[rng.choice(len(off), m, replace=False)]])
        ys = np.concatenate([y, rng.integers(0, len(vocab), m)])
        truth = np.r_[np.zeros(len(y), bool), np.ones(m, bool)]
        ours = compute_outlier_scores(xs, ys)
        junk = compute_junk_groups(xs, ys, ours.own, outlier_z=ours.unfit, break_z=ours.break_z, lonely=ours.lonely)
        cl = OutOfDistribution().fit_score(features=xs)
        out.append({"pool": pool, "seed": seed, "n_offtopic": m, "n": len(ys),
                    "ours": {**prf(ours.flagged, truth), "auroc": roc_auc_score(truth, ours.score)},
                    "with_junk": {**prf(ours.flagged | (junk.group >= 0), truth), "groups": len(junk.info),
                                  "in_groups": int((junk.group >= 0).sum())},
                    "cleanlab_ood": {"auroc": roc_auc_score(truth, -cl)}})
        print(f"off-topic {pool} seed {seed}: AUROC ours {out[-1]['ours']['auroc']:.4f} "
              f"cleanlab OOD {out[-1]['cleanlab_ood']['auroc']:.4f}", flush=True)
    return out


def _hashes(paths: list[str]) -> dict[str, tuple[str, str]]:
    """{path: (sha256, pHash)} via the product's own inspect_image, cached in ``OUT/hashes.json``."""
    from cleaning.data.images import inspect_image

    f = OUT / "hashes.json"
    known = json.loads(f.read_text()) if f.exists() else {}
    for p in paths:
        if p not in known:
            info = inspect_image(p)
            known[p] = (info.sha256, info.phash)
    f.write_text(json.dumps(known))
    return {p: tuple(known[p]) for p in paths}


def run_duplicates(items: pd.DataFrame, emb: np.ndarray, seeds: list[int], half: int,
                   phash_thresholds: tuple[int, ...] = (4, 6, 8, 10, 12)) -> list[dict]:
    """Near copies (45, one random transform each) and exact copies (15) of photos from one half of
    the photo pool, planted into the whole pool; pairs found by ours vs pHash at several thresholds."""
    import itertools

    from cleaning.data.images import load_image
    from cleaning.detect.duplicates import compute_duplicate_groups, compute_thumbnail, phash_distance

    base = np.flatnonzero(items["pool"].isin(["photo", "offtopic"]).to_numpy())
    plantable = base[half::2]
    var = {(r.base, r.transform): i for i, r in enumerate(items.itertuples()) if r.pool == "variant"}
    keys, paths, bases = items["key"].to_numpy(), items["path"].to_numpy(), items["base"].to_numpy()
    out = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        avail = [b for b in plantable if (keys[b], TRANSFORMS[0]) in var]
        chosen = rng.choice(avail, min(60, len(avail)), replace=False)
        rows, truth = list(base), {}
        for n, c in enumerate(chosen):
            t = TRANSFORMS[rng.integers(len(TRANSFORMS))] if n < 0.75 * len(chosen) else "exact"
            rows.append(var[(keys[c], t)] if t != "exact" else c)
            truth[(list(base).index(c), len(rows) - 1)] = t
        rows_a = np.array(rows)
        # Tux Paint ships some stamps twice, as drawn and flipped left to right (``X`` and ``X_mirror``): by the
        # near-duplicate contract (issue 9: a horizontal flip is the same picture) every pair of rows that come
        # from one stamp, flipped or not, is a true pair too (the 11-27 run, before flips were copies, counted
        # them as false pairs)
        stem = [str(bases[i] or keys[i]).removesuffix("_mirror") for i in rows_a]
        planted = {pair for pair in truth}
        for a, b in itertools.combinations(range(len(rows_a)), 2):
            if stem[a] == stem[b] and (a, b) not in planted:
                truth[(a, b)] = "mirror"
        h = _hashes([paths[i] for i in rows_a])
        sha = [h[paths[i]][0] for i in rows_a]
        ph = [h[paths[i]][1] for i in rows_a]
        thumbs = np.stack([compute_thumbnail(load_image(paths[i], max_side=512)) for i in rows_a])
        t0 = time.process_time()
        groups = compute_duplicate_groups(emb[rows_a], sha, ph, thumbs)
        cpu = time.process_time() - t0
        pred = set()
        for m in groups.members():
            pred |= set(itertools.combinations(sorted(m.tolist()), 2))

        def score(found: set, truth: dict = truth) -> dict:
            tp = len(found & set(truth))
            per = {t: float(np.mean([p in found for p, tt in truth.items() if tt == t]))
                   for t in [*TRANSFORMS, "exact", "mirror"]}
            return {"precision": tp / max(len(found), 1), "recall": tp / len(truth), "found": len(found),
                    "recall_by_transform": per}
        n = len(rows_a)
        dist = np.array([[phash_distance(ph[a], ph[b]) for b in range(n)] for a in range(n)])
        r = {"seed": seed, "half": "tune" if half == 0 else "test", "n_images": n, "n_pairs": len(truth),
             "ours": {**score(pred), "cpu_s": cpu}}
        for t in phash_thresholds:
            r[f"phash<={t}"] = score({(a, b) for a, b in zip(*np.nonzero(np.triu(dist <= t, 1)))})
        r["false_pairs_ours"] = sorted(f"{keys[rows_a[a]]} ~ {keys[rows_a[b]]}" for a, b in pred - set(truth))
        out.append(r)
        print(f"duplicates seed {seed}: ours P {r['ours']['precision']:.3f} R {r['ours']['recall']:.3f}; "
              f"pHash<=10 P {r['phash<=10']['precision']:.3f} R {r['phash<=10']['recall']:.3f}", flush=True)
    return out


def _fashion_copy(im: Image.Image, t: str) -> tuple[bytes, str]:
    if t == "jpeg_q40":
        return _jpeg(im.convert("RGB"), 40), "jpg"
    if t == "upscale_2x":
        return _png(im.resize((56, 56), Image.Resampling.BICUBIC)), "png"
    if t == "crop_2px":
        return _png(im.crop((2, 2, 28, 28))), "png"
    return _png(ImageEnhance.Brightness(im).enhance(1.3)), "png"


def _broken_and_blank(rng: np.random.Generator) -> tuple[dict[str, bytes], dict[str, bytes]]:
    cat = Image.fromarray((rng.random((64, 64, 3)) * 255).astype(np.uint8))
    broken = {"truncated.jpg": _jpeg(cat)[:300], "page.jpg": b"<!DOCTYPE html><html><body>404</body></html>",
              "empty.png": b"", "notes.jpg": b"just some text\n", "truncated.png": _png(cat)[:200]}
    noise = np.clip(128 + rng.normal(0, 0.6, (100, 100)), 0, 255).astype(np.uint8)
    blank = {"white.png": _png(Image.new("L", (28, 28), 255)), "black.png": _png(Image.new("L", (28, 28), 0)),
             "grey.jpg": _jpeg(Image.new("RGB", (64, 64), (128, 128, 128))), "flat_noise.png": _png(Image.fromarray(noise)),
             "white_big.jpg": _jpeg(Image.new("RGB", (256, 256), (255, 255, 255)))}
    return broken, blank


def run_e2e(items: pd.DataFrame, seed: int, per_class: int) -> dict:
    """The whole product on a fresh ~1,000-image tree with every kind of problem planted at once:
    ``python -m cleaning scan`` from nothing cached, timed, and its CSV scored against the truth."""
    import shutil
    import subprocess

    rng = np.random.default_rng(seed)
    home = OUT / f"e2e-{seed}"
    shutil.rmtree(home, ignore_errors=True)
    root = home / "data"
    fm = items[items["pool"] == "fashion_test"]
    picked = pd.concat([g.iloc[rng.permutation(len(g))[:per_class]] for _, g in fm.groupby("label")])
    truth: dict[str, set] = {k: set() for k in ("label", "outlier", "pairs", "corrupt", "low_quality")}

    def write(folder: str, name: str, data: bytes) -> str:
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / name).write_bytes(data)
        return f"{folder}/{name}"

    files: list[tuple[str, str]] = []
    for r in picked.itertuples():
        label = r.label
        if rng.random() < 0.10:
            label = rng.choice([c for c in FASHION_NAMES if c != r.label])
        rel = write(label, Path(r.path).name, Path(r.path).read_bytes())
        files.append((rel, r.path))
        if label != r.label:
            truth["label"].add(rel)
    clean = [f for f in files if f[0] not in truth["label"]]
    for i in rng.choice(len(clean), 25, replace=False)[:15]:
        t = ["jpeg_q40", "upscale_2x", "crop_2px", "brighten_30pct"][i % 4]
        data, ext = _fashion_copy(Image.open(clean[i][1]), t)
        rel = write(clean[i][0].split("/")[0], f"copy_{t}_{i}.{ext}", data)
        truth["pairs"].add(frozenset((rel, clean[i][0])))
    for n, i in enumerate(rng.choice(len(clean), 10, replace=False)):
        folder = clean[i][0].split("/")[0] if n < 7 else rng.choice([c for c in FASHION_NAMES
                                                                     if c != clean[i][0].split("/")[0]])
        rel = write(folder, Path(clean[i][0]).stem + " (1).png", Path(clean[i][1]).read_bytes())
        truth["pairs"].add(frozenset((rel, clean[i][0])))
    off = items[items["pool"] == "fashion_off"]
    for r in off.iloc[rng.choice(len(off), 20, replace=False)].itertuples():
        truth["outlier"].add(write(rng.choice(FASHION_NAMES), Path(r.path).name, Path(r.path).read_bytes()))
    broken, blank = _broken_and_blank(rng)
    for name, data in broken.items():
        truth["corrupt"].add(write(rng.choice(FASHION_NAMES), name, data))
    for name, data in blank.items():
        truth["low_quality"].add(write(rng.choice(FASHION_NAMES), name, data))
    n_files = sum(1 for p in root.rglob("*") if p.is_file())
    load0 = _load()
    t0 = time.monotonic()
    cmd = [sys.executable, "-m", "cleaning", "scan", str(root), "--state-dir", str(home / "state"),
           "--out", str(home / "issues.csv"), "--scores", str(home / "scores.csv"), "--quiet", "--create"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if proc.returncode:
        raise RuntimeError(proc.stderr)
    issues = pd.read_csv(home / "issues.csv", keep_default_na=False)
    scores = pd.read_csv(home / "scores.csv", keep_default_na=False)
    res: dict = {"seed": seed, "n_files": n_files, "wall_s": wall, "load_before": load0, "load_after": _load(),
                 "columns_ok": list(issues.columns) == ["path", "label", "issue", "severity", "suggested_label",
                                                        "related_path", "reason"]
                 and list(scores.columns) == ["path", "label", "predicted_label", "label_issue_score",
                                              "outlier_score"],
                 "sorted_ok": bool((np.diff(issues["severity"].to_numpy(float)) <= 1e-9).all())}
    special = truth["outlier"] | truth["corrupt"] | truth["low_quality"]
    for kind in ("label", "outlier", "corrupt", "low_quality"):
        flagged = set(issues.loc[issues["issue"] == kind, "path"])
        if kind == "label":
            flagged -= special  # an off-topic or blank image flagged as mislabelled is neither right nor wrong
        tp = len(flagged & truth[kind])
        res[kind] = {"precision": tp / max(len(flagged), 1), "recall": tp / max(len(truth[kind]), 1),
                     "flagged": len(flagged), "planted": len(truth[kind])}
    dup = issues[issues["issue"].isin(["duplicate", "near_duplicate"])]
    pairs = {frozenset((a, b)) for a, b in zip(dup["path"], dup["related_path"])}
    tp = len(pairs & truth["pairs"])
    res["duplicates"] = {"precision": tp / max(len(pairs), 1), "recall": tp / len(truth["pairs"]),
                         "flagged": len(pairs), "planted": len(truth["pairs"])}
    print(f"end-to-end seed {seed}: {n_files} files in {wall:.0f} s (load {load0:.1f}); "
          + "; ".join(f"{k} P {res[k]['precision']:.2f} R {res[k]['recall']:.2f}"
                      for k in ("label", "outlier", "duplicates", "corrupt", "low_quality")), flush=True)
    return res


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the CLI run end to end)."""
    t = __import__("os").times()
    return t.user + t.system + t.children_user + t.children_system


def _load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0]) if Path("/proc/loadavg").exists() else float("nan")


# ---- report -------------------------------------------------------------------------------------
def _m(values: list[float]) -> str:
    v = np.asarray([x for x in values if x == x], dtype=float)
    return "–" if not len(v) else f"{v.mean():.3f}" + (f" ± {v.std():.3f}" if len(v) > 1 else "")


def summarise(res: dict) -> dict:
    lab = res["label"]
    f1 = {m: float(np.mean([r[m]["f1"] for r in lab])) for m in ("ours", "cleanlab", "loss")}
    resid = {m: float(np.mean([1 - r[m]["auroc"] for r in lab])) for m in ("ours", "cleanlab", "loss")}
    rt = [r["retrain"] for r in lab if "retrain" in r]
    dup = res["duplicates"]
    best_t = max((k for k in res["duplicates_tune"][0] if k.startswith("phash<=")),
                 key=lambda k: np.mean([2 * r[k]["precision"] * r[k]["recall"] / max(r[k]["precision"] + r[k]["recall"],
                                                                                         1e-9) for r in res["duplicates_tune"]]))
    e2e = res["e2e"]
    return {
        "label_f1": f1, "label_f1_ratio": f1["ours"] / f1["cleanlab"],
        "auroc_residual": resid, "auroc_residual_ratio": resid["cleanlab"] / max(resid["ours"], 1e-9),
        "recovered_ours_relabel": float(np.nanmean([r["recovered_ours_relabel"] for r in rt])) if rt else None,
        "recovered_ours_drop": float(np.nanmean([r["recovered_ours_drop"] for r in rt])) if rt else None,
        "recovered_cleanlab_drop": float(np.nanmean([r["recovered_cleanlab_drop"] for r in rt])) if rt else None,
        "offtopic_auroc": float(np.mean([r["ours"]["auroc"] for r in res["offtopic"]])),
        "offtopic_auroc_cleanlab": float(np.mean([r["cleanlab_ood"]["auroc"] for r in res["offtopic"]])),
        "dup_precision": float(np.mean([r["ours"]["precision"] for r in dup])),
        "dup_recall": float(np.mean([r["ours"]["recall"] for r in dup])),
        "phash_tuned": best_t,
        "phash_tuned_precision": float(np.mean([r[best_t]["precision"] for r in dup])),
        "phash_tuned_recall": float(np.mean([r[best_t]["recall"] for r in dup])),
        "phash10_precision": float(np.mean([r["phash<=10"]["precision"] for r in dup])),
        "phash10_recall": float(np.mean([r["phash<=10"]["recall"] for r in dup])),
        "corrupt_found": f"{sum(round(r['corrupt']['recall'] * r['corrupt']['planted']) for r in e2e)}"
                         f"/{sum(r['corrupt']['planted'] for r in e2e)}",
        "blank_found": f"{sum(round(r['low_quality']['recall'] * r['low_quality']['planted']) for r in e2e)}"
                       f"/{sum(r['low_quality']['planted'] for r in e2e)}",
    }


def _ok(flag: bool) -> str:
    return "**met**" if flag else "**not met**"


def report(res: dict, s: dict) -> str:
    m = res["machine"]
    rt = [r for r in res["label"] if "retrain" in r]
    lines = [
        "# Detector benchmark", "",
        f"`python bench/bench_detect.py` on {m['when']} — {m['machine']}, {m['cpus']} CPUs, Python {m['python']}; "
        f"load average {m['load_start']:.1f} at start, {m['load_end']:.1f} at end (machine shared with other "
        f"agents); {m['cpu_minutes']:.1f} CPU-minutes, {m['wall_minutes']:.1f} min wall (embeddings cached from "
        "an earlier run). Raw numbers: `detect.json`.", "",
        "Data (all real, offline): Tux Paint photo stamps in 7 classes (bird, mammal, fish, insect, fruit, "
        "vegetable, flower; 184 images flattened onto white), 126 photos of other things (Tux Paint vehicles, "
        "household, space, … and `skimage.data`), fashion-MNIST (28×28 grey, 10 classes), sklearn digits. "
        "Embeddings: the product's EfficientNet-Lite0 (`cleaning.model.embed`); probabilities: the product's "
        "5-fold out-of-sample logistic heads (`cleaning.model.oos.compute_oos_pred_probs`), the *same* for every "
        "method. Thresholds and weights were chosen on a tuning split (seed 0; for fashion a disjoint set of "
        "1,000 images; for duplicates the other half of the photos) and are not re-tuned here: every number "
        "below is from test seeds " + ", ".join(map(str, res["seeds"])) + ".", "",
        "## Against the targets", "",
        "| target | ours | peer | result |", "|---|---|---|---|",
        f"| label-error F1 ≥ 1.25× cleanlab's | {s['label_f1']['ours']:.3f} | cleanlab {s['label_f1']['cleanlab']:.3f}, "
        f"loss {s['label_f1']['loss']:.3f} | {s['label_f1_ratio']:.2f}× — {_ok(s['label_f1_ratio'] >= 1.25)} |",
        f"| 1 − AUROC ≥ 3× smaller | {s['auroc_residual']['ours']:.4f} | cleanlab {s['auroc_residual']['cleanlab']:.4f}, "
        f"loss {s['auroc_residual']['loss']:.4f} | {s['auroc_residual_ratio']:.2f}× smaller — "
        f"{_ok(s['auroc_residual_ratio'] >= 3)} |",
        f"| near-duplicate recall ≥ 0.95 at precision ≥ 0.95 | R {s['dup_recall']:.3f}, P {s['dup_precision']:.3f} | "
        f"pHash ≤ 10: R {s['phash10_recall']:.3f}, P {s['phash10_precision']:.3f}"
        + ("" if s["phash_tuned"] == "phash<=10" else f"; pHash ≤ {s['phash_tuned'][7:]} (tuned): "
           f"R {s['phash_tuned_recall']:.3f}, P {s['phash_tuned_precision']:.3f}") + " | "
        f"{_ok(s['dup_recall'] >= 0.95 and s['dup_precision'] >= 0.95)} (photos) |",
        f"| off-topic AUROC ≥ 0.98 | {s['offtopic_auroc']:.4f} | cleanlab OOD {s['offtopic_auroc_cleanlab']:.4f} | "
        f"{_ok(s['offtopic_auroc'] >= 0.98)} |",
        f"| all broken and blank files found | broken {s['corrupt_found']}, blank {s['blank_found']} | – | "
        f"{_ok(s['corrupt_found'].split('/')[0] == s['corrupt_found'].split('/')[1] and s['blank_found'].split('/')[0] == s['blank_found'].split('/')[1])} |",
    ]
    if s["recovered_ours_relabel"] is not None:
        best = max(s["recovered_ours_relabel"], s["recovered_ours_drop"])
        lines.append(f"| retraining recovers ≥ 90 % of the accuracy lost to noise | relabel {s['recovered_ours_relabel']:.0%}, "
                     f"drop {s['recovered_ours_drop']:.0%} | cleanlab drop {s['recovered_cleanlab_drop']:.0%} | "
                     f"{_ok(best >= 0.9)} |")
    lines += ["", "## Label errors (same out-of-sample probabilities for all three)", "",
              "cleanlab = `cleanlab.filter.find_label_issues(labels, pred_probs)` (defaults), AUROC from "
              "`get_label_quality_scores`; loss = rank by −log p(given label), flag where the argmax differs. "
              "Ours = probabilities blended with 10-nearest-neighbour votes, two clean-and-re-learn passes, "
              "confident learning's count estimate (`cleaning/detect/label.py`). Mean ± std over seeds.", "",
              "| data | noise | F1 ours | F1 cleanlab | F1 loss | P / R ours | P / R cleanlab | AUROC ours | AUROC cleanlab | "
              "AUROC loss | suggestion right |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    df = pd.DataFrame(res["label"])
    for (pool, kind, rate), g in df.groupby(["pool", "noise", "rate"], sort=False):
        c = {m: pd.DataFrame(list(g[m])) for m in ("ours", "cleanlab", "loss")}
        lines.append(f"| {pool} (n={g['n'].iloc[0]}) | {kind} {rate:.0%} | {_m(c['ours']['f1'])} | {_m(c['cleanlab']['f1'])} | "
                     f"{_m(c['loss']['f1'])} | {c['ours']['precision'].mean():.2f} / {c['ours']['recall'].mean():.2f} | "
                     f"{c['cleanlab']['precision'].mean():.2f} / {c['cleanlab']['recall'].mean():.2f} | "
                     f"{_m(c['ours']['auroc'])} | {_m(c['cleanlab']['auroc'])} | {_m(c['loss']['auroc'])} | "
                     f"{c['ours']['suggestion_correct'].mean():.2f} |")
    if rt:
        lines += ["", "## Retraining after accepting the flags (fashion-MNIST)", "",
                  "A logistic head on the embeddings (the same head as `cleaning.model.oos`) trained on the noisy labels, "
                  "on the true labels (oracle), and after accepting the flags — relabelled to our suggestion, or "
                  "dropped — scored on 1,000 held-out clean fashion-MNIST test images. Recovered = (accuracy after − "
                  "noisy) / (oracle − noisy).", "",
                  "| noise | noisy | oracle | ours relabel | ours drop | cleanlab drop | recovered: relabel / drop / cleanlab |",
                  "|---|---|---|---|---|---|---|"]
        for (kind, rate), g in pd.DataFrame([{**r["retrain"], "noise": r["noise"], "rate": r["rate"]} for r in rt]).groupby(
                ["noise", "rate"], sort=False):
            lines.append(f"| {kind} {rate:.0%} | {g['noisy'].mean():.3f} | {g['oracle'].mean():.3f} | "
                         f"{g['ours_relabel'].mean():.3f} | {g['ours_drop'].mean():.3f} | {g['cleanlab_drop'].mean():.3f} | "
                         f"{g['recovered_ours_relabel'].mean():.0%} / {g['recovered_ours_drop'].mean():.0%} / "
                         f"{g['recovered_cleanlab_drop'].mean():.0%} |")
    lines += ["", "## Off-topic images", "", "Images of another source inserted with random labels "
              f"({res['offtopic_frac']:.0%} of the data set): colour photos of other things into the 7 photo classes; "
              "the same photos made grey 28×28 plus sklearn digits into fashion-MNIST. cleanlab OOD = "
              "`cleanlab.outlier.OutOfDistribution().fit_score(features=embeddings)`.", "",
              "| data | AUROC ours | AUROC cleanlab OOD | flags P / R ours | with the junk groups: P / R (groups, "
              "images in them) |", "|---|---|---|---|---|"]
    for pool, g in pd.DataFrame(res["offtopic"]).groupby("pool", sort=False):
        o = pd.DataFrame(list(g["ours"]))
        wj = pd.DataFrame(list(g["with_junk"])) if "with_junk" in g else None
        joined = (f"{wj['precision'].mean():.2f} / {wj['recall'].mean():.2f} ({wj['groups'].mean():.1f}, "
                  f"{wj['in_groups'].mean():.0f})") if wj is not None else "–"
        lines.append(f"| {pool} | {_m(o['auroc'])} | {_m([r['auroc'] for r in g['cleanlab_ood']])} | "
                     f"{o['precision'].mean():.2f} / {o['recall'].mean():.2f} | {joined} |")
    lines += ["", "## Duplicates (photos)", "", "45 near copies (one random transform each) and 15 exact copies "
              "planted among the 310 photos; pairs scored. pHash baseline = imagehash pHash pairs within the "
              f"Hamming threshold (imagededup's default 10; the best threshold on the tuning half was ≤ {s['phash_tuned'][7:]}).", "",
              "| method | precision | recall | " + " | ".join(f"recall {t}" for t in [*TRANSFORMS, "exact"]) + " |",
              "|---|---|---|" + "---|" * (len(TRANSFORMS) + 1)]
    for meth in dict.fromkeys(("ours", "phash<=10", s["phash_tuned"])):  # the tuned threshold may be 10
        rows = [r[meth] for r in res["duplicates"]]
        lines.append(f"| {meth.replace('<=', ' ≤ ')} | {_m([r['precision'] for r in rows])} | {_m([r['recall'] for r in rows])} | "
                     + " | ".join(f"{np.mean([r['recall_by_transform'][t] for r in rows]):.2f}" for t in [*TRANSFORMS, "exact"])
                     + " |")
    fp = sorted({p for r in res["duplicates"] for p in r["false_pairs_ours"]})
    lines += ["", f"Our false pairs: {', '.join(fp) or 'none'}."]
    lines += ["", "## End to end: `python -m cleaning scan` on a fresh tree", "",
              "A fashion-MNIST tree with everything planted at once (10 % symmetric label noise, 20 off-topic, "
              "15 near copies — JPEG q40, 2× upscale, 2-px crop, brightened — 10 exact copies of which 3 in "
              "another class, 5 broken files, 5 blank images), nothing cached in the workspace. Label rows on "
              "off-topic/blank/broken files are left out of the label precision. Seed 0 of this tree was used "
              "to decide that outliers are measured against the class the label detector supports (outlier "
              "P / R there 0.29 / 0.75 → 0.58 / 0.70); the row below is seed " + str(res["seeds"][0]) + ".", "",
              "| files | time | load | label P / R | outlier P / R | duplicates P / R | corrupt found | blank found |",
              "|---|---|---|---|---|---|---|---|"]
    for r in res["e2e"]:
        def pr(k: str, r: dict = r) -> str:
            return f"{r[k]['precision']:.2f} / {r[k]['recall']:.2f}"
        lines.append(f"| {r['n_files']} | {r['wall_s']:.0f} s | {r['load_before']:.1f}→{r['load_after']:.1f} | {pr('label')} | "
                     f"{pr('outlier')} | {pr('duplicates')} | {round(r['corrupt']['recall'] * r['corrupt']['planted'])}/"
                     f"{r['corrupt']['planted']} | {round(r['low_quality']['recall'] * r['low_quality']['planted'])}/"
                     f"{r['low_quality']['planted']} |")
    e2e = res["e2e"][0] if res.get("e2e") else None
    e2e_out = (f"{e2e['outlier']['precision']:.2f} / {e2e['outlier']['recall']:.2f}"
               if e2e and "outlier" in e2e else "–")
    met = s["recovered_ours_drop"] >= 0.9
    lines += ["", "## Notes and honest caveats", "",
              f"- Label errors: ours beats cleanlab's F1 in every setting ({s['label_f1_ratio']:.2f}× on average) and "
              f"leaves {s['auroc_residual_ratio']:.1f}× fewer ranking errors, but both targets (1.25×, 3×) are narrowly "
              "missed. The gain is largest with pair-flip noise, where a classifier learns the flip; with symmetric "
              "noise on the 184 photos the ranking is level with cleanlab's. Ours costs two out-of-sample fits "
              "(one re-learning pass) where cleanlab uses one.",
              "- Retraining: dropping our flags recovers "
              f"{s['recovered_ours_drop']:.0%} of the lost accuracy, relabelling to our suggestion "
              f"{s['recovered_ours_relabel']:.0%} (about one suggestion in seven is wrong, which re-adds noise); the "
              f"90 % target is {'met by dropping, not by relabelling' if met else 'not met'}. Retraining uses a "
              "logistic head on the embeddings.",
              "- Near duplicates: the target is met on colour photos. Tux Paint ships some stamps twice, drawn and "
              "flipped (`X`, `X_mirror`); a flip is the same picture (issue 9), so those pairs count as true (recall "
              "column `mirror` in `detect.json`). On fashion-MNIST (end to end) precision is lower: many products "
              "are near-identical 28×28 silhouettes, so genuine look-alikes are paired.",
              "- Off-topic: the AUROC is the per-image score of `compute_outlier_scores` without the classifier's "
              "probabilities. In the scan, look-alike off-topic images are found as junk groups (`junk.py`), which "
              f"this table does not measure; end to end on fashion-MNIST the scan's outlier rows are P / R {e2e_out}.",
              "- Every broken and blank file was found. The one extra low-quality flag end to end (seed 1) is a "
              "planted off-topic photo (a lightning bolt) that became a flat grey square at 28×28: it is blank.",
              "- Tuning: label-detector weights, k and the flag rule; outlier k and threshold; duplicate thresholds "
              "were chosen on the tuning split only (see the top); the test seeds were never used to choose them.",
              "", "## What moved since the 2026-11-27 run (re-run 2026-12-01, ninth session)", "",
              "This file had not been re-run since 2026-11-27; the issue 9 work (off-topic rule, junk groups, near-"
              "duplicate contract) changed these figures, and the photo benchmark (`photos.md`) was the one re-run. "
              "Bisected on the same cached embeddings (off-topic and duplicate parts): main at 1ae7206 (2026-11-30 "
              "20:22) still gave the 11-27 figures; 6603ef5 (2026-12-01 03:37, after the off-topic and near-duplicate "
              "merges of issue 9) gives today's.",
              "",
              "| figure | 11-27 | now | why |",
              "|---|---|---|---|",
              "| label F1 / ratio to cleanlab | 0.822 / 1.23× | 0.810 / 1.20× | one re-learning pass instead of two "
              "(better on real photos, `photos.md`) |",
              "| 1 − AUROC ratio | 2.93× | 2.72× | the same |",
              "| near duplicates P / R | 0.983 / 0.978 | 1.000 / 0.974 (0.937 / 0.983 before the mirrored stamps "
              "counted as copies) | flips are copies now (issue 9) |",
              "| off-topic AUROC (photo, fashion) | 0.9905 (0.986, 0.995) | 0.966 (0.973, 0.959) | the per-image score "
              "now averages `lonely`, `own` and `unfit`; the fashion off-topic images (grey photos, digits) are many "
              "and alike (AUROC of `lonely` alone 0.54, of `own` 0.993), which the scan leaves to the junk groups |",
              "| retraining recovered (drop) | 92 % | 87 % | fewer label flags at 10 % noise |",
              "| end to end outlier P / R (fashion) | 0.60 / 0.60 | 0.13 / 0.90 (12-01); 0.20 / 0.90 with the chance "
              "test (12-02) | junk groups in look-alike classes: sub-types of trousers, sandals, boots and "
              "coat/shirt/pullover muddles pass the junk rule |",
              "",
              "The last row is a regression of the scan on look-alike classes (issue 9 left open). Measured for the next "
              "step: a group's *separation* (its members' similarity to their nearest fellows minus to their nearest "
              "non-members) is −0.015 to 0.047 for the false groups here and on the photo sets, but 0.011 to 0.05 for "
              "the weaker true junk groups of the photo benchmark (vehicles), so no threshold on it keeps the photo "
              "junk recall; neither do `apart` z or `fit` z (true photo groups from z 0.66, fit 0.0). Also measured and not "
              "merged: leaving out a group the out-of-sample classifier *claims* (median probability of the members' own "
              "labels ≥ 0.5). On this table's clean-label fashion sets the false groups have 0.15–1.00 and the true ones "
              "0.00–0.24, and no photo-benchmark group is touched (true groups 0.01–0.44); but end to end (10 % label "
              "noise) the false muddles' own labels win only 20–67 % of the time, so outlier precision moved 0.13 → "
              "0.14; and a real junk island filed under *one* class is learnable by the classifier (sun photos → "
              "*dog*), so the rule could only ever apply to spread groups.",
              "",
              "**Tenth session (12-02): the chance test** (`junk.chance_of_spread`, merged). The false groups of the "
              "end-to-end scan are *correctly labelled* images (of 16 groups on seed 1, 13 hold no planted off-topic "
              "image and at most 3 wrong labels each): the overlap of look-alike classes. Their labels sit on a few "
              "related classes, where junk sent to every class by a query template looks like a random draw over the "
              "classes. A spread group is now junk only when a random draw of its size (the data set's class shares) "
              "would cover no more classes, or fill its fullest class as much, at least 5 % of the time. The 9-, 15- "
              "and 28-image muddles reach 0.000–0.043; every junk group of the photo and digit benchmarks (photo seeds "
              "1–10, 650 and 4,000 digits) ≥ 0.14, and all 30 photo sets give identical figures. End to end, seeds "
              "1 / 2 / 3: outlier precision 0.13 / 0.15 / 0.17 → **0.20 / 0.23 / 0.28** at the same recall (0.90 / "
              "0.90 / 0.95); label F1 0.754 / 0.710 / 0.775 → 0.745 / 0.706 / 0.779 (the muddles' members fall back to the "
              "label check). Groups of 3–9 images on 2–5 classes are too small for the test to tell and stay. Also "
              "measured this session and not separating: the members' similarity to their nearest non-members as a "
              "data-set z (fashion true 3.3–6.9 vs false ≤ 3.7, but the photo junk groups of sun photos and coins sit at "
              "−0.6–0.4), the share of members the classifier gives one class (true 0.33–1.00, false 0.33–1.00), and "
              "the class-pair affinity of the group's labels (true 0.026–0.094, false 0.012–0.11).",
              "",
              "**Eleventh session (12-02): a group holding most of a class is that class** (`junk.MAX_TAKE` = 0.5, "
              "merged). The off-topic table now also gives the flags joined with the junk groups the scan finds "
              "(without the classifier). On the clean 184-photo set the junk detector found a group of 17–18 ordinary "
              "images on every seed, 7 of them of the 9 insects: a varied class whose members sit nearer other classes "
              "than each other, spread over all 7 classes, and the chance test passed it (a random draw of 18 fills some "
              "class with 7 easily). A spread group may now hold at most half of any class's images. Photo, seeds "
              "1 / 2 / 3, flags with the junk groups: P 0.20 / 0.25 / 0.20 → 0.42 / 0.53 / 0.46 at the same recall "
              "(0.67 / 0.89 / 0.67); fashion and every figure of `photos.md` identical (junk filed round-robin there "
              "takes ≤ 20 % of any class). The remaining false groups here are 5–10 odd members of the small classes "
              "(3 of the 11 fish with an orca, an eggplant and a rose), which the scan's zero-shot check cannot clear: "
              "*fish* and *flower* are not known to the head (covers 0.55 and 0.36). The head's opinions on off-topic images "
              "(merged the same session, `photos.md`) leave every figure of this file as it was; end to end on "
              "fashion-MNIST too (0.20 / 0.90): 8 of its 10 class names reach ImageNet nouns, but on 28×28 grey images the head knows none of them "
              "(covers 0.00–0.58, the bar is 0.8).",
              "",
              "**Twelfth session (12-02): the label check may run on block 5 of the backbone** (merged). The scan "
              "embeds each image once through a backbone that also returns block 5's output, average-pooled (192-d), "
              "fits out-of-sample heads on both, and runs the label check on the block when its heads explain the "
              "given labels clearly better (`run.prefers_mid`: the paired per-image gain in log-probability of the "
              "given label is more than 2 standard errors); the off-topic side stays on the embedding. Here the "
              "label experiment does the same per noise setting, and cleanlab and the loss ranking get the "
              "probabilities of the chosen layer (so the F1 ratio compares methods, not features). Fashion-MNIST "
              "chose the block in 14 of 18 settings, the 184 photos in 5 of 18 (at 30 % noise or pair flips). "
              "Against the last run: label F1 0.811 → 0.814 (cleanlab on the same probabilities 0.677 → 0.685: "
              "1.20× → 1.19×), 1 − AUROC 2.73× → 2.93× smaller than cleanlab's, retraining after dropping the "
              "flags 88 % → **90 %** (relabelling 84 % → 87 %): the retraining target is met. Off-topic and "
              "duplicates unchanged; end to end (the scan itself, which chooses the same way) label P / R "
              "0.69 / 0.81 → 0.71 / 0.79, outliers unchanged, 13 → 16 s for 1,005 files (the second heads).",
              "",
              "**Thirteenth session (12-02): junk groups against the classes' cores; loose groups must be farther "
              "apart** (merged; `junk.py`, `photos.md`). Off-topic flags with the junk groups: on the 184 photos "
              "P / R 0.47 / 0.70 → 0.58 / 0.67 (one false group of 7 odd, loose members gone); on fashion-MNIST "
              "0.37 / 0.63 → 0.37 / 0.64, 13.0 → 14.3 groups per seed (a two-class overlap of four images whose "
              "chance, 0.069, is just above the bar, found now that its apartness is read against the classes' "
              "cores; and one more true group). Per-image scores, labels and duplicates unchanged; end to end "
              "label P / R 0.71 / 0.79 → 0.71 / 0.80, outliers 0.20 / 0.90 unchanged, 16 → 19 s for 1,005 files "
              "(load 2.2 → 2.0; run-to-run variation: the code before the change, run right after on the same machine, took 26 s).",
              "",
              "**Fourteenth session (12-02): three more uses of the backbone's ImageNet head** (merged; `semantic.py`, "
              "`outlier.py`, `photos.md`): an image it clearly sees any class of yours in is not off-topic; an image "
              "no class claims (blend under 0.5 for every class) is off-topic though not lonely where the head knows "
              "its class and sees none of it; a label flag is dropped where it prefers the given class twice over the "
              "suggestion. Every figure of this file is unchanged (end to end 19 → 18 s): the rules live in the scan's "
              "join of the checks, which the per-detector tables do not run, and fashion-MNIST's class names give the "
              "head no word on 28×28 grey images. Without the head's word on the unclaimed rule, the end-to-end "
              "outlier precision fell 0.20 → 0.18 (10 ambiguous shirts and pullovers flagged): that version was not "
              "merged."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small smoke run: 1 seed, 20 % noise, fewer images")
    ap.add_argument("--report", action="store_true", help="only rebuild detect.md from detect.json")
    args = ap.parse_args(argv)
    if args.report:
        res = json.loads((RESULTS / "detect.json").read_text())
        (RESULTS / "detect.md").write_text(report(res, summarise(res)))
        return 0
    t_wall, t_cpu, load0 = time.monotonic(), _cpu(), _load()
    items = build_items(args.quick)
    emb, mid = embed_items(items)
    seeds, rates = ([1], [0.2]) if args.quick else ([1, 2, 3], [0.1, 0.2, 0.3])
    res: dict = {"seeds": seeds, "rates": rates, "offtopic_frac": 0.05}
    res["label"] = (run_label(items, emb, "fashion_test", seeds, rates, retrain=True, per_class=30 if args.quick else 100,
                              mid=mid)
                    + run_label(items, emb, "photo", seeds, rates, retrain=False, mid=mid))
    res["offtopic"] = [r for pool, off in (("photo", "offtopic"), ("fashion_test", "fashion_off"))
                       for r in run_offtopic(items, emb, pool, off, seeds, res["offtopic_frac"])]
    res["duplicates_tune"] = run_duplicates(items, emb, [0], half=0)
    res["duplicates"] = run_duplicates(items, emb, seeds, half=1)
    res["e2e"] = [run_e2e(items, seeds[0], 30 if args.quick else 95)]
    res["machine"] = {"when": time.strftime("%Y-%m-%d"), "machine": f"{platform.system()} {platform.machine()}",
                      "cpus": len(__import__("os").sched_getaffinity(0)), "python": platform.python_version(),
                      "load_start": load0, "load_end": _load(),
                      "cpu_minutes": (_cpu() - t_cpu) / 60, "wall_minutes": (time.monotonic() - t_wall) / 60}
    summary = summarise(res)
    res["summary"] = summary
    text = report(res, summary)
    where = OUT if args.quick else RESULTS
    where.mkdir(parents=True, exist_ok=True)
    (where / ("detect-quick.md" if args.quick else "detect.md")).write_text(text)
    (where / ("detect-quick.json" if args.quick else "detect.json")).write_text(json.dumps(res, indent=1, default=float))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
