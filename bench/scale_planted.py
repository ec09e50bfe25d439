"""What ``bench/scale_tree.py`` planted in an existing tree, recovered by replaying its generator without writing:
``{"label_noise": [paths], "near": [...], ..., "truth": {file name: drawn class of each label-noise file}}``.

    python bench/scale_planted.py OUT.json --seed 1 --parts 0:50000 50000:50000   # /work/scale-data/t100k

(``t100k`` was written in two halves with seed 1: replaying seed 1 puts every one of its files in its folder.)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale_tree  # noqa: E402


class _Nowhere:
    """A root that takes the generator's writes and keeps only each file's drawn class."""

    def __init__(self, last: dict[str, int]) -> None:
        self.last, self.drawn, self.rel = last, {}, ""

    def __truediv__(self, other: str) -> _Nowhere:
        self.rel = other
        return self

    def mkdir(self, **kw: object) -> None:
        pass

    def write_bytes(self, data: bytes) -> None:
        self.drawn[self.rel] = self.last.get("y", -1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--parts", nargs="+", default=["0:100000"], help="START:N of each make_tree call")
    a = ap.parse_args()
    last: dict[str, int] = {}
    draw = scale_tree.draw

    def recording(label: int, rng: object) -> object:
        last["y"] = label
        return draw(label, rng)  # type: ignore[arg-type]

    scale_tree.draw = recording  # type: ignore[assignment]
    out: dict = {}
    truth: dict[str, str] = {}
    for part in a.parts:
        start, n = (int(v) for v in part.split(":"))
        root = _Nowhere(last)
        planted = scale_tree.make_tree(root, n, a.seed, start)  # type: ignore[arg-type]
        for k, v in planted.items():
            out.setdefault(k, []).extend(v)
        truth |= {rel.split("/")[1]: scale_tree.CLASSES[root.drawn[rel]] for rel in planted["label_noise"]}
    out["truth"] = truth
    a.out.write_text(json.dumps(out))
    print(json.dumps({k: len(v) for k, v in out.items()}))


if __name__ == "__main__":
    main()
