"""The offline backbone: state-dict conversion, the converted-weights cache, real ImageNet predictions,
and a clear error (not a stack trace) for backbones that need the internet."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cleaning.model.backbone import (
    ARCHS,
    BackboneUnavailable,
    arch_spec,
    cache_root,
    convert_state_dict,
    create_backbone,
    fastai_arch,
    model_id,
    weights_file,
)
from cleaning.model.embed import square, to_array

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _shared_model_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """One converted-weights/ONNX cache for the whole test session, never the user's ~/.cache."""
    monkeypatch.setenv("CLEANING_CACHE", str(tmp_path_factory.getbasetemp() / "model-cache"))


def test_convert_renames_in_order_and_checks_every_shape() -> None:
    src = OrderedDict([("_a.weight", torch.zeros(2, 3)), ("_a.bias", torch.ones(2))])
    dst = OrderedDict([("a.w", torch.empty(2, 3)), ("a.b", torch.empty(2))])
    out = convert_state_dict(src, dst)
    assert list(out) == ["a.w", "a.b"] and torch.equal(out["a.b"], torch.ones(2))
    with pytest.raises(BackboneUnavailable, match=r"_a.bias \(2,\) -> a.b \(3,\)"):
        convert_state_dict(src, OrderedDict([("a.w", torch.empty(2, 3)), ("a.b", torch.empty(3))]))
    with pytest.raises(BackboneUnavailable, match="2 tensors, the model expects 1"):
        convert_state_dict(src, OrderedDict([("a.w", torch.empty(2, 3))]))


def test_lite0_wheel_converts_to_all_296_timm_tensors() -> None:
    import timm

    sd = torch.load(weights_file(), map_location="cpu", weights_only=True)
    ref = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    assert len(sd) == len(ref) == 296
    assert list(sd) == list(ref)
    assert all(sd[k].shape == ref[k].shape for k in ref)


def test_converted_file_is_cached_under_cleaning_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANING_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    path = weights_file()
    assert path.parent == tmp_path / "c" / "weights" and path.exists()
    mtime = path.stat().st_mtime_ns
    assert weights_file() == path and path.stat().st_mtime_ns == mtime  # reused, not re-converted
    monkeypatch.delenv("CLEANING_CACHE")
    assert cache_root() == Path.home() / ".cache" / "cleaning"


def _imagenet_top5(image: np.ndarray) -> list[int]:
    im = square(Image.fromarray(image), 224)
    spec = arch_spec("tf_efficientnet_lite0")
    model = create_backbone(num_classes=1000)
    with torch.inference_mode():
        logits = model(torch.from_numpy(to_array([im], spec.mean, spec.std)))
    return logits[0].topk(5).indices.tolist()


def test_pretrained_weights_really_load_a_cat_is_a_cat() -> None:
    data = pytest.importorskip("skimage.data")
    top = _imagenet_top5(data.chelsea())
    assert top[0] in {281, 282, 283, 284, 285}, top  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def test_pretrained_weights_really_load_coffee_is_espresso() -> None:
    data = pytest.importorskip("skimage.data")
    top = _imagenet_top5(data.coffee())
    assert top[0] in {967, 968}, top  # espresso, cup


def test_model_id_names_arch_and_weights() -> None:
    assert model_id().startswith("tf_efficientnet_lite0@")
    assert model_id("resnet18").startswith("resnet18@")  # no download needed for the id


def test_unknown_arch_is_a_clear_error() -> None:
    with pytest.raises(BackboneUnavailable, match="unknown architecture") as e:
        arch_spec("vgg99")
    assert "tf_efficientnet_lite0" in (e.value.hint or "")


@pytest.mark.parametrize("arch", ["resnet18", "resnet34"])
def test_torchvision_offline_fails_with_a_clear_message(arch: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no weights cached from an earlier download
    assert ARCHS[arch].family == "torchvision"
    with pytest.raises(BackboneUnavailable, match=f"cannot download the pretrained {arch} weights") as e:
        fastai_arch(arch)
    assert "--arch tf_efficientnet_lite0" in (e.value.hint or "")


def test_cli_train_with_resnet_offline_prints_one_line(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
    src = sorted((REPO / "demo" / "data" / "bird").glob("*.jpg"))[:4] + \
        sorted((REPO / "demo" / "data" / "fruit").glob("*.jpg"))[:4]
    for i, p in enumerate(src):
        (root / ("a" if i < 4 else "b") / p.name).write_bytes(p.read_bytes())
    # The child process has no socket guard: an empty torch hub cache and a dead loopback proxy make
    # the download fail the way it does offline, with or without internet.
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch"), "PYTHONPATH": str(REPO),
           "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    r = subprocess.run([sys.executable, "-m", "cleaning", "train", str(root), "--arch", "resnet18"],
                       capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert "error: cannot download the pretrained resnet18 weights" in r.stderr


def test_the_tapped_backbone_returns_the_embedding_unchanged_and_block_5_pooled() -> None:
    """:func:`tapped_backbone`: the first 1,280 columns are the plain backbone's embedding, bit for bit; the next 192
    are block 5's output averaged over the image (what a forward hook on that block sees)."""
    import torch

    from cleaning.model.backbone import create_backbone, tapped_backbone

    plain, tapped = create_backbone(), tapped_backbone()
    seen = {}
    plain.blocks[5].register_forward_hook(lambda mod, inp, out: seen.__setitem__("b5", out.mean(dim=(2, 3))))
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        a, b = plain(x), tapped(x)
    assert b.shape == (2, 1280 + 192)
    assert torch.equal(b[:, :1280], a)
    assert torch.allclose(b[:, 1280:], seen["b5"], atol=1e-6)
