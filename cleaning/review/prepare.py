"""Cold start: compute what a review needs (embeddings via the ONNX backbone, out-of-sample predictions,
the issue table, the map) before a visitor asks for it.

* :func:`warm_workspace` — everything a review page would otherwise compute on first use, with steps.
* :func:`demo_template` — the bundled demo, warmed once per server under ``SCRATCH/_demo``; a hosted
  visitor's demo is a copy of it (:func:`cleaning.data.hosted.copy_workspace`), so it opens in about a
  second instead of embedding 130 images again (≈ 20–80 s on 2 shared cores).
* :func:`start_warming` — the same in a background thread, started by the first page view of a server.

``python -m cleaning.review.prepare [SCRATCH]`` warms the demo template ahead of time (e.g. in a build step).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..data.demo import prepare_demo
from ..data.workspace import Workspace
from ..errors import CleaningError

_lock = threading.Lock()
_started: set[str] = set()


def warm_workspace(ws: Workspace, steps: Callable[[str], None] | None = None) -> None:
    """Compute and cache the embeddings, out-of-sample predictions, issue table and UMAP map of ``ws``.

    Raises:
        CleaningError: the backbone is unavailable (nothing else can be computed then).
    """
    from ..model.projection import load_or_compute_projection
    from .analysis import load_or_compute_predictions, load_or_find_issues

    say = steps or (lambda _t: None)
    say("Embedding the images (the backbone is exported to ONNX first, once per server)…")
    load_or_compute_predictions(ws)
    say("Finding issues…")
    load_or_find_issues(ws)
    say("Drawing the map…")
    load_or_compute_projection(ws, "umap")


def demo_template(scratch_root: str | Path, steps: Callable[[str], None] | None = None,
                  warm: bool = True) -> Path:
    """The demo's ROOT under ``SCRATCH/_demo`` with its provenance and, when ``warm``, every cache filled
    (once per server; later calls return at once). Thread-safe: a second caller waits for the first."""
    home = Path(scratch_root) / "_demo"
    ready = home / "ready"
    with _lock:
        root = prepare_demo(home)
        if ready.exists() or not warm:
            return root
        ws = Workspace.open(root)
        try:
            warm_workspace(ws, steps)
        except CleaningError:
            return root  # no model here: the demo still opens and the review pages say why
        finally:
            ws.store.checkpoint()
            ws.store.close()
        ready.write_text(time.strftime("%Y-%m-%dT%H:%M:%S"), encoding="utf-8")
        return root


def start_warming(scratch_root: str | Path) -> bool:
    """Warm the demo template in a daemon thread, once per process and scratch root. True if started now."""
    key = str(Path(scratch_root).resolve())
    with _lock:
        if key in _started or (Path(scratch_root) / "_demo" / "ready").exists():
            return False
        _started.add(key)
    threading.Thread(target=demo_template, args=(scratch_root,), name="warm-demo", daemon=True).start()
    return True


if __name__ == "__main__":
    from ..data.hosted import default_scratch_root

    t0 = time.perf_counter()
    where = Path(sys.argv[1]) if len(sys.argv) > 1 else default_scratch_root()
    print(demo_template(where, steps=print), f"ready in {time.perf_counter() - t0:.1f} s")
