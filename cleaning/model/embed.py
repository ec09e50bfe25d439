"""Image embeddings from a pretrained backbone: N×D float32, L2-normalised rows.

Encode once, query cheaply: the scan, the detectors and the projection all reuse these vectors:
:func:`load_or_compute_embeddings` keeps them in the workspace cache, one row per image content
(sha256) and model, so adding an image embeds one image and relabelling or deleting embeds none.

Speed on 2 CPU cores (``bench/bench_model.py``, ``bench/results/fastdup.md``): ONNX Runtime is ~4× faster than
eager torch for EfficientNet-Lite0, and OpenVINO on the same ONNX file ~1.7× faster than ONNX Runtime with the same
embeddings, so ``method="auto"`` exports the backbone to ONNX once (cached next to the converted weights) and runs
it with OpenVINO in float32, else ONNX Runtime, else torch ``channels_last``.
Decoding and the model run in one lane per CPU, each lane decoding and embedding its own batch
(:func:`cleaning.model.engines._lanes`); a caller may measure other things from that same decode
(``on_decoded``: the scan's pixel statistics).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..data.cache import EmbeddingTable, fingerprint
from ..errors import CleaningError
from .backbone import DEFAULT_ARCH, arch_spec, model_id
from .engines import (  # noqa: F401  (re-exported: the embedding API lives here for callers)
    METHODS,
    PREPROCESS_VERSION,
    EmbedResult,
    Engine,
    OnDecoded,
    OnnxEngine,
    Progress,
    TorchEngine,
    compute_embeddings,
    embed_images,
    engines_in_use,
    get_engine,
    l2_normalise,
    load_for_model,
    n_cpus,
    onnx_file,
    open_for_model,
    square,
    to_array,
)

if TYPE_CHECKING:
    from PIL import Image

    from ..data.workspace import Workspace


@dataclass
class Embedded:
    """Embeddings aligned to ``item_ids`` (rows of ``ws.items_frame()`` that could be embedded)."""

    item_ids: list[str]
    embeddings: np.ndarray  # N×D float32, L2-normalised
    model_key: str  # fingerprint of model + preprocessing: part of every downstream cache key
    errors: dict[str, str] = field(default_factory=dict)  # item_id -> why it was left out
    mid: np.ndarray | None = None  # N×tap_dim, the backbone's tapped block pooled (``tap=True``), L2-normalised


def embedding_model_key(arch: str = DEFAULT_ARCH, size: int | None = None, tap: bool = False) -> str:
    """Fingerprint of what an embedding depends on besides the image bytes (``tap``: of the tapped block's rows)."""
    if tap:
        return fingerprint("emb-tap", model_id(arch), size or arch_spec(arch).input_size, PREPROCESS_VERSION,
                           arch_spec(arch).tap)
    return fingerprint("emb", model_id(arch), size or arch_spec(arch).input_size, PREPROCESS_VERSION)


#: Up to this many images the tapped block is embedded by default (as far as the label check uses it:
#: ``cleaning.detect.run.MID_MAX``).
TAP_MAX = 10_000
#: New images are embedded and written to the cache in chunks of this many (bounded memory, resumable).
CHUNK = 2048
ENGINES = ("local", "ray")


def load_or_compute_embeddings(ws: Workspace, arch: str = DEFAULT_ARCH, size: int | None = None,
                               include_deleted: bool = False, method: str = "auto",
                               progress: Progress | None = None, engine: str = "local",
                               address: str | None = None, workers: int | None = None,
                               on_decoded: Callable[[str, Image.Image], None] | None = None,
                               tap: bool | None = None) -> Embedded:
    """Embeddings of the workspace's images, computing only contents (sha256) not cached yet.

    Rows follow ``ws.items_frame()`` order, deleted items left out unless ``include_deleted``;
    unreadable files are left out and listed in ``errors``. New rows are written to the cache every
    :data:`CHUNK` images, so an interrupted run resumes where it stopped.

    Args:
        engine: ``"local"`` (this process) or ``"ray"`` (a Ray Data job, :mod:`cleaning.model.ray_embed`:
            one backbone per worker actor; ``address`` of a running cluster, default a local one;
            ``workers`` actors, default one per CPU). Both write the same cache.
        on_decoded: ``on_decoded(sha256, image)`` for each new content the local engine decoded at full size
            (see :func:`embed_images`; the scan measures its pixel statistics there). Not called by Ray.
        tap: also the pooled output of the backbone's tapped block (``Embedded.mid``; kept in a second table
            beside the embeddings, computed in the same pass; None when the architecture has no tap). Default: when
            the data set has at most :data:`TAP_MAX` images, so every step that embeds fills both tables in one pass
            (the scan's label check reads the block, :mod:`cleaning.detect.run`).
    Raises:
        CleaningError: unknown engine, Ray missing or unreachable; BackboneUnavailable from the backbone.
    """
    if engine not in ENGINES:
        raise CleaningError(f"unknown engine {engine!r}", hint=f"use one of {', '.join(ENGINES)}")
    df = ws.items_frame()
    if not include_deleted:
        df = df[~df["deleted"]]
    if tap is None:
        tap = len(df) <= TAP_MAX
    key, spec = embedding_model_key(arch, size), arch_spec(arch)
    table = EmbeddingTable(ws.cache_dir, key, spec.dim)
    side = EmbeddingTable(ws.cache_dir, embedding_model_key(arch, size, tap=True), spec.tap_dim) \
        if tap and spec.tap >= 0 else None
    todo = list(dict.fromkeys(table.missing(df["sha256"]) + (side.missing(df["sha256"]) if side else [])))
    if todo:
        for t in (table, side) if side else (table,):
            t.reserve(len(t.rows) + len(todo))  # one buffer for old and new rows, copied once
        first_path = dict(zip(df["sha256"][::-1], df["abs_path"][::-1]))
        paths = [first_path[s] for s in todo]
        if engine == "ray":
            from .ray_embed import embed_with_ray

            embed_with_ray(table, todo, paths, arch, size, address=address, workers=workers, progress=progress,
                           chunk=CHUNK, side=side)
        else:
            with engines_in_use():  # a compiled backbone is dropped when the last step using it ends
                for c in range(0, len(todo), CHUNK):
                    shas = todo[c:c + CHUNK]
                    done = c

                    def chunk_progress(d: int, n: int, done: int = done) -> None:
                        if progress:
                            progress(done + d, len(todo))

                    def decoded(i: int, im: Image.Image, shas: list[str] = shas) -> None:
                        if on_decoded:
                            on_decoded(shas[i], im)

                    res = embed_images(paths[c:c + CHUNK], arch, size, method=method, progress=chunk_progress,
                                       on_decoded=decoded if on_decoded else None, tap=side is not None)
                    ok = [s for i, s in enumerate(shas) if i not in res.errors]
                    failed = {shas[i]: r for i, r in res.errors.items()}
                    if side is not None and res.mid is not None:
                        side.add(ok, res.mid[res.ok], failed=failed)
                        side.save_part()  # before the embeddings: a row in the table always has its side row
                    table.add(ok, res.embeddings[res.ok], failed=failed)
                    table.save_part()
        if side is not None:
            side.save()
        table.save()
    good = df["sha256"].isin(list(table.rows)).to_numpy()
    if side is not None:
        good = good & df["sha256"].isin(list(side.rows)).to_numpy()
    errors = {iid: table.failed.get(sha, "not embedded")
              for iid, sha in zip(df["item_id"][~good], df["sha256"][~good])}
    shas = list(df["sha256"][good])
    return Embedded(list(df["item_id"][good]), table.get(shas), key, errors, side.get(shas) if side else None)
