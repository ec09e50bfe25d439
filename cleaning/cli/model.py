"""CLI sub-commands of the model side: ``train`` and ``embed`` .

    python -m cleaning train ROOT [--arch tf_efficientnet_lite0] [--epochs N] [--json METRICS.json]
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


def _open(args: argparse.Namespace) -> Any:
    from ..data.workspace import Workspace

    return Workspace.open(args.root, state_dir=args.state_dir)


class _BatchLine:
    """Per-batch progress on one rewritten line when stderr is a terminal; per-epoch lines always."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()

    def __call__(self, ev: Any) -> None:
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
    from ..model.train import TrainSettings, train_workspace

    ws = _open(args)
    settings = TrainSettings(arch=args.arch, epochs=args.epochs, freeze_epochs=args.freeze_epochs,
                             size=args.size, batch_size=args.batch_size, valid_pct=args.valid_pct,
                             lr=args.lr, seed=args.seed)
    n = int((~ws.items_frame()["deleted"]).sum())
    _say(f"training {args.arch} on {n} images ({len(ws.vocab)} classes) at {args.size}px: "
         f"{args.freeze_epochs} head epoch(s) + {args.epochs} full epoch(s)")
    record, result = train_workspace(ws, settings, on_progress=_BatchLine())
    m = result.metrics
    _say(f"run {record.run_id}: validation accuracy {m['accuracy']:.3f} "
         f"({m['n_train']} train / {m['n_valid']} valid images, {m['seconds']:.0f}s)")
    for label, pc in m["per_class"].items():
        prec = "-" if pc["precision"] is None else f"{pc['precision']:.2f}"
        rec = "-" if pc["recall"] is None else f"{pc['recall']:.2f}"
        _say(f"  {label}: precision {prec}, recall {rec}, support {pc['support']}")
    _say(f"model: {result.model_path}")
    if args.json:
        out = {k: m[k] for k in ("accuracy", "n_train", "n_valid", "arch", "run_id", "valid_loss", "seconds",
                                 "vocab", "per_class", "confusion", "settings")}
        out["model_path"] = str(result.model_path)
        out["dataset_version"] = record.dataset_version
        Path(args.json).write_text(json.dumps(out, indent=2), encoding="utf-8")
        _say(f"metrics: {args.json}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from ..model.embed import load_or_compute_embeddings
    from ..model.oos import load_or_compute_oos
    from ..model.projection import load_or_compute_projection

    ws = _open(args)
    tty = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if tty:
            print(f"\r  embedding {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)

    t = time.time()
    emb = load_or_compute_embeddings(ws, include_deleted=args.projection != "none", progress=progress)
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
    """Add ``train`` and ``embed`` to the CLI's sub-parsers."""
    p = add_root_command(sub, "train", "fine-tune a pretrained classifier on the current labels (works offline)")
    p.add_argument("--arch", default=DEFAULT_ARCH, choices=list(ARCHS),
                   help=f"backbone (default {DEFAULT_ARCH}: offline; resnet18/34 need the internet once)")
    p.add_argument("--epochs", type=int, default=2, help="epochs with the whole network trained (default 2)")
    p.add_argument("--freeze-epochs", type=int, default=1, help="head-only epochs first (default 1)")
    p.add_argument("--size", type=int, default=128, help="input size in pixels (default 128)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--valid-pct", type=float, default=0.2, help="validation share (default 0.2)")
    p.add_argument("--lr", type=float, default=2e-3, help="learning rate (default 2e-3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="METRICS.json", default=None, help="also write the metrics as JSON")
    p.set_defaults(func=cmd_train)
    p = add_root_command(sub, "embed", "compute and cache embeddings, out-of-sample probabilities and the 2-D map")
    p.add_argument("--projection", default="umap", choices=["umap", "tsne", "none"],
                   help="2-D map method (default umap)")
    p.set_defaults(func=cmd_embed)
