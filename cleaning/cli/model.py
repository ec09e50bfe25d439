"""CLI sub-commands of the model side: ``train``, ``predict`` and ``embed``.

    python -m cleaning train ROOT [--mode quick|full] [--epochs N] [--json METRICS.json]
    python -m cleaning predict ROOT --image FILE [--run ID] [--json]
    python -m cleaning predict ROOT --model export.pkl [--map MODEL_CLASS=DATASET_CLASS ...]
    python -m cleaning embed ROOT [--projection umap|tsne|none]

Both work offline. Errors the user can fix are raised as CleaningError and printed as one line by
:mod:`cleaning.cli`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..model.backbone import ARCHS, DEFAULT_ARCH
from . import add_root_command
from . import say as _say
from .scan import add_engine_arguments


def _open(args: argparse.Namespace) -> Any:
    from ..data.workspace import Workspace

    return Workspace.open(args.root, state_dir=args.state_dir)


class _BatchLine:
    """Per-batch progress on one rewritten line when stderr is a terminal; per-epoch lines always."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()

    def __call__(self, ev: Any) -> None:
        if ev.kind == "features":
            if self.tty:
                print(f"\r  probe features {ev.batch}/{ev.n_batches}   ", end="", file=sys.stderr, flush=True)
            return
        if ev.kind == "probe":
            if self.tty:
                print("\r" + " " * 70 + "\r", end="", file=sys.stderr, flush=True)
            _say(f"linear probe: valid loss {ev.valid_loss:.4f}, accuracy {ev.accuracy:.3f} ({ev.seconds:.1f}s)")
            return
        if ev.kind == "batch":
            if self.tty:
                print(f"\r  epoch {ev.epoch + 1}/{ev.n_epochs} ({ev.stage}) batch {ev.batch}/{ev.n_batches} "
                      f"loss {ev.loss:.3f}   ", end="", file=sys.stderr, flush=True)
            return
        if self.tty:
            print("\r" + " " * 70 + "\r", end="", file=sys.stderr, flush=True)
        _say(f"epoch {ev.epoch + 1}/{ev.n_epochs} ({ev.stage}): train loss {ev.loss:.4f}, "
             f"valid loss {ev.valid_loss:.4f}, accuracy {ev.accuracy:.3f} ({ev.seconds:.1f}s)")


def cmd_train(args: argparse.Namespace) -> int:
    from ..model.train import TrainSettings
    from ..model.trainrun import train_workspace

    ws = _open(args)
    settings = TrainSettings(arch=args.arch, mode=args.mode, epochs=args.epochs, freeze_epochs=args.freeze_epochs,
                             size=args.size or None, batch_size=args.batch_size, valid_pct=args.valid_pct,
                             lr=args.lr, lr_find=args.lr_find, seed=args.seed)
    n = int((~ws.items_frame()["deleted"]).sum())
    what = ("linear probe only" if args.mode == "quick" else
            f"probe, then fine-tuning for at most {args.epochs} epoch(s) with early stopping")
    _say(f"training {args.arch} on {n} images ({len(ws.vocab)} classes) at "
         f"{f'{args.size}px' if args.size else 'the images’ size (64–128 px)'}: {what}")
    record, result = train_workspace(ws, settings, on_progress=_BatchLine())
    m = result.metrics
    if result.model_path is None:
        _say(f"run {record.run_id}: stopped before a model existed")
        return 1
    ft = "" if m.get("finetune_accuracy") is None else f", fine-tuned {m['finetune_accuracy']:.3f}"
    _say(f"run {record.run_id}: validation accuracy {m['accuracy']:.3f} (probe {m['probe_accuracy']:.3f}{ft}; "
         f"kept the {m['chosen']}) on the fixed evaluation set {m['eval_set']} "
         f"({m['n_train']} train / {m['n_valid']} valid images, {m['seconds']:.0f}s)")
    for label, pc in m["per_class"].items():
        prec = "-" if pc["precision"] is None else f"{pc['precision']:.2f}"
        rec = "-" if pc["recall"] is None else f"{pc['recall']:.2f}"
        _say(f"  {label}: precision {prec}, recall {rec}, support {pc['support']}")
    _say(f"model: {result.model_path}")
    if args.json:
        out = {k: m[k] for k in ("accuracy", "n_train", "n_valid", "arch", "run_id", "valid_loss", "seconds",
                                 "vocab", "per_class", "confusion", "settings", "probe_accuracy", "eval_set",
                                 "finetune_accuracy", "chosen", "mode", "lr")}
        out["model_path"] = str(result.model_path)
        out["dataset_version"] = record.dataset_version
        out["status"] = record.status
        Path(args.json).write_text(json.dumps(out, indent=2), encoding="utf-8")
        _say(f"metrics: {args.json}")
    return 0


def _mapping(pairs: list[str] | None) -> dict[str, str]:
    from ..errors import CleaningError

    out = {}
    for p in pairs or []:
        if "=" not in p:
            raise CleaningError(f"--map {p!r} is not MODEL_CLASS=DATASET_CLASS")
        k, v = p.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def cmd_predict(args: argparse.Namespace) -> int:
    from ..errors import CleaningError
    from ..model.predict import foreign_predictions, load_model, predict_image
    from ..model.runs import get_run, list_runs

    ws = _open(args)
    if not args.image and not args.model:
        raise CleaningError("nothing to predict", hint="give --image FILE and/or --model export.pkl")
    if args.image:
        if args.model:
            path, source = args.model, Path(args.model).name
        else:
            runs = [get_run(ws, args.run)] if args.run else [r for r in list_runs(ws) if r.model_path]
            if not runs or not runs[0].model_path:
                raise CleaningError("no trained model to predict with" if not args.run else
                                    f"run {args.run} has no model (it was stopped before one existed)",
                                    hint=f"train one first: python -m cleaning train {args.root}")
            path, source = runs[0].model_path, f"run {runs[0].run_id}"
        preds = predict_image(load_model(path), args.image, k=3)
        if args.json:
            print(json.dumps({"predictions": preds}), flush=True)
        else:
            _say(f"{args.image} ({source}):")
            for p in preds:
                _say(f"  {p['label']}: {p['probability']:.1%}")
        return 0
    fp = foreign_predictions(ws, args.model, _mapping(args.map))
    labels = dict(zip(ws.items_frame()["item_id"], ws.items_frame()["label"]))
    agree = fp.agreement([labels[i] for i in fp.item_ids])
    shown = {k: v for k, v in fp.mapping.items() if k != v}
    _say(f"{fp.model_name}: predicted {len(fp.item_ids)} images; agrees with the current label for {agree:.1%}")
    if shown:
        _say("class mapping (model → data set): " + ", ".join(f"{k} → {v}" for k, v in shown.items()))
    _say("note: a model trained on these very images has seen them; its agreement is not out-of-sample. "
         "Its confident disagreements now show in the scan and on the Train page.")
    if args.json:
        print(json.dumps({"model": fp.model_name, "n": len(fp.item_ids), "agreement": agree, "mapping": fp.mapping}),
              flush=True)
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from ..model.embed import load_or_compute_embeddings
    from ..model.oos import load_or_compute_oos
    from ..model.projection import load_or_compute_projection
    from .progress import StageProgress, counting

    ws = _open(args)
    bar = StageProgress()
    t = time.time()
    emb = load_or_compute_embeddings(ws, include_deleted=args.projection != "none",
                                     progress=counting(bar, "embedding" + (" on Ray" if args.engine == "ray" else "")),
                                     engine=args.engine, address=args.address, workers=args.workers)
    bar.close()
    live = load_or_compute_embeddings(ws)  # cached rows only: no new work
    _say(f"embeddings: {len(live.item_ids)} images × {live.embeddings.shape[1]} ({time.time() - t:.1f}s)")
    for iid, reason in emb.errors.items():
        _say(f"  left out {iid}: {reason}")
    t = time.time()
    oos = load_or_compute_oos(ws)
    agree = float((oos.pred_probs.argmax(1) == [oos.vocab.index(v) for v in oos.labels]).mean()) if oos.labels else 0.0
    _say(f"out-of-sample probabilities: {len(oos.item_ids)} × {len(oos.vocab)}, "
         f"agree with the label for {agree:.1%} ({time.time() - t:.1f}s)")
    if args.projection != "none":
        t = time.time()
        proj = load_or_compute_projection(ws, method=args.projection)
        _say(f"{args.projection} map: {len(proj.item_ids)} points ({time.time() - t:.1f}s)")
    _say(f"cached in {ws.cache_dir}")
    return 0


def register(sub: Any) -> None:
    """Add ``train``, ``predict`` and ``embed`` to the CLI's sub-parsers."""
    p = add_root_command(sub, "train", "train a classifier on the current labels: a linear probe (quick) or a "
                                       "fine-tune warm-started from it (full); works offline")
    p.add_argument("--arch", default=DEFAULT_ARCH, choices=list(ARCHS),
                   help=f"backbone (default {DEFAULT_ARCH}: offline; resnet18/34 need the internet once)")
    p.add_argument("--mode", default="full", choices=["quick", "full"],
                   help="quick: linear probe on the pretrained features (seconds); full (default): fine-tune the "
                        "whole network from that probe, keep whichever is better on validation (minutes)")
    p.add_argument("--epochs", type=int, default=8, help="most fine-tuning epochs; stops earlier when the "
                                                          "validation loss stops improving (default 8)")
    p.add_argument("--freeze-epochs", type=int, default=0, help="head-only epochs before unfreezing (default 0)")
    p.add_argument("--size", type=int, default=128, help="input size in pixels (default 128; 0: the images' "
                                                         "typical size, 64–128)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--valid-pct", type=float, default=0.2,
                   help="size of the fixed evaluation set, chosen on the first run (default 0.2)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 1e-3, the body a tenth)")
    p.add_argument("--lr-find", action="store_true", help="pick the learning rate with a short lr_find sweep")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="METRICS.json", default=None, help="also write the metrics as JSON")
    p.set_defaults(func=cmd_train)
    p = add_root_command(sub, "predict", "top-3 classes of an image from a run's model, or load your own "
                                         "exported fastai learner as an extra opinion")
    p.add_argument("--image", metavar="FILE", default=None, help="an image file to classify")
    p.add_argument("--run", metavar="ID", default=None, help="the run whose model to use (default: the latest)")
    p.add_argument("--model", metavar="export.pkl", default=None,
                   help="your own learner (learn.export()); without --image: predict every image of ROOT with "
                        "it. A pickle: load only files you trust")
    p.add_argument("--map", action="append", metavar="MODEL_CLASS=DATASET_CLASS",
                   help="map a class of your model onto one of the data set (repeatable)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_predict)
    p = add_root_command(sub, "embed", "compute and cache embeddings, out-of-sample probabilities and the 2-D map")
    p.add_argument("--projection", default="umap", choices=["umap", "tsne", "none"],
                   help="2-D map method (default umap)")
    add_engine_arguments(p)
    p.set_defaults(func=cmd_embed)
