"""Real-image benchmark sets with the junk a web scrape brings, built offline from installed packages.

Sources (all real images; written once under ``bench/out/real/base``):

* **Class photos** — Debian ``tuxpaint-stamps-default`` (GPL-2+): photo stamps cut out on transparent
  backgrounds, flattened onto white; classes bird, mammal, fruit, vegetable, flower. Cartoon stamps,
  ``_back`` and ``_mirror`` variants are skipped.
* **A second class composition** (``ANIMAL_CLASSES``, ``--sets animals``): bird, mammal (with marsupials), insect,
  fish (with shellfish), flower — the same junk, singles, noise and copies over classes with no fruit or
  vegetables, to check the rules on classes they were not tuned on.
* **Look-alike junk clusters** (one per set, filed round-robin under *every* class, ~8 % of the set):
  ``space`` (Tux Paint sun, planets and moons + ``skimage.data.moon``), ``coins`` (Tux Paint US and euro
  coins), ``vehicles`` (Tux Paint cars, trucks, planes, ships; photo stamps only).
* **Single off-topic images** (6 per set): paintings and cartoons (opencv-doc ``starry_night.jpg``,
  ``LinuxLogo.jpg``, Tux Paint ``cartoon/tux``), photos of unrelated things (``skimage.data`` astronaut,
  coffee, rocket, camera, hubble_deep_field; opencv-doc ``messi5.jpg``, ``building.jpg``; Tux Paint
  household / hobbies / sports / medical). ``skimage.data`` images are public domain or CC0/CC-BY as listed
  in scikit-image's ``data/README.txt``; opencv-doc samples ship under OpenCV's licence (Apache-2.0 / BSD).
* **Handwritten digits** — opencv-doc ``digits.png`` (5,000 20×20 digits, 500 per class; BSD/Apache-2.0).

Planted per set: 10 % wrong labels (a uniformly drawn other class), exact copies and near copies made
by one transform each (JPEG q30, resize 50 %, crop 10 %, brighten 30 %, horizontal flip, rotation 7°).
Everything is reproducible from ``seed``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageEnhance, ImageOps

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out" / "real"
STAMPS = Path("/usr/share/tuxpaint/stamps")
OPENCV = Path("/usr/share/doc/opencv-doc/examples/data")
CLASSES = {"bird": "animals/birds", "mammal": "animals/mammals", "fruit": "food/fruit",
           "vegetable": "food/vegetables", "flower": "plants/flowers"}
#: A second class composition, kept out of every tuning: animals and flowers, no fruit or vegetables (whose
#: round members look like the space cluster's planets). ``--sets animals`` in the drivers; set names
#: ``animals-<cluster>``.
ANIMAL_CLASSES = {"bird": ["animals/birds"], "mammal": ["animals/mammals", "animals/marsupials"],
                  "insect": ["animals/insects"], "fish": ["animals/fish", "animals/shellfish"],
                  "flower": ["plants/flowers"]}
CLUSTERS = {"space": ["space/planets", "space/moon"], "coins": ["symbols/money/us/coins", "symbols/money/euro/coins"],
            "vehicles": ["vehicles"]}
SINGLE_STAMPS = ["household", "hobbies", "sports", "medical"]
SKIMAGE_SINGLES = ["astronaut", "coffee", "rocket", "camera", "hubble_deep_field"]
OPENCV_SINGLES = ["starry_night.jpg", "LinuxLogo.jpg", "messi5.jpg", "building.jpg"]
DIGITS_PER_CLASS = 500  # opencv-doc digits.png
TRANSFORMS = ["jpeg_q30", "resize_50pct", "crop_10pct", "brighten_30pct", "hflip", "rotate_7deg"]
LICENCES = {"tuxpaint": "GPL-2+ (Debian tuxpaint-stamps-default)", "skimage": "scikit-image sample data (public "
            "domain / CC0 / CC-BY, see skimage data/README.txt)", "opencv": "OpenCV sample data (opencv-doc; "
            "Apache-2.0 / BSD-3)"}


def _stamps(sub: str, photos_only: bool = True) -> list[Path]:
    out = []
    for p in sorted((STAMPS / sub).rglob("*.png")):
        parts = set(p.relative_to(STAMPS).parts)
        if "_back" in p.stem or "_mirror" in p.stem or "mirror" in p.stem:
            continue
        if photos_only and parts & {"cartoon", "toys", "plastic"}:
            continue
        out.append(p)
    return out


def _flatten(im: Image.Image, side: int = 256) -> Image.Image:
    im = im.convert("RGBA")
    white = Image.new("RGBA", im.size, (255, 255, 255, 255))
    white.alpha_composite(im)
    out = white.convert("RGB")
    out.thumbnail((side, side), Image.Resampling.LANCZOS)
    return out


def jpeg_bytes(im: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def near_copy(im: Image.Image, transform: str) -> Image.Image:
    """The same picture, changed by one transform (what a re-upload or a scraper's mirror does)."""
    w, h = im.size
    if transform == "jpeg_q30":
        return Image.open(io.BytesIO(jpeg_bytes(im, 30)))
    if transform == "resize_50pct":
        return im.resize((max(8, w // 2), max(8, h // 2)), Image.Resampling.LANCZOS)
    if transform == "crop_10pct":
        return im.crop((round(w * 0.1), round(h * 0.1), w, h))
    if transform == "brighten_30pct":
        return ImageEnhance.Brightness(im).enhance(1.3)
    if transform == "hflip":
        return ImageOps.mirror(im)
    if transform == "rotate_7deg":
        fill = (255, 255, 255) if im.mode == "RGB" else 0
        return im.rotate(7, resample=Image.Resampling.BICUBIC, fillcolor=fill)
    raise ValueError(transform)


@dataclass
class Base:
    key: str
    pool: str  # "class", "cluster:<name>", "single", "digit"
    label: str  # true class ("" for off-topic)
    origin: str
    path: str


def base_images() -> pd.DataFrame:
    """Write every source image once under ``OUT/base`` and list them (columns of :class:`Base`)."""
    base = OUT / "base"
    base.mkdir(parents=True, exist_ok=True)
    rows: list[Base] = []

    def put(key: str, make: object, pool: str, label: str, origin: str, ext: str = "jpg") -> None:
        path = base / f"{key}.{ext}"
        if not path.exists():
            im = make()  # type: ignore[operator]
            path.write_bytes(jpeg_bytes(im) if ext == "jpg" else png_bytes(im))
        rows.append(Base(key, pool, label, origin, str(path)))

    for label, sub in CLASSES.items():
        for p in _stamps(sub):
            put(f"{label}-{p.stem}", lambda p=p: _flatten(Image.open(p)), "class", label,
                f"tuxpaint:{p.relative_to(STAMPS)}")
    for name, subs in CLUSTERS.items():
        for sub in subs:
            for p in _stamps(sub):
                put(f"{name}-{p.stem}", lambda p=p: _flatten(Image.open(p)), f"cluster:{name}", "",
                    f"tuxpaint:{p.relative_to(STAMPS)}")
    import skimage.data

    put("space-skimage_moon", lambda: Image.fromarray(skimage.data.moon()).convert("RGB"), "cluster:space", "",
        "skimage:moon")
    for n in SKIMAGE_SINGLES:
        put(f"single-skimage_{n}", lambda n=n: _flatten(Image.fromarray(getattr(skimage.data, n)())), "single", "",
            f"skimage:{n}")
    for n in OPENCV_SINGLES:
        if (OPENCV / n).exists():
            put(f"single-opencv_{Path(n).stem}", lambda n=n: _flatten(Image.open(OPENCV / n)), "single", "",
                f"opencv:{n}")
    for p in _stamps("cartoon", photos_only=False)[:3]:
        put(f"single-cartoon_{p.stem}", lambda p=p: _flatten(Image.open(p)), "single", "",
            f"tuxpaint:{p.relative_to(STAMPS)}")
    for sub in SINGLE_STAMPS:
        for p in _stamps(sub)[:6]:
            put(f"single-{sub}_{p.stem}", lambda p=p: _flatten(Image.open(p)), "single", "",
                f"tuxpaint:{p.relative_to(STAMPS)}")
    for label, subs in ANIMAL_CLASSES.items():
        for sub in subs:
            for p in _stamps(sub):
                put(f"{label}-{p.stem}", lambda p=p: _flatten(Image.open(p)), "animals", label,
                    f"tuxpaint:{p.relative_to(STAMPS)}")
    sheet = np.asarray(Image.open(OPENCV / "digits.png").convert("L"))
    for d in range(10):
        for j in range(500):
            r, c = divmod(d * 500 + j, 100)
            put(f"digit{d}-{j:03d}", lambda r=r, c=c: Image.fromarray(sheet[r * 20:(r + 1) * 20, c * 20:(c + 1) * 20]),
                "digit", str(d), f"opencv:digits.png[{d * 500 + j}]", ext="png")
    return pd.DataFrame([vars(r) for r in rows])


def _write_copy(src: str, transform: str, tag: str) -> str:
    out = OUT / "copies" / f"{Path(src).stem}-{transform}.{tag}"
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists():
        im = Image.open(src)
        im = im.convert("RGB") if im.mode not in ("L", "RGB") else im
        cp = near_copy(im, transform)
        out.write_bytes(jpeg_bytes(cp, 85) if tag == "jpg" else png_bytes(cp))
    return str(out)


def _plant(clean: pd.DataFrame, vocab: list[str], rng: np.random.Generator, junk: pd.DataFrame,
           n_exact: int, n_near: int, noise: float) -> pd.DataFrame:
    """The set's rows: ``path, given, true, kind, copy_of, transform``; ``kind`` is clean / wrong_label /
    junk_cluster / single / exact_copy / near_copy; ``copy_of`` the row index of the original."""
    rows = [{"path": r.path, "given": r.label, "true": r.label, "kind": "clean", "copy_of": -1, "transform": ""}
            for r in clean.itertuples()]
    wrong = rng.choice(len(rows), int(round(noise * len(rows))), replace=False)
    for i in wrong:
        rows[i]["given"] = str(rng.choice([c for c in vocab if c != rows[i]["true"]]))
        rows[i]["kind"] = "wrong_label"
    order = rng.permutation(len(vocab))
    for n, r in enumerate(junk.itertuples()):
        kind = "single" if r.pool == "single" else "junk_cluster"
        given = vocab[order[n % len(vocab)]] if kind == "junk_cluster" else str(rng.choice(vocab))
        rows.append({"path": r.path, "given": given, "true": "", "kind": kind, "copy_of": -1, "transform": ""})
    originals = rng.choice([i for i in range(len(clean)) if i not in set(wrong)], n_exact + n_near, replace=False)
    for n, i in enumerate(originals):
        src = rows[i]["path"]
        if n < n_exact:
            rows.append({**rows[i], "kind": "exact_copy", "copy_of": int(i), "transform": "exact",
                         "path": _exact(src)})
        else:
            t = TRANSFORMS[n % len(TRANSFORMS)]
            tag = "png" if src.endswith(".png") and t != "jpeg_q30" else "jpg"
            rows.append({**rows[i], "kind": "near_copy", "copy_of": int(i), "transform": t,
                         "path": _write_copy(src, t, tag)})
    return pd.DataFrame(rows)


def _exact(src: str) -> str:
    out = OUT / "copies" / f"{Path(src).stem} (1){Path(src).suffix}"
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists():
        out.write_bytes(Path(src).read_bytes())
    return str(out)


def photo_set(base: pd.DataFrame, seed: int, cluster: str, classes: str | list[str] = "class") -> pd.DataFrame:
    """All class photos, 10 % wrong labels, one look-alike junk cluster (~8 %), 6 singles, 8 exact and
    20 near copies. ``classes``: ``"class"`` (bird, mammal, fruit, vegetable, flower), ``"animals"``
    (:data:`ANIMAL_CLASSES`, the held-out composition), or a list of class names from either (a composition
    of one's own, named ``bird+mammal+…``)."""
    rng = np.random.default_rng(seed)
    if isinstance(classes, str):
        clean = base[base["pool"] == classes].reset_index(drop=True)
        vocab = sorted(CLASSES if classes == "class" else ANIMAL_CLASSES)
    else:
        vocab = sorted(classes)
        mine = base["pool"].isin(["class", "animals"]) & base["label"].isin(vocab)
        clean = base[mine].drop_duplicates("key").reset_index(drop=True)
        classes = "+".join(vocab)
    members = base[base["pool"] == f"cluster:{cluster}"]
    n_junk = min(len(members), max(len(vocab), int(round(0.08 * len(clean)))))
    junk = members.iloc[rng.choice(len(members), n_junk, replace=False)]
    singles = base[base["pool"] == "single"]
    kinds = singles["key"].str.split("_").str[0]
    picks = [rng.choice(np.flatnonzero(kinds == k)) for k in rng.permutation(kinds.unique())[:6]]
    s = _plant(clean, vocab, rng, pd.concat([junk, singles.iloc[picks]]), 8, 20, 0.10)
    return s.assign(set=f"{'photos' if classes == 'class' else classes}-{cluster}", seed=seed)


def digit_set(base: pd.DataFrame, seed: int, n: int, held_out: int = 100) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` digits (balanced) with 10 % wrong labels, 3 % off-topic photos (classes' and others' photos,
    scattered over the digit classes), copies (1.5 % exact, 3 % near); plus ``held_out`` clean digits
    per class that are in no set (for the retraining test)."""
    rng = np.random.default_rng(seed)
    digits = base[base["pool"] == "digit"]
    per = n // 10
    take, rest = [], []
    for d in range(10):
        mine = digits[digits["label"] == str(d)].iloc[rng.permutation(500)]
        take.append(mine.iloc[:per])
        rest.append(mine.iloc[per:per + held_out])
    clean = pd.concat(take).reset_index(drop=True)
    photos = base[base["pool"].isin(["class", "single"]) | base["pool"].str.startswith("cluster:")]
    n_off = max(6, int(round(0.03 * n)))
    off = photos.iloc[rng.choice(len(photos), n_off, replace=False)].assign(pool="single")
    s = _plant(clean, [str(d) for d in range(10)], rng, off, int(round(0.015 * n)), int(round(0.03 * n)), 0.10)
    return s.assign(set=f"digits-{n}", seed=seed), pd.concat(rest).reset_index(drop=True)


def chosen_sets(base: pd.DataFrame, sets: str = "photos,d650,d4000", seeds: str = "1,2,3",
                held_out: int = 100) -> list[tuple[pd.DataFrame, pd.DataFrame | None]]:
    """The benchmark sets a driver's ``--sets`` / ``--seeds`` name: every photo cluster per seed, and the
    650 / 4,000-digit sets per seed; each with its held-out clean digits (None for photos)."""
    seed_list = [int(v) for v in seeds.split(",")]
    want = sets.split(",")
    out: list[tuple[pd.DataFrame, pd.DataFrame | None]] = []
    if "photos" in want:
        out += [(photo_set(base, sd, c), None) for sd in seed_list for c in CLUSTERS]
    if "animals" in want:
        out += [(photo_set(base, sd, c, "animals"), None) for sd in seed_list for c in CLUSTERS]
    for n, tag in ((650, "d650"), (4000, "d4000")):
        if tag in want:
            out += [digit_set(base, sd, n, held_out=held_out) for sd in seed_list]
    return out
