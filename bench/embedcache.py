"""The benchmarks' embedding cache: the product's :class:`cleaning.data.cache.EmbeddingTable` per content, for
image paths outside any workspace — the embeddings and the tapped block's rows (the label check's other layer),
embedded together as the scan's ``load_or_compute_embeddings`` does."""

from __future__ import annotations

import time
from pathlib import Path

from cleaning.data.cache import EmbeddingTable


def tables(cache_dir: Path, paths: list[str]) -> tuple[EmbeddingTable, EmbeddingTable, list[str]]:
    """(embedding table, tapped-block table, sha256 of each path), embedding in one pass what either lacks.

    Raises:
        RuntimeError: a benchmark image failed to embed.
    """
    from cleaning.data.images import file_sha256
    from cleaning.model.backbone import DEFAULT_ARCH, arch_spec
    from cleaning.model.embed import embed_images, embedding_model_key

    spec = arch_spec(DEFAULT_ARCH)
    shas = [file_sha256(Path(p)) for p in paths]
    table = EmbeddingTable(cache_dir, embedding_model_key(), spec.dim)
    side = EmbeddingTable(cache_dir, embedding_model_key(tap=True), spec.tap_dim)
    todo = list(dict.fromkeys(table.missing(shas) + side.missing(shas)))
    if todo:
        where = dict(zip(shas, paths))
        t0 = time.time()
        res = embed_images([where[s] for s in todo], tap=True,
                           progress=lambda d, n: print(f"\rembedding {d}/{n}", end="", flush=True))
        print(f"\nembedded {len(todo)} images in {time.time() - t0:.0f} s", flush=True)
        if res.errors:
            raise RuntimeError(f"benchmark images failed to embed: {res.errors}")
        table.add(todo, res.embeddings)
        side.add(todo, res.mid)
        side.save()
        table.save()
    return table, side, shas
