"""Build ``cleaning/model/imagenet_words.json.gz``: for each ImageNet-1k class (timm's order), the WordNet 3.0
lemma names of the class and of all its hypernyms ("granny smith" → apple, edible fruit, fruit, produce, food, …).

Dev-time only: needs Debian's ``wordnet-base`` (``/usr/share/wordnet/data.noun``, WordNet 3.0, Princeton's
WordNet licence) and timm (its ``imagenet_synsets.txt``). The app reads the committed file.

    python scripts/build_imagenet_words.py
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

DATA_NOUN = Path("/usr/share/wordnet/data.noun")
OUT = Path(__file__).resolve().parent.parent / "cleaning" / "model" / "imagenet_words.json.gz"


def main() -> None:
    import timm

    synsets = (Path(os.path.dirname(timm.__file__)) / "data" / "_info" / "imagenet_synsets.txt").read_text().split()
    words: dict[str, list[str]] = {}
    hypernyms: dict[str, list[str]] = {}
    for line in DATA_NOUN.read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):  # the licence header
            continue
        head = line.split("|")[0].split()
        offset, n_words = head[0], int(head[3], 16)
        words[offset] = [head[4 + 2 * i].lower().replace("_", " ").split("(")[0] for i in range(n_words)]
        i = 4 + 2 * n_words
        n_ptr = int(head[i])
        ptrs = [head[i + 1 + 4 * k: i + 5 + 4 * k] for k in range(n_ptr)]
        hypernyms[offset] = [p[1] for p in ptrs if p[0] in ("@", "@i") and p[2] == "n"]
    table = []
    for s in synsets:
        seen: set[str] = set()
        todo, names = [s[1:]], set()
        while todo:
            o = todo.pop()
            if o not in seen:
                seen.add(o)
                names.update(words.get(o, []))
                todo += hypernyms.get(o, [])
        table.append(sorted(names))
    with gzip.open(OUT, "wt", encoding="utf-8") as f:
        json.dump({"source": "WordNet 3.0 (Princeton University, WordNet licence) hypernyms of timm's "
                             "imagenet_synsets.txt", "classes": table}, f, separators=(",", ":"))
    print(f"{OUT}: {len(table)} classes, {sum(map(len, table))} names, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
