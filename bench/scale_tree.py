"""Generated image trees for the scale benchmark: ``ROOT/<class>/<image>.jpg``, 64 px, varied content.

Each class is a family of drawn scenes (a shape kind on a textured background); every image varies
colour, size, position, rotation, background texture, noise and distractor shapes, so the backbone's
neighbours are not trivial (same-class images are alike, not identical). Planted on top, so the
detectors have work at every size: 3 % label noise (file in another class folder), 1 % near copies
(re-encoded / cropped / brightened), 0.5 % exact copies, 0.2 % blank images, 0.1 % broken files.

    python bench/scale_tree.py OUT N [--seed 0]
"""

from __future__ import annotations

import argparse
import io
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

SIDE = 64
CLASSES = ["circle", "square", "triangle", "stripes", "checker", "ring", "cross", "star", "blobs", "lines"]


def _background(rng: np.random.Generator) -> Image.Image:
    kind = rng.integers(4)
    base = rng.integers(0, 256, 3)
    if kind == 0:  # flat + noise
        a = np.tile(base, (SIDE, SIDE, 1)).astype(np.float32)
    elif kind == 1:  # gradient
        other = rng.integers(0, 256, 3)
        t = np.linspace(0, 1, SIDE)[:, None, None]
        a = (base * (1 - t) + other * t) * np.ones((SIDE, SIDE, 1))
        if rng.random() < 0.5:
            a = a.transpose(1, 0, 2)
    elif kind == 2:  # smooth random texture
        small = rng.integers(0, 256, (4, 4, 3)).astype(np.uint8)
        a = np.asarray(Image.fromarray(small).resize((SIDE, SIDE), Image.Resampling.BICUBIC), np.float32)
    else:  # speckle
        a = base + rng.normal(0, 40, (SIDE, SIDE, 3))
    a = a + rng.normal(0, rng.uniform(2, 15), (SIDE, SIDE, 3))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def _poly(cx: float, cy: float, r: float, n: int, rot: float, inner: float = 1.0) -> list[tuple[float, float]]:
    pts = []
    for i in range(n * (2 if inner < 1 else 1)):
        rr = r if (inner >= 1 or i % 2 == 0) else r * inner
        a = rot + math.pi * 2 * i / (n * (2 if inner < 1 else 1))
        pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
    return pts


def draw(label: int, rng: np.random.Generator) -> Image.Image:
    """One 64×64 RGB scene of class ``label`` (index into :data:`CLASSES`)."""
    im = _background(rng)
    d = ImageDraw.Draw(im)
    col = tuple(int(v) for v in rng.integers(0, 256, 3))
    col2 = tuple(int(v) for v in rng.integers(0, 256, 3))
    r = rng.uniform(10, 26)
    cx, cy = rng.uniform(r * 0.6, SIDE - r * 0.6, 2)
    rot = rng.uniform(0, math.pi)
    kind = CLASSES[label]
    w = int(rng.integers(2, 6))
    if kind == "circle":
        d.ellipse((cx - r, cy - r * rng.uniform(0.8, 1.2), cx + r, cy + r), fill=col)
    elif kind == "square":
        d.polygon(_poly(cx, cy, r, 4, rot), fill=col)
    elif kind == "triangle":
        d.polygon(_poly(cx, cy, r, 3, rot), fill=col)
    elif kind == "stripes":
        step = int(rng.integers(5, 12))
        for k in range(-SIDE, 2 * SIDE, step):
            d.line([(k, 0), (k + SIDE * math.cos(rot), SIDE)], fill=col, width=max(2, step // 2))
    elif kind == "checker":
        step = int(rng.integers(6, 16))
        for i in range(0, SIDE, step):
            for j in range(0, SIDE, step):
                if (i // step + j // step) % 2:
                    d.rectangle((i, j, i + step - 1, j + step - 1), fill=col)
    elif kind == "ring":
        d.ellipse((cx - r, cy - r, cx + r, cy + r), outline=col, width=w + 2)
    elif kind == "cross":
        d.line([(cx - r, cy), (cx + r, cy)], fill=col, width=w + 3)
        d.line([(cx, cy - r), (cx, cy + r)], fill=col, width=w + 3)
    elif kind == "star":
        d.polygon(_poly(cx, cy, r, int(rng.integers(5, 8)), rot, inner=0.45), fill=col)
    elif kind == "blobs":
        for _ in range(int(rng.integers(3, 7))):
            x, y, s = rng.uniform(0, SIDE), rng.uniform(0, SIDE), rng.uniform(3, 9)
            d.ellipse((x - s, y - s, x + s, y + s), fill=col if rng.random() < 0.7 else col2)
    else:  # lines
        for _ in range(int(rng.integers(3, 8))):
            d.line([tuple(rng.uniform(0, SIDE, 2)), tuple(rng.uniform(0, SIDE, 2))], fill=col, width=w)
    for _ in range(int(rng.integers(0, 3))):  # small distractors
        x, y, s = rng.uniform(0, SIDE), rng.uniform(0, SIDE), rng.uniform(2, 5)
        d.rectangle((x - s, y - s, x + s, y + s), fill=col2)
    if rng.random() < 0.3:
        im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    return im


def _jpeg(im: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _near(im: Image.Image, rng: np.random.Generator) -> bytes:
    t = rng.integers(3)
    if t == 0:
        return _jpeg(im, 40)
    if t == 1:
        return _jpeg(im.crop((3, 3, SIDE, SIDE)).resize((SIDE, SIDE)))
    return _jpeg(ImageEnhance.Brightness(im).enhance(1.25))


def make_tree(root: Path, n: int, seed: int = 0, start: int = 0) -> dict[str, list[str]]:
    """Write ``n`` images (names numbered from ``start``) under ``root``; returns what was planted
    (``{"label_noise": [...], "near": [...], "exact": [...], "blank": [...], "broken": [...]}``, paths)."""
    rng = np.random.default_rng([seed, start])
    for c in CLASSES:
        (root / c).mkdir(parents=True, exist_ok=True)
    planted: dict[str, list[str]] = {k: [] for k in ("label_noise", "near", "exact", "blank", "broken")}
    made: list[tuple[int, Image.Image, bytes]] = []
    for i in range(start, start + n):
        y = int(rng.integers(len(CLASSES)))
        folder, u = y, rng.random()
        name = f"img{i:07d}.jpg"
        if u < 0.001:
            data, kind = b"\xff\xd8\xff\xe0 truncated", "broken"
        elif u < 0.003:
            data, kind = _jpeg(Image.new("RGB", (SIDE, SIDE), tuple(int(v) for v in rng.integers(0, 256, 3)))), "blank"
        elif u < 0.013 and made:
            _, src, _ = made[int(rng.integers(len(made)))]
            data, kind = _near(src, rng), "near"
        elif u < 0.018 and made:
            _, _, data = made[int(rng.integers(len(made)))]
            kind = "exact"
        else:
            im = draw(y, rng)
            data, kind = _jpeg(im), ""
            if len(made) < 2000:
                made.append((y, im, data))
            elif rng.random() < 0.05:
                made[int(rng.integers(len(made)))] = (y, im, data)
            if rng.random() < 0.03:
                folder = int((y + rng.integers(1, len(CLASSES))) % len(CLASSES))
                kind = "label_noise"
        rel = f"{CLASSES[folder]}/{name}"
        (root / rel).write_bytes(data)
        if kind:
            planted[kind].append(rel)
    return planted


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("n", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", type=int, default=0)
    a = ap.parse_args()
    planted = make_tree(a.out, a.n, a.seed, a.start)
    print(json.dumps({k: len(v) for k, v in planted.items()}))


if __name__ == "__main__":
    main()
