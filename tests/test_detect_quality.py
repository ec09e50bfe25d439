"""Low-quality detector: blank, dark, bright, blurry, tiny and extreme-aspect images among real photo
crops; the thresholds judge blur and size against the data set itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image, ImageFilter

from cleaning.detect import ISSUE_COLUMNS
from cleaning.detect.quality import STATS_COLUMNS, compute_quality_scores, compute_quality_stats, find_low_quality
from tests.hostile import PHOTOS, photo_crop


def _frame(images: list[Image.Image]) -> tuple[pd.DataFrame, list[int], list[int]]:
    stats = pd.DataFrame([compute_quality_stats(im) for im in images], columns=STATS_COLUMNS)
    return stats, [im.width for im in images], [im.height for im in images]


def _photos(n: int, size: tuple[int, int] = (96, 96)) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [photo_crop(PHOTOS[i % 6], size, rng) for i in range(n)]


def test_each_planted_problem_is_found_with_its_reason() -> None:
    good = _photos(24)
    src = photo_crop("astronaut", (96, 96))
    planted = {
        "blank": Image.new("RGB", (96, 96), (255, 255, 255)),
        "dark": Image.eval(src, lambda v: v // 12),
        "bright": Image.eval(src, lambda v: 234 + v // 12),
        "blurry": src.filter(ImageFilter.GaussianBlur(6)),
        "tiny": photo_crop("coffee", (12, 12)),
        "aspect": photo_crop("rocket", (300, 40)),
    }
    stats, w, h = _frame(good + list(planted.values()))
    ids = [f"good{i}" for i in range(len(good))] + list(planted)
    df = find_low_quality(ids, stats, w, h)
    assert list(df.columns) == ISSUE_COLUMNS and set(df["issue"]) == {"low_quality"}
    assert set(df["item_id"]) == set(planted)
    reasons = df.set_index("item_id")["reason"]
    for word, who in (("blank", "blank"), ("very dark", "dark"), ("washed out", "bright"), ("blurry", "blurry"),
                      ("tiny (12×12 px)", "tiny"), ("aspect ratio (300×40 px)", "aspect")):
        assert word in reasons[who], (who, reasons[who])
    sev = df.set_index("item_id")["severity"]
    assert sev["blank"] == sev.max() and ((sev > 0) & (sev <= 1)).all()


def test_a_data_set_of_small_soft_images_is_not_all_flagged() -> None:
    small = [im.resize((28, 28)).filter(ImageFilter.GaussianBlur(1)) for im in _photos(30)]
    stats, w, h = _frame(small)
    assert find_low_quality([str(i) for i in range(30)], stats, w, h).empty


def test_unmeasured_rows_score_zero() -> None:
    stats = pd.DataFrame([{c: np.nan for c in STATS_COLUMNS}])
    scores = compute_quality_scores(stats, [100], [100])
    assert (scores.to_numpy() == 0).all()


def test_stats_of_a_one_pixel_image() -> None:
    st = compute_quality_stats(Image.new("RGB", (1, 1), (10, 20, 30)))
    assert st["contrast"] == 0 and st["sharpness"] == 0 and set(st) == set(STATS_COLUMNS)
