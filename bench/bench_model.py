"""Benchmark of the model side: embedding speed per method, out-of-sample cost 250→4,000 images,
projection and fine-tuning time. Writes bench/results/model.md.

    python bench/bench_model.py [--quick] [--out bench/results/model.md]

Real images only: Tux Paint stamps (Debian ``tuxpaint-stamps-default``) re-saved as 800 px JPEGs for
decode realism, and Fashion-MNIST (Debian ``dataset-fashion-mnist``) for the 250→4,000 scaling.
"""

from __future__ import annotations

import gzip
import struct
import time
from pathlib import Path

import numpy as np
from PIL import Image

TUX = Path("/usr/share/tuxpaint/stamps")
FMNIST = Path("/usr/share/datasets/fashion-mnist")
FMNIST_CLASSES = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]
TUX_CLASSES = {"bird": "animals/birds", "mammal": "animals/mammals", "fish": "animals/fish",
               "insect": "animals/insects", "fruit": "food/fruit", "vegetable": "food/vegetables"}


def _flatten(path: Path) -> Image.Image:
    im = Image.open(path).convert("RGBA")
    bg = Image.new("RGB", im.size, (255, 255, 255))
    bg.paste(im, mask=im.getchannel("A"))
    return bg


def make_tux_tree(out: Path, side: int | None = None) -> Path:
    """ROOT/<class>/<stamp>.jpg from Tux Paint photo stamps (cartoons and _back variants skipped)."""
    for label, sub in TUX_CLASSES.items():
        (out / label).mkdir(parents=True, exist_ok=True)
        for p in sorted((TUX / sub).rglob("*.png")):
            if "_back" in p.name or "cartoon" in p.parts:
                continue
            im = _flatten(p)
            if side:
                im = im.resize((side, max(1, round(side * im.height / im.width))), Image.Resampling.BICUBIC)
            im.save(out / label / f"{p.stem}.jpg", quality=90)
    return out


def load_fashion(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` Fashion-MNIST images (n×28×28 uint8) and labels, balanced by a seeded shuffle."""
    with gzip.open(FMNIST / "train-images-idx3-ubyte.gz") as f:
        _, count, rows, cols = struct.unpack(">IIII", f.read(16))
        images = np.frombuffer(f.read(), np.uint8).reshape(count, rows, cols)
    with gzip.open(FMNIST / "train-labels-idx1-ubyte.gz") as f:
        f.read(8)
        labels = np.frombuffer(f.read(), np.uint8)
    idx = np.random.default_rng(seed).permutation(len(labels))[:n]
    return images[idx], labels[idx]


def make_fashion_tree(out: Path, n: int, seed: int = 0) -> Path:
    """ROOT/<class>/fm_<i>.png with ``n`` Fashion-MNIST images (28×28 grey)."""
    images, labels = load_fashion(n, seed)
    for i, (im, y) in enumerate(zip(images, labels)):
        d = out / FMNIST_CLASSES[y]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(im).save(d / f"fm_{i:05d}.png")
    return out


# ---- measuring -------------------------------------------------------------------------------------
def machine() -> str:
    import os
    import platform

    import onnxruntime
    import torch

    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    return (f"{cpu}, {os.cpu_count()} cores, {platform.python_version()}, torch {torch.__version__}, "
            f"onnxruntime {onnxruntime.__version__}")


def load() -> str:
    import os

    return "load {:.1f}/{:.1f}/{:.1f}".format(*os.getloadavg())


def bench_embedding(images: list[Path], sizes: tuple[int, ...] = (224,)) -> list[dict]:
    """img/s of each method on real JPEGs (decode + resize + model), engines warmed up first."""
    from cleaning.model.embed import embed_images, get_engine, load_for_model

    rows = []
    t = time.perf_counter()
    for p in images:
        load_for_model(p, 224)
    rows.append({"method": "decode + resize only (1 thread)", "size": 224, "threads": 1,
                 "img_s": len(images) / (time.perf_counter() - t), "load": load()})
    for size in sizes:
        for method, threads in (("eager", 1), ("eager", 2), ("channels_last", 2), ("onnx", 1), ("onnx", 2)):
            if size != 224 and method != "onnx":
                continue
            get_engine(size=size, method=method, threads=threads)
            embed_images(images[:8], size=size, method=method, threads=threads)
            t = time.perf_counter()
            embed_images(images, size=size, method=method, threads=threads)
            rows.append({"method": method, "size": size, "threads": threads,
                         "img_s": len(images) / (time.perf_counter() - t), "load": load()})
            print(rows[-1], flush=True)
    return rows


def bench_oos(work: Path, counts: tuple[int, ...]) -> list[dict]:
    """End to end on fresh Fashion-MNIST trees: scan, embed, out-of-sample heads, UMAP."""
    from cleaning.data.workspace import Workspace
    from cleaning.model.embed import load_or_compute_embeddings
    from cleaning.model.oos import load_or_compute_oos
    from cleaning.model.projection import load_or_compute_projection

    rows = []
    for n in counts:
        root = make_fashion_tree(work / f"fm{n}" / "data", n)
        t0 = time.perf_counter()
        ws = Workspace.open(root)
        t1 = time.perf_counter()
        load_or_compute_embeddings(ws)
        t2 = time.perf_counter()
        oos = load_or_compute_oos(ws)
        t3 = time.perf_counter()
        load_or_compute_projection(ws)
        t4 = time.perf_counter()
        y = np.array([oos.vocab.index(v) for v in oos.labels])
        rows.append({"n": n, "scan": t1 - t0, "embed": t2 - t1, "oos_heads": t3 - t2, "umap": t4 - t3,
                     "to_oos": t3 - t0, "oos_acc": float((oos.pred_probs.argmax(1) == y).mean()), "load": load()})
        print(rows[-1], flush=True)
    return rows


def bench_train(root: Path, settings_list: list) -> list[dict]:
    from cleaning.data.workspace import Workspace
    from cleaning.model.train import train_workspace

    rows = []
    for s in settings_list:
        ws = Workspace.open(root)
        t = time.perf_counter()
        rec, res = train_workspace(ws, s)
        rows.append({"images": rec.n_train + rec.n_valid, "size": s.size, "epochs": f"{s.freeze_epochs}+{s.epochs}",
                     "seconds": time.perf_counter() - t, "per_epoch": [round(h["seconds"], 1) for h in res.history],
                     "accuracy": rec.accuracy, "load": load()})
        print(rows[-1], flush=True)
    return rows


def report(machine_s: str, emb: list[dict], oos: list[dict], train: list[dict]) -> str:
    out = [f"# Model benchmark\n\nMachine: {machine_s}. Shared with other jobs: the load average is given "
           "with every number (2 cores: load > 2 means we had less than the whole machine).\n",
           "## Embedding speed (EfficientNet-Lite0, real 800 px JPEGs: decode + resize + model)\n",
           "| method | input px | threads | images/s | load |", "|---|---|---|---|---|"]
    out += [f"| {r['method']} | {r['size']} | {r['threads']} | {r['img_s']:.1f} | {r['load']} |" for r in emb]
    out += ["\n## Out-of-sample probabilities, end to end (Fashion-MNIST, 10 classes, fresh workspace)\n",
            "Seconds. *to OOS* = scan + embed + 5-fold heads: the time from a new folder to a probability for "
            "every image. UMAP is extra (the map).\n",
            "| images | scan | embed | 5-fold heads | **to OOS** | UMAP | OOS accuracy | load |",
            "|---|---|---|---|---|---|---|---|"]
    out += [f"| {r['n']} | {r['scan']:.1f} | {r['embed']:.1f} | {r['oos_heads']:.1f} | **{r['to_oos']:.1f}** | "
            f"{r['umap']:.1f} | {r['oos_acc']:.3f} | {r['load']} |" for r in oos]
    if train:
        out += ["\n## Fine-tuning with fastai (Tux Paint photos, 6 classes, CPU)\n",
                "| images | px | epochs (head+all) | seconds | per epoch | val. accuracy | load |",
                "|---|---|---|---|---|---|---|"]
        out += [f"| {r['images']} | {r['size']} | {r['epochs']} | {r['seconds']:.0f} | {r['per_epoch']} | "
                f"{r['accuracy']:.3f} | {r['load']} |" for r in train]
    return "\n".join(out) + "\n"


def main() -> None:
    import argparse
    import tempfile

    from cleaning.model.train import TrainSettings

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes only (a smoke run)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "model.md"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tux = make_tux_tree(work / "tux" / "data")
        jpegs = make_tux_tree(work / "tux800" / "data", side=800)
        images = sorted(jpegs.rglob("*.jpg"))[: 40 if args.quick else 160]
        emb = bench_embedding(images, (224,) if args.quick else (224, 160, 128))
        oos = bench_oos(work, (250,) if args.quick else (250, 1000, 2000, 4000))
        train = bench_train(tux, [TrainSettings(epochs=1, freeze_epochs=0, size=64)] if args.quick else
                            [TrainSettings(), TrainSettings(size=224)])
    text = report(machine(), emb, oos, train)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
