"""Build the bundled demo data set: ``demo/data/<label>/*.jpg``, ``demo/manifest.json``, ``demo/README.md``.

The demo imitates a student's scraped four-class data set (bird, flower, fruit, mammal) with planted
problems whose truth is recorded in the manifest: wrong labels, off-topic images, exact and near
duplicates, a truncated JPEG and a blank placeholder. Every photo is real and offline: Tux Paint stamps
(Debian ``tuxpaint-stamps-default``, GPL-2) and public-domain / CC0 photos from ``skimage.data``.

The build is deterministic (fixed seed, sorted listings), so the committed files can be checked::

    python scripts/make_demo.py            # rewrite demo/
    python scripts/make_demo.py --check    # rebuild in memory, compare bytes with demo/ (exit 1 if different)
    python scripts/make_demo.py --out DIR  # write somewhere else
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import PIL
from PIL import Image, ImageEnhance

SEED = 20261127
MAX_SIDE = 256
QUALITY = 85
STAMPS = Path("/usr/share/tuxpaint/stamps")
REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "demo"

# label -> Tux Paint stamp folder (searched recursively)
CLASS_DIRS = {
    "bird": "animals/birds",
    "flower": "plants/flowers",
    "fruit": "food/fruit",
    "mammal": "animals/mammals",
}
SKIP_DIRS = {"cartoon", "toys", "plastic"}  # drawings, teddy bears, plastic flowers
SKIP_STEMS = {
    "albino_peahen",  # the bird is hidden in a tuft of grass
    "echidna",  # black silhouette, not a photo
    "hedgehog",  # cartoon drawing
}
N_MAMMALS = 30  # mammals are sampled (62 usable stamps) to keep the classes roughly balanced

# Off-topic images: (origin, folder they end up in, query template that brought them in)
OFF_TOPIC = [
    ("skimage:rocket", "bird", "{label} wallpaper"),
    ("skimage:astronaut", "mammal", "{label} wallpaper"),
    ("tuxpaint:space/moon/moon_full.png", "mammal", "{label} wallpaper"),
    ("tuxpaint:space/planets/3_earth.png", "flower", "{label} wallpaper"),
    ("skimage:coffee", "fruit", "{label} wallpaper"),
]
# Wrong labels: (true label, folder it is filed under), two per class each way
WRONG = [
    ("bird", "fruit"),
    ("bird", "mammal"),
    ("flower", "fruit"),
    ("flower", "bird"),
    ("fruit", "flower"),
    ("fruit", "mammal"),
    ("mammal", "bird"),
    ("mammal", "flower"),
]
NEAR = [  # (folder, transform)
    ("bird", "jpeg_q30"),
    ("mammal", "resize_70pct"),
    ("flower", "crop_8pct"),
    ("fruit", "brighten_25pct"),
]
TEMPLATES = ["{label}", "{label} photo", "{label} wallpaper"]
SITES = {
    "images.example.com": "https://images.example.com/photos/{h}.jpg",
    "stock.example.org": "https://stock.example.org/{label}/{label}-{n}.jpg",
    "pics.example.net": "https://pics.example.net/i/{h}/large.jpg",
    "wallpapers.example.com": "https://wallpapers.example.com/hd/{h}-1920x1080.jpg",
}
UNICODE_NAME = "fleur é 01.jpg"


@dataclass
class Entry:
    """One file of the demo, before it gets its name."""

    folder: str
    origin: str
    data: bytes
    template: str
    problem: str | None = None
    true_label: str | None = None
    transform: str | None = None
    duplicate_of: Entry | None = None
    name: str | None = None

    @property
    def path(self) -> str:
        assert self.name is not None
        return f"{self.folder}/{self.name}"


def stamp_files(subdir: str) -> list[Path]:
    """Sorted photo stamps under ``STAMPS/subdir``, without drawings and ``_back`` variants."""
    files = [
        p
        for p in (STAMPS / subdir).rglob("*.png")
        if not SKIP_DIRS.intersection(p.relative_to(STAMPS).parts)
        and "_back" not in p.stem
        and p.stem not in SKIP_STEMS
    ]
    return sorted(files, key=lambda p: p.relative_to(STAMPS).as_posix())


def load_origin(origin: str) -> Image.Image:
    """RGB image for ``tuxpaint:<rel path>`` (flattened onto white) or ``skimage:<name>``."""
    kind, _, name = origin.partition(":")
    if kind == "tuxpaint":
        im = Image.open(STAMPS / name).convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        white.alpha_composite(im)
        return white.convert("RGB")
    if kind == "skimage":
        import skimage.data

        return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
    raise ValueError(f"unknown origin {origin!r}")


def shrink(im: Image.Image, max_side: int = MAX_SIDE) -> Image.Image:
    """Downscale so the longer side is at most ``max_side`` (never upscales)."""
    scale = max_side / max(im.size)
    if scale >= 1:
        return im
    size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    return im.resize(size, Image.Resampling.LANCZOS)


def encode(im: Image.Image, quality: int = QUALITY) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def decode(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        return im.convert("RGB")


def photo(origin: str) -> bytes:
    return encode(shrink(load_origin(origin)))


def near_copy(data: bytes, transform: str) -> bytes:
    """A near duplicate of an encoded JPEG: re-encoded, resized, cropped or brightened."""
    im = decode(data)
    w, h = im.size
    if transform == "jpeg_q30":
        return encode(im, quality=30)
    if transform == "resize_70pct":
        return encode(im.resize((round(w * 0.7), round(h * 0.7)), Image.Resampling.LANCZOS))
    if transform == "crop_8pct":
        return encode(im.crop((round(w * 0.08), round(h * 0.08), w, h)))
    if transform == "brighten_25pct":
        return encode(ImageEnhance.Brightness(im).enhance(1.25))
    raise ValueError(f"unknown transform {transform!r}")


def build_entries(rng: random.Random) -> list[Entry]:
    """All files of the demo, unnamed, with their planted problems."""
    pools: dict[str, list[str]] = {}
    for label, subdir in CLASS_DIRS.items():
        origins = [f"tuxpaint:{p.relative_to(STAMPS).as_posix()}" for p in stamp_files(subdir)]
        rng.shuffle(origins)
        pools[label] = origins
    used_mammals = 2 + N_MAMMALS + 1  # wrong-label extras, clean, the corrupt one
    spare_mammal = pools["mammal"][used_mammals - 1]
    pools["mammal"] = pools["mammal"][: used_mammals - 1]

    entries: list[Entry] = []
    clean: dict[str, list[Entry]] = {label: [] for label in CLASS_DIRS}
    # wrong labels: the first two photos of each shuffled pool go astray
    astray = {label: [o for o in pools[label][:2]] for label in CLASS_DIRS}
    for i, (true_label, folder) in enumerate(WRONG):
        origin = astray[true_label].pop(0)
        template = rng.choice(TEMPLATES[:2])
        if i % 2 == 0:  # the bad template also brings in photos of the other classes
            template = TEMPLATES[2]
        entries.append(
            Entry(folder, origin, photo(origin), template, problem="wrong_label", true_label=true_label)
        )
    for label in CLASS_DIRS:
        for origin in pools[label][2:]:
            e = Entry(label, origin, photo(origin), rng.choices(TEMPLATES, weights=[5, 4, 1])[0])
            clean[label].append(e)
            entries.append(e)
    for origin, folder, template in OFF_TOPIC:
        entries.append(Entry(folder, origin, photo(origin), template, problem="off_topic"))

    # duplicates: two in their own folder, one copied into another class folder.
    # Sources are distinct clean photos; [0] of flowers is left alone (it gets the unicode name).
    sources = {label: rng.sample(clean[label][1:], 2) for label in CLASS_DIRS}
    for folder, src_label in [("bird", "bird"), ("mammal", "mammal"), ("fruit", "flower")]:
        src = sources[src_label].pop()
        entries.append(
            Entry(
                folder,
                src.origin,
                src.data,
                rng.choice(TEMPLATES[:2]),
                problem="duplicate",
                true_label=src_label,
                duplicate_of=src,
                transform="byte copy",
            )
        )
    for folder, transform in NEAR:
        src = sources[folder].pop()
        entries.append(
            Entry(
                folder,
                src.origin,
                near_copy(src.data, transform),
                rng.choice(TEMPLATES[:2]),
                problem="near_duplicate",
                true_label=folder,
                duplicate_of=src,
                transform=transform,
            )
        )

    corrupt = photo(spare_mammal)
    entries.append(
        Entry(
            "mammal",
            spare_mammal,
            corrupt[: len(corrupt) * 55 // 100],
            "{label} photo",
            problem="corrupt",
            transform="truncated to 55% of its bytes",
        )
    )
    entries.append(
        Entry(
            "fruit",
            "generated:white 256x256",
            encode(Image.new("RGB", (256, 256), "white")),
            "{label}",
            problem="blank",
            transform="uniform white placeholder",
        )
    )
    return name_entries(entries, clean, rng)


def name_entries(entries: list[Entry], clean: dict[str, list[Entry]], rng: random.Random) -> list[Entry]:
    """Number the files per folder in a shuffled order; a few get awkward names."""
    clean["flower"][0].name = UNICODE_NAME
    same_folder_copy = next(e for e in entries if e.problem == "duplicate" and e.folder == "bird")
    for folder in CLASS_DIRS:
        todo = [e for e in entries if e.folder == folder and e.name is None and e is not same_folder_copy]
        rng.shuffle(todo)
        for i, e in enumerate(todo, start=1):
            e.name = f"{folder}_{i:04d}.jpg"
    assert same_folder_copy.duplicate_of is not None and same_folder_copy.duplicate_of.name is not None
    same_folder_copy.name = same_folder_copy.duplicate_of.name.replace(".jpg", " (1).jpg")  # a browser's copy
    return sorted(entries, key=lambda e: e.path)


def provenance(entry: Entry, n: int, rng: random.Random) -> dict[str, str]:
    """A simulated scrape record: the query that found the file and the (fake) url it came from."""
    query = entry.template.format(label=entry.folder)
    if entry.template.endswith("wallpaper") and rng.random() < 0.8:
        site = "wallpapers.example.com"
    else:
        site = rng.choice(sorted(set(SITES) - {"wallpapers.example.com"}))
    h = hashlib.sha1(f"{SEED}:{entry.path}".encode()).hexdigest()[:12]
    return {"query": query, "url": SITES[site].format(h=h, label=entry.folder, n=n)}


def build() -> dict[str, bytes]:
    """Every output file of the demo, relative to ``demo/``, as bytes."""
    rng = random.Random(SEED)
    entries = build_entries(rng)
    out: dict[str, bytes] = {f"data/{e.path}": e.data for e in entries}
    planted = []
    for e in entries:
        if e.problem is None:
            continue
        planted.append(
            {
                "path": e.path,
                "problem": e.problem,
                "true_label": e.true_label,
                "duplicate_of": e.duplicate_of.path if e.duplicate_of else None,
                "transform": e.transform,
                "source": e.origin,
            }
        )
    manifest = {
        "classes": sorted(CLASS_DIRS),
        "counts": {label: sum(e.folder == label for e in entries) for label in sorted(CLASS_DIRS)},
        "planted": planted,
        "provenance": {e.path: provenance(e, i, rng) for i, e in enumerate(entries, start=1)},
        "origin": {e.path: e.origin for e in entries},
        "generator": {"script": "scripts/make_demo.py", "seed": SEED, "pillow": PIL.__version__},
    }
    out["manifest.json"] = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    out["README.md"] = readme(manifest, entries).encode("utf-8")
    return out


def readme(manifest: dict, entries: list[Entry]) -> str:
    counts = ", ".join(f"{label} {n}" for label, n in manifest["counts"].items())
    rows = "\n".join(
        f"| `{p['path']}` | {p['problem']} | {p['true_label'] or '-'} | "
        f"{'`' + p['duplicate_of'] + '`' if p['duplicate_of'] else '-'} | {p['transform'] or '-'} | {p['source']} |"
        for p in manifest["planted"]
    )
    size = sum(len(e.data) for e in entries)
    return f"""# Demo data set

A small scraped-looking image data set for trying the cleaning app: {len(entries)} JPEGs in 4 class
folders ({counts}; {size / 1e6:.2f} MB), with planted problems listed in `manifest.json`. Generated by
`python scripts/make_demo.py` (seed {SEED}); `python scripts/make_demo.py --check` verifies that the
committed files are exactly what the script produces. Do not edit the files by hand.

## Sources and licences

- **Tux Paint stamps** (Debian package `tuxpaint-stamps-default`, files under
  `/usr/share/tuxpaint/stamps/`): real colour photos cut out on transparent backgrounds, flattened onto
  white and shrunk to at most {MAX_SIDE} px (JPEG quality {QUALITY}). Copyright 2002-2022 Bill Kendrick and
  the Tux Paint contributors, licensed under the **GNU GPL version 2 or later** (see
  `/usr/share/doc/tuxpaint-stamps-default/copyright`; source: https://sourceforge.net/projects/tuxpaint).
  These images are therefore distributed here under the GPL-2.0-or-later as well. Cartoon stamps,
  `_back` variants, toys, plastic flowers, the silhouette `echidna`, the drawn `hedgehog` and the
  hard-to-see `albino_peahen` were left out. Several fruit stamps are small (about 50 px): they are
  kept at their native size, as a scrape would deliver thumbnails.
- **scikit-image sample photos** (`skimage.data`, shipped in the scikit-image wheel), used as
  off-topic images: `rocket` (DSCOVR launch on Falcon 9, released into the public domain by SpaceX),
  `astronaut` (Eileen Collins, NASA, public domain), `coffee` (CC0, photographer Rachel Michetti). The
  licences are those stated in the docstrings of `skimage.data`.
- The blank image is generated (a uniform white 256x256 JPEG).
- `manifest.json` → `origin` names the source file of every image.

## Planted problems (the ground truth)

| path | problem | true label | duplicate of | transform | source |
|---|---|---|---|---|---|
{rows}

Problems: `wrong_label` (a real photo of another class), `off_topic` (belongs to no class), `duplicate`
(byte-identical copy, one of them in another class folder), `near_duplicate` (re-encoded, resized,
cropped or brightened copy), `corrupt` (truncated JPEG that cannot be decoded), `blank` (uniform
image). File names include a space and a unicode character (`{UNICODE_NAME}`, `... (1).jpg`) on purpose.

## Provenance is simulated

`manifest.json` → `provenance` maps each file to the search query and URL it "came from", so the app's
Sources page has something to show. **None of it is real**: the URLs are on made-up `example.com`,
`example.org` and `example.net` hosts, and the queries come from the templates
{", ".join(f"`{t}`" for t in TEMPLATES)}; the `{{label}} wallpaper` template is the bad one that brought
in most of the off-topic images.
"""


def check(target: Path, files: dict[str, bytes]) -> list[str]:
    """Differences between ``files`` and what is on disk under ``target`` (empty list: identical)."""
    problems = []
    on_disk = {p.relative_to(target).as_posix() for p in (target / "data").rglob("*") if p.is_file()}
    on_disk |= {n for n in ("manifest.json", "README.md") if (target / n).is_file()}
    for rel in sorted(on_disk - set(files)):
        problems.append(f"unexpected file {rel}")
    for rel, data in sorted(files.items()):
        path = target / rel
        if not path.is_file():
            problems.append(f"missing file {rel}")
        elif hashlib.sha256(path.read_bytes()).digest() != hashlib.sha256(data).digest():
            problems.append(f"different bytes in {rel}")
    return problems


def write(target: Path, files: dict[str, bytes]) -> None:
    if (target / "data").exists():
        shutil.rmtree(target / "data")
    for rel, data in files.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEMO, help="target folder (default: demo/)")
    parser.add_argument("--check", action="store_true", help="compare with the target instead of writing")
    args = parser.parse_args(argv)
    if not STAMPS.is_dir():
        print(f"error: {STAMPS} not found; install it with: apt-get install tuxpaint-stamps-default", file=sys.stderr)
        return 2
    files = build()
    if args.check:
        problems = check(args.out, files)
        for p in problems:
            print(p, file=sys.stderr)
        print("demo is up to date" if not problems else f"{len(problems)} difference(s)")
        return 1 if problems else 0
    write(args.out, files)
    n = sum(rel.startswith("data/") for rel in files)
    size = sum(len(d) for d in files.values())
    print(f"wrote {n} images + manifest + README to {args.out} ({size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
