"""Real handwritten digits for benchmarks: OpenCV's ``digits.png`` (Debian ``opencv-doc``: 5,000 digits
of 20×20 px, 500 per class) or, without it, scikit-learn's ``load_digits`` (1,797 digits of 8×8)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

OPENCV_DIGITS = Path("/usr/share/doc/opencv-doc/examples/data/digits.png")


def load_digits_images(per_class: int) -> tuple[list[np.ndarray], list[int], str]:
    """Up to ``per_class`` grey digit images per class (uint8 arrays), their labels, and the source name."""
    if OPENCV_DIGITS.exists():
        sheet = np.asarray(Image.open(OPENCV_DIGITS).convert("L"))
        cells = [sheet[r * 20:(r + 1) * 20, c * 20:(c + 1) * 20] for r in range(50) for c in range(100)]
        labels = [i // 500 for i in range(5000)]  # 5 rows of 100 per digit
        rng = np.random.default_rng(0)
        pick = [i for d in range(10) for i in rng.permutation(np.arange(d * 500, (d + 1) * 500))[:per_class]]
        return [cells[i] for i in pick], [labels[i] for i in pick], "opencv-doc digits.png (20×20)"
    from sklearn.datasets import load_digits

    d = load_digits()
    out, ys = [], []
    for k in range(10):
        for im in d.images[d.target == k][:per_class]:
            out.append((im * 255 / 16).astype(np.uint8))
            ys.append(k)
    return out, ys, "sklearn load_digits (8×8)"


def make_digits_tree(out: Path, per_class: int = 60, side: int = 64) -> tuple[Path, str]:
    """ROOT/<digit>/d_<i>.png, each upscaled to ``side`` px; returns (root, source name)."""
    images, labels, source = load_digits_images(per_class)
    for i, (im, y) in enumerate(zip(images, labels)):
        d = out / str(y)
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(im).resize((side, side), Image.Resampling.BICUBIC).save(d / f"d_{i:05d}.png")
    return out, source
