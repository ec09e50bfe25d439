"""The Ray engine: a Ray Data job on a local 2-CPU instance writes the same embeddings into the same cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import cleaning.model.embed as embed
from cleaning.data.workspace import Workspace

ray = pytest.importorskip("ray")  # requirements.txt installs it; skipped only where it is missing

DEMO = Path(__file__).resolve().parent.parent / "demo" / "data"


def _tree(root: Path) -> Path:
    for label in ("bird", "fruit"):
        (root / label).mkdir(parents=True)
        for p in sorted((DEMO / label).glob("*.jpg"))[:5]:
            shutil.copy(p, root / label / p.name)
    (root / "fruit" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


@pytest.mark.timeout(600)
def test_ray_engine_equals_local_engine(tmp_path: Path) -> None:
    root = _tree(tmp_path / "data")
    local = embed.load_or_compute_embeddings(Workspace.open(root, state_dir=tmp_path / "local"), tap=True)
    ws = Workspace.open(root, state_dir=tmp_path / "ray")
    seen: list[tuple[int, int]] = []
    remote = embed.load_or_compute_embeddings(ws, engine="ray", workers=2, progress=lambda d, n: seen.append((d, n)),
                                              tap=True)
    assert not ray.is_initialized()  # the job's own local instance is shut down again
    assert remote.item_ids == local.item_ids and len(remote.item_ids) == 10
    cos = (remote.embeddings * local.embeddings).sum(axis=1)
    assert cos.min() > 0.9999
    assert remote.mid is not None and local.mid is not None  # the tapped block's rows too (the label check's)
    assert (remote.mid * local.mid).sum(axis=1).min() > 0.9999
    assert set(remote.errors.values()) == set(local.errors.values()) and len(remote.errors) == 0
    assert seen and seen[-1][0] == seen[-1][1] == 10
    # the same cache: a local run afterwards embeds nothing
    calls: list[int] = []
    real = embed.embed_images
    embed.embed_images = lambda paths, *a, **k: calls.append(len(paths)) or real(paths, *a, **k)  # type: ignore[assignment]
    try:
        again = embed.load_or_compute_embeddings(ws, tap=True)
    finally:
        embed.embed_images = real  # type: ignore[assignment]
    assert calls == [] and np.array_equal(again.embeddings, remote.embeddings) and np.array_equal(again.mid, remote.mid)
