"""2-D maps of the embeddings: UMAP (default) or t-SNE → N×2, cached.

The map is computed over every distinct image content in the workspace, deleted images included,
so that deleting or relabelling does not move the other points (and costs nothing); only adding
images recomputes it. Rows are returned for the non-deleted images.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import CleaningError

if TYPE_CHECKING:
    from ..data.workspace import Workspace

METHODS = ("umap", "tsne")


def compute_projection(embeddings: np.ndarray, method: str = "umap", seed: int = 0) -> np.ndarray:
    """N×2 float32 coordinates of N×D ``embeddings`` (cosine geometry).

    Fewer than 5 points are laid out by PCA (UMAP and t-SNE need neighbours).

    Raises:
        CleaningError: unknown method.
    """
    if method not in METHODS:
        raise CleaningError(f"unknown projection {method!r}", hint=f"use one of {', '.join(METHODS)}")
    x = np.asarray(embeddings, dtype=np.float32)
    n = len(x)
    if n == 0:
        return np.zeros((0, 2), np.float32)
    if n < 5:
        centred = x - x.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        out = np.zeros((n, 2), np.float32)
        k = min(2, vt.shape[0])
        out[:, :k] = centred @ vt[:k].T
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap/numba/sklearn chatter about seeds and parallelism
        if method == "umap":
            import umap

            reducer = umap.UMAP(n_neighbors=min(15, n - 1), min_dist=0.1, metric="cosine",
                                random_state=seed, init="spectral" if n > 20 else "random")
            xy = reducer.fit_transform(x)
        else:
            from sklearn.manifold import TSNE

            xy = TSNE(n_components=2, perplexity=float(min(30.0, (n - 1) / 3)), metric="cosine",
                      init="pca", random_state=seed).fit_transform(x)
    return np.asarray(xy, dtype=np.float32)


@dataclass
class Projection:
    """2-D coordinates aligned to ``item_ids`` (non-deleted, embeddable items)."""

    item_ids: list[str]
    xy: np.ndarray  # N×2 float32
    method: str
    key: str


def load_or_compute_projection(ws: Workspace, method: str = "umap", seed: int = 0) -> Projection:
    """The cached map of the workspace, computed if the set of image contents or the model changed."""
    from ..data.cache import fingerprint, load_arrays, save_arrays
    from .embed import load_or_compute_embeddings

    emb = load_or_compute_embeddings(ws, include_deleted=True)
    df = ws.items_frame().set_index("item_id").loc[emb.item_ids]
    shas = list(df["sha256"])
    first = {s: i for i, s in reversed(list(enumerate(shas)))}
    distinct = sorted(first)
    key = fingerprint("proj", emb.model_key, method, seed, distinct)
    cached = load_arrays(ws.cache_dir, "proj", key)
    if cached is not None:
        xy_distinct = cached["xy"]
    else:
        xy_distinct = compute_projection(emb.embeddings[[first[s] for s in distinct]], method, seed)
        save_arrays(ws.cache_dir, "proj", key, xy=xy_distinct)
    row = {s: i for i, s in enumerate(distinct)}
    live = ~df["deleted"].to_numpy(dtype=bool)
    ids = [i for i, keep in zip(emb.item_ids, live) if keep]
    xy = xy_distinct[[row[s] for s, keep in zip(shas, live) if keep]] if ids else np.zeros((0, 2), np.float32)
    return Projection(ids, np.asarray(xy, np.float32), method, key)
