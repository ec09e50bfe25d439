"""Embedding engines: turn image files into N×D float32 L2-normalised rows (OpenVINO, ONNX Runtime or torch).

No caching here (:mod:`cleaning.model.embed` keeps the rows per image content) and no workspace: the
local path and the Ray workers (:mod:`cleaning.model.ray_embed`) both call :func:`embed_images`.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from ..cpus import n_cpus
from ..errors import CleaningError
from .backbone import DEFAULT_ARCH, arch_spec, cache_root, create_backbone, model_id, tapped_backbone
from .preprocess import _open_for_model, l2_normalise, load_for_model, open_for_model, square, to_array  # noqa: F401

#: Bump when the preprocessing changes so cached embeddings are recomputed.
PREPROCESS_VERSION = 1
METHODS = ("auto", "openvino", "onnx", "channels_last", "eager")
#: Methods that run in lanes (:func:`_lanes`): one single-thread runner per CPU, called side by side.
LANED = ("openvino", "onnx")

#: progress(done, total) — called after every batch.
Progress = Callable[[int, int], None]
#: on_decoded(index of the path, its RGB image decoded at full size): see :func:`embed_images`.
OnDecoded = Callable[[int, Image.Image], None]


class Engine(Protocol):
    """Runs a batch B×3×H×W float32 through the backbone, returning B×D float32 (B×(dim + tap_dim) for the
    tapped model: :func:`get_engine`)."""

    method: str

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


@dataclass
class TorchEngine:
    model: Any
    method: str  # "eager" | "channels_last"
    threads: int

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        x = torch.from_numpy(batch)
        if self.method == "channels_last":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return self.model(x).float().numpy()


@dataclass
class OnnxEngine:
    """ONNX Runtime session. Its CPU memory arena is shrunk back after every batch: without that the arena
    keeps its high-water mark (≈ 820 MB for a batch of 32 at 224 px) for the life of the server process."""

    session: Any
    method: str = "onnx"
    input_name: str = field(default="x")
    run_options: Any = None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if self.run_options is None:
            import onnxruntime as ort

            self.run_options = ort.RunOptions()
            self.run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        out = self.session.run(None, {self.input_name: batch}, self.run_options)[0]
        return np.asarray(out, dtype=np.float32)


@dataclass
class OpenVinoEngine:
    """OpenVINO over the same ONNX file, in float32; one infer request per calling thread (made on its first call).

    Why first: on one thread EfficientNet-Lite0 takes ≈ 9.4 CPU-ms per 224-px image where ONNX Runtime takes ≈ 17,
    with the same embeddings (cosine ≥ 0.9999998; ``bench/results/fastdup.md``). Precision is pinned to f32: on
    CPUs with AMX or AVX-512 BF16 it would run in bfloat16, which moved the embeddings to cosine 0.972.

    A request's first call at an input shape it has not run (its first batch, a shorter last batch) specialises the
    model for that shape; those calls take turns (``specialise``). Two lanes specialising at once hung for good
    once on 2 cores (both lanes waiting inside OpenVINO while setting their input; thirteenth session's CI, in the
    browser tests' demo warm-up): the pattern ultralytics#25923 suspects behind its OpenVINO hangs on small
    machines (every request's first inference at a new shape specialising at once in the CPU plugin's thread
    pools). Runs at shapes a request has seen stay side by side."""

    compiled: Any
    method: str = "openvino"
    local: threading.local = field(default_factory=threading.local)
    specialise: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        local = self.local
        request = getattr(local, "request", None)
        if request is None:
            request = local.request = self.compiled.create_infer_request()
            local.shapes = set()
        x = np.ascontiguousarray(batch, dtype=np.float32)
        if x.shape in local.shapes:
            request.infer({0: x})
        else:
            with self.specialise:
                request.infer({0: x})
            local.shapes.add(x.shape)
        return np.array(request.get_output_tensor(0).data, dtype=np.float32)  # a copy: the next call reuses it


def _openvino_engine(path: Path, threads: int, lanes: int = 1) -> OpenVinoEngine:
    """Compile ``path`` for the CPU in float32: ``lanes`` streams of ``threads`` threads each.

    A stream runs one call at a time: lanes calling one single-stream model take turns (on 2 cores 12 wall-ms per
    image at 13 CPU-ms: one lane's speed); with a stream per lane they run side by side (6.3–7.0 wall-ms)."""
    import openvino as ov

    config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads * lanes, "NUM_STREAMS": lanes,
              "PERFORMANCE_HINT": "LATENCY", "ENABLE_CPU_PINNING": False}
    return OpenVinoEngine(ov.Core().compile_model(str(path), "CPU", config))


def onnx_file(arch: str, size: int, tap: bool = False) -> Path:
    """The backbone exported to ONNX (dynamic batch) once and cached under ``cache_root()``; torch is imported
    only to export (≈ 450 MB of resident memory a scan does not need otherwise). ``tap``: the model of
    :func:`cleaning.model.backbone.tapped_backbone` (the embedding and a pooled earlier block, side by side)."""
    tapped = tap and arch_spec(arch).tap >= 0
    out = cache_root() / "onnx" / f"{model_id(arch).replace('@', '-')}-{size}{'-tap' if tapped else ''}.onnx"
    if out.exists():
        return out
    import torch

    out.parent.mkdir(parents=True, exist_ok=True)
    model = tapped_backbone(arch) if tapped else create_backbone(arch)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        torch.onnx.export(model, (torch.zeros(1, 3, size, size),), str(tmp), input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}},
                          opset_version=17, dynamo=False)
    os.replace(tmp, out)
    return out


#: Images per backbone call: on 2 cores 8 runs as fast as 32 or faster (the activations stay in cache) with a third
#: of the memory arena (issue 15, `bench/results/fastdup.md`).
BATCH_SIZE = 8
_ENGINES: dict[tuple[str, int, str, int, int, bool], Engine] = {}
_ENGINES_LOCK = threading.Lock()
_USERS = 0  # steps inside engines_in_use()
#: Runtimes that failed to load the backbone in this process: ``auto`` skips them from then on.
_FAILED: set[str] = set()


def resolve_method(method: str) -> str:
    """``auto`` → ``openvino`` when OpenVINO imports, else ``onnx`` when ONNX Runtime does, else
    ``channels_last``; other names unchanged."""
    if method != "auto":
        return method
    if "openvino" not in _FAILED:
        try:
            import openvino  # noqa: F401

            return "openvino"
        except ImportError:
            pass
    try:
        import onnxruntime  # noqa: F401

        return "onnx"
    except ImportError:
        pass
    return "channels_last"


def get_engine(arch: str = DEFAULT_ARCH, size: int | None = None, method: str = "auto",
               threads: int | None = None, lanes: int = 1, tap: bool = True) -> Engine:
    """A ready backbone runner (cached per process).

    Args:
        method: "openvino", "onnx" (ONNX Runtime), "channels_last" / "eager" (torch), or "auto" (the first of
            openvino, onnx, channels_last that is installed; an OpenVINO that fails to load the model falls
            back to ONNX Runtime with a warning).
        threads: intra-op threads; default all usable CPUs.
        lanes: how many threads will call the engine side by side (:func:`_lanes`): OpenVINO gets one stream
            per lane; an ONNX Runtime session runs concurrent calls in parallel by itself.
        tap: the tapped model (:func:`onnx_file`): each row is the embedding's ``dim`` columns, then the tapped
            block's pooled output (when the architecture has one). Default, so every step shares one exported file
            and one compiled engine; ``False``: the plain backbone.
    Raises:
        CleaningError: unknown method, or ``onnx`` without onnxruntime; BackboneUnavailable from the backbone.
    """
    if method not in METHODS:
        raise CleaningError(f"unknown embedding method {method!r}", hint=f"use one of {', '.join(METHODS)}")
    size = size or arch_spec(arch).input_size
    threads = threads or n_cpus()
    asked, method = method, resolve_method(method)
    tap = tap and arch_spec(arch).tap >= 0
    key = (arch, size, method, threads, lanes if method == "openvino" else 1, tap)
    with _ENGINES_LOCK:
        if key in _ENGINES:
            return _ENGINES[key]
        engine: Engine
        if method == "openvino":
            try:
                engine = _openvino_engine(onnx_file(arch, size, tap), threads, lanes)
            except ImportError as e:
                raise CleaningError("OpenVINO is not installed", hint="pip install openvino") from e
            except RuntimeError as e:  # the model or this CPU is not supported: ONNX Runtime runs the same file
                if asked != "auto":
                    raise CleaningError(f"OpenVINO cannot run the backbone: {e}",
                                        hint="use method=\"onnx\" (ONNX Runtime runs the same file)") from e
                warnings.warn(f"OpenVINO cannot run the backbone ({e}); using ONNX Runtime", stacklevel=2)
                _FAILED.add("openvino")
                key = (arch, size, "onnx", threads, 1, tap)
                if key in _ENGINES:
                    return _ENGINES[key]
                engine = _onnx_engine(onnx_file(arch, size, tap), threads)
        elif method == "onnx":
            engine = _onnx_engine(onnx_file(arch, size, tap), threads)
        else:
            import torch

            model = tapped_backbone(arch) if tap else create_backbone(arch)
            if method == "channels_last":
                model = model.to(memory_format=torch.channels_last)
            engine = TorchEngine(model, method, threads)
        _ENGINES[key] = engine
        return engine


def _onnx_engine(path: Path, threads: int) -> OnnxEngine:
    """An ONNX Runtime session on ``path`` with ``threads`` intra-op threads."""
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise CleaningError("ONNX Runtime is not installed", hint="pip install onnxruntime") from e
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    # no busy-waiting between ops: on a shared 2-core machine spinning threads starve each other
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return OnnxEngine(sess, input_name=sess.get_inputs()[0].name)


@contextmanager
def engines_in_use() -> Iterator[None]:
    """Hold the cached engines while a step embeds; when the last holder ends, drop the OpenVINO ones (≈ 200 MB
    each above ONNX Runtime's shrunk arena). Two visitors' steps overlap: the first to end leaves the engine to the
    other. The next step compiles again (≈ 1 s)."""
    global _USERS
    with _ENGINES_LOCK:
        _USERS += 1
    try:
        yield
    finally:
        with _ENGINES_LOCK:
            _USERS -= 1
            for key in [k for k, e in _ENGINES.items() if isinstance(e, OpenVinoEngine) and _USERS == 0]:
                del _ENGINES[key]


@dataclass
class EmbedResult:
    """Embeddings for the readable paths; ``errors`` maps the index of each unreadable path to why."""

    embeddings: np.ndarray  # N×D float32; rows of unreadable paths are zero
    errors: dict[int, str]
    mid: np.ndarray | None = None  # N×tap_dim, the tapped block's pooled output (``tap=True``), L2-normalised

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of the rows that hold a real embedding."""
        mask = np.ones(len(self.embeddings), dtype=bool)
        mask[list(self.errors)] = False
        return mask


def _lanes(paths: Sequence[str | Path], size: int, batch_size: int, lanes: int, engine: Engine,
           mean_std: tuple[Sequence[float], Sequence[float]],
           on_decoded: OnDecoded | None) -> Iterator[tuple[int, list[Image.Image | str], np.ndarray | None]]:
    """Yield (start, decoded images or reasons why not, features of the decoded ones) per batch, in order.

    ``lanes`` threads each decode a whole batch and run it through ``engine`` (OpenVINO: a single-thread stream per
    lane; ONNX Runtime: one single-thread session called side by side). Intra-op threads wait for each other at
    every layer, lanes never do: ONNX Runtime 11 vs 17 wall-ms per image on 2 cores (``bench/results/fastdup.md``)."""
    from collections import deque

    mean, std = mean_std

    def load(i: int) -> Image.Image | str:
        try:
            im, full = _open_for_model(paths[i], size)
        except CleaningError as e:
            return e.message
        except OSError as e:  # vanished or unreadable since the scan
            return f"cannot read file: {e}"
        if on_decoded is not None and full:
            on_decoded(i, im)
        return square(im, size)

    def run(start: int) -> tuple[int, list[Image.Image | str], np.ndarray | None]:
        loaded = [load(i) for i in range(start, min(start + batch_size, len(paths)))]
        good = [im for im in loaded if isinstance(im, Image.Image)]
        return start, loaded, engine(to_array(good, mean, std)) if good else None

    starts = iter(range(0, len(paths), batch_size))
    with ThreadPoolExecutor(max_workers=lanes) as pool:
        pending = deque(pool.submit(run, s) for _, s in zip(range(2 * lanes), starts))  # two batches per lane
        while pending:
            done = pending.popleft().result()
            nxt = next(starts, None)
            if nxt is not None:
                pending.append(pool.submit(run, nxt))
            yield done


def embed_images(paths: Sequence[str | Path], arch: str = DEFAULT_ARCH, size: int | None = None,
                 batch_size: int = BATCH_SIZE, method: str = "auto", threads: int | None = None,
                 progress: Progress | None = None, on_decoded: OnDecoded | None = None,
                 tap: bool = False) -> EmbedResult:
    """Embed images, collecting per-file failures instead of raising.

    OpenVINO and ONNX Runtime run in ``threads`` lanes (default: every usable CPU; :func:`_lanes`); torch in one
    lane with ``threads`` intra-op threads. ``on_decoded(i, image)`` is called (in a lane's thread) for each path
    decoded at full size (non-JPEGs, JPEGs too small for a draft reduction), so the caller can measure those pixels
    without decoding the file again. ``tap``: also the pooled output of the architecture's tapped block
    (``EmbedResult.mid``; None when it has none).

    Returns:
        :class:`EmbedResult` with N×D float32 L2-normalised rows (zero rows where the file failed).
    """
    spec = arch_spec(arch)
    size = size or spec.input_size
    threads = threads or n_cpus()
    laned = resolve_method(method) in LANED
    lanes = threads if laned else 1
    # ``method`` as asked: ``auto`` may fall back to another laned runtime
    tap = tap and spec.tap >= 0
    # always the tapped model (the block's columns cost nothing): one exported file and one compiled engine per
    # process whoever embeds (the scan, the map, the trainer's probe features)
    engine = get_engine(arch, size, method, 1 if laned else threads, lanes=lanes)
    out = np.zeros((len(paths), spec.dim), dtype=np.float32)
    mid = np.zeros((len(paths), spec.tap_dim), dtype=np.float32) if tap else None
    errors: dict[int, str] = {}
    for start, loaded, feats in _lanes(paths, size, batch_size, lanes, engine, (spec.mean, spec.std), on_decoded):
        errors.update({start + j: r for j, r in enumerate(loaded) if isinstance(r, str)})
        if feats is not None:
            rows = [start + j for j, im in enumerate(loaded) if isinstance(im, Image.Image)]
            out[rows] = l2_normalise(feats[:, :spec.dim])
            if mid is not None:
                mid[rows] = l2_normalise(feats[:, spec.dim:])
        if progress:
            progress(min(start + batch_size, len(paths)), len(paths))
    return EmbedResult(out, errors, mid)


def compute_embeddings(paths: Sequence[str | Path], arch: str = DEFAULT_ARCH, size: int | None = None,
                       batch_size: int = BATCH_SIZE, method: str = "auto", threads: int | None = None,
                       progress: Progress | None = None) -> np.ndarray:
    """Embed every image: N×D float32, rows L2-normalised (D = 1280 for EfficientNet-Lite0).

    Raises:
        cleaning.data.images.UnreadableImage: a file is not a usable image (use :func:`embed_images` to
            collect failures instead).
    """
    res = embed_images(paths, arch, size, batch_size, method, threads, progress)
    if res.errors:
        from ..data.images import UnreadableImage

        i, reason = next(iter(sorted(res.errors.items())))
        raise UnreadableImage(f"{paths[i]}: {reason}", hint="fix or delete the file, then rescan")
    return res.embeddings
