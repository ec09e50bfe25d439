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


def embedding_model_key(arch: str = DEFAULT_ARCH, size: int | None = None) -> str:
    """Fingerprint of what an embedding depends on besides the image bytes."""
    return fingerprint("emb", model_id(arch), size or arch_spec(arch).input_size, PREPROCESS_VERSION)


#: New images are embedded and written to the cache in chunks of this many (bounded memory, resumable).
CHUNK = 2048
ENGINES = ("local", "ray")


def load_or_compute_embeddings(ws: Workspace, arch: str = DEFAULT_ARCH, size: int | None = None,
                               include_deleted: bool = False, method: str = "auto",
                               progress: Progress | None = None, engine: str = "local",
                               address: str | None = None, workers: int | None = None,
                               on_decoded: Callable[[str, Image.Image], None] | None = None) -> Embedded:
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
    Raises:
        CleaningError: unknown engine, Ray missing or unreachable; BackboneUnavailable from the backbone.
    """
    if engine not in ENGINES:
        raise CleaningError(f"unknown engine {engine!r}", hint=f"use one of {', '.join(ENGINES)}")
    df = ws.items_frame()
    if not include_deleted:
        df = df[~df["deleted"]]
    key = embedding_model_key(arch, size)
    table = EmbeddingTable(ws.cache_dir, key, arch_spec(arch).dim)
    todo = table.missing(df["sha256"])
    if todo:
        table.reserve(len(table.rows) + len(todo))  # one buffer for old and new rows, copied once
        first_path = dict(zip(df["sha256"][::-1], df["abs_path"][::-1]))
        paths = [first_path[s] for s in todo]
        if engine == "ray":
            from .ray_embed import embed_with_ray

            embed_with_ray(table, todo, paths, arch, size, address=address, workers=workers, progress=progress,
                           chunk=CHUNK)
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
                                       on_decoded=decoded if on_decoded else None)
                    ok = [s for i, s in enumerate(shas) if i not in res.errors]
                    table.add(ok, res.embeddings[res.ok], failed={shas[i]: r for i, r in res.errors.items()})
                    table.save_part()
        table.save()
    good = df["sha256"].isin(list(table.rows)).to_numpy()
    errors = {iid: table.failed.get(sha, "not embedded")
              for iid, sha in zip(df["item_id"][~good], df["sha256"][~good])}
    return Embedded(list(df["item_id"][good]), table.get(list(df["sha256"][good])), key, errors)
