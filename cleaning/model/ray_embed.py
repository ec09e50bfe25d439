"""The embedding step as a Ray Data job: one backbone session per worker actor, results into the cache.

Called by :func:`cleaning.model.embed.load_or_compute_embeddings` with ``engine="ray"``. The driver
lists the images still missing from the content-keyed cache; Ray Data splits them into batches,
each worker actor (:class:`_Embedder`, one CPU, one backbone runtime with one thread: OpenVINO, else
ONNX Runtime) decodes its batch from ROOT and embeds it with exactly the local engine's code (:func:`embed_images`), and
the driver streams the results back into :class:`~cleaning.data.cache.EmbeddingTable`, writing a
part file every ``chunk`` rows. Workers must be able to read ROOT's files at the same absolute paths
(a shared file system; see ``docs/SCALE.md``). The package itself is shipped to the workers.

Batches are sized for the worker's memory: ONNX Runtime's activations for EfficientNet-Lite0 at
224 px take about :data:`BYTES_PER_IMAGE` per image of a batch, so a worker with M bytes gets
batches of ``M / 2 / BYTES_PER_IMAGE`` images, between 8 and 64.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..cpus import n_cpus
from ..data.cache import EmbeddingTable
from ..errors import CleaningError

#: Measured peak memory per image of a batch in a worker (ORT arena ≈ 800 MB at batch 32, 224 px).
BYTES_PER_IMAGE = 25 * 2**20
MIN_BATCH, MAX_BATCH = 8, 64


class _Embedder:
    """A Ray Data actor: loads the backbone once, then embeds batches of paths."""

    def __init__(self, arch: str, size: int | None, tap: bool = False) -> None:
        from .engines import get_engine

        self.arch, self.size, self.tap = arch, size, tap
        get_engine(arch, size, threads=1)  # one session per actor, loaded once (the tapped model, as embed_images)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from .engines import embed_images

        res = embed_images([str(p) for p in batch["path"]], self.arch, self.size, threads=1, tap=self.tap)
        err = np.array([res.errors.get(i, "") for i in range(len(batch["path"]))], dtype=object)
        mid = res.mid if res.mid is not None else np.zeros((len(err), 0), np.float32)
        return {"i": np.asarray(batch["i"]), "emb": res.embeddings, "mid": mid, "error": err}


def batch_size_for(memory_bytes: float) -> int:
    """Images per batch for a worker with ``memory_bytes`` (half of it for activations)."""
    return int(min(MAX_BATCH, max(MIN_BATCH, memory_bytes / 2 / BYTES_PER_IMAGE)))


def _start(address: str | None, workers: int | None) -> bool:
    """Connect to (or start) Ray; True when this call started it (and should shut it down)."""
    import ray

    if ray.is_initialized():
        return False
    package = str(Path(__file__).resolve().parent.parent)
    kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                                  runtime_env={"py_modules": [package]})
    if address:
        kwargs["address"] = address
    else:
        kwargs["num_cpus"] = workers or n_cpus()
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise CleaningError(f"cannot connect to Ray at {address or 'a new local instance'}: {e}",
                            hint="start the cluster (ray start --head) or check --address") from e
    return True


def embed_with_ray(table: EmbeddingTable, shas: Sequence[str], paths: Sequence[str | Path], arch: str,
                   size: int | None, address: str | None = None, workers: int | None = None,
                   progress: Callable[[int, int], None] | None = None, chunk: int = 2048,
                   batch_size: int | None = None, side: EmbeddingTable | None = None) -> None:
    """Embed ``paths`` (contents ``shas``) on Ray and add the rows / failures to ``table`` (and the tapped
    block's rows to ``side`` when given: :func:`cleaning.model.embed.load_or_compute_embeddings`).

    Raises:
        CleaningError: Ray not installed or not reachable.
    """
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise CleaningError("Ray is not installed", hint="pip install 'ray[data]==2.60.0'") from e
    started = _start(address, workers)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n_workers = max(1, min(workers or cpus, cpus))
        mem = float(ray.cluster_resources().get("memory", 4 * 2**30)) / n_workers
        bs = batch_size or batch_size_for(mem)
        items = [{"i": i, "path": str(p)} for i, p in enumerate(paths)]
        ds = ray.data.from_items(items, override_num_blocks=max(1, min(len(items), max(4 * n_workers, len(items) // bs))))
        out = ds.map_batches(_Embedder, fn_constructor_kwargs={"arch": arch, "size": size, "tap": side is not None},
                             batch_size=bs, concurrency=n_workers, num_cpus=1, batch_format="numpy")
        done = since = 0
        for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
            idx = np.asarray(batch["i"], dtype=np.int64)
            err = np.asarray(batch["error"], dtype=object)
            ok = np.array([e == "" for e in err], dtype=bool)
            failed = {shas[i]: str(e) for i, e in zip(idx[~ok], err[~ok])}
            if side is not None:
                side.add([shas[i] for i in idx[ok]], np.asarray(batch["mid"])[ok], failed=failed)
            table.add([shas[i] for i in idx[ok]], np.asarray(batch["emb"])[ok], failed=failed)
            done += len(idx)
            since += len(idx)
            if since >= chunk:
                if side is not None:
                    side.save_part()
                table.save_part()
                since = 0
            if progress:
                progress(done, len(paths))
        if side is not None:
            side.save_part()
        table.save_part()
    finally:
        if started:
            ray.shutdown()
