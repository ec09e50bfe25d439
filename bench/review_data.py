"""A data set with a long review queue for the keyboard benchmark: real photo crops, many in the wrong folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from tests.hostile import make_image_tree


def build(root: Path, per_class: int = 45, classes: int = 6, wrong: int = 120, seed: int = 0) -> Path:
    """``root/<label>/img_i.jpg`` (``classes`` × ``per_class`` crops of real photos), then ``wrong`` of them moved
    into another class's folder (label errors the scan finds). Returns ``root``."""
    if root.exists():
        shutil.rmtree(root)
    names = [f"c{k}" for k in range(classes)]
    make_image_tree(root, dict.fromkeys(names, per_class), size=96, seed=seed)
    rng = np.random.default_rng(seed)
    files = sorted(root.glob("*/*.jpg"))
    for n, i in enumerate(rng.choice(len(files), wrong, replace=False)):
        src = files[i]
        other = names[(names.index(src.parent.name) + 1 + int(rng.integers(classes - 1))) % classes]
        src.rename(root / other / f"moved_{n}_{src.name}")
    return root
