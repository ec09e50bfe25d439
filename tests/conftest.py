"""Shared test setup: no network (loopback only), a fresh demo copy folder, small real-image trees."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parent.parent

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Speed is measured in bench/, not in tests: no per-example deadline (the default 200 ms fails property
# tests on a loaded machine without anything being wrong).
settings.register_profile("project", deadline=None)
settings.load_profile("project")
os.environ.setdefault("TORCH_HOME", str(Path.home() / ".cache" / "torch"))

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check(addr: object) -> None:
    host = addr[0] if isinstance(addr, tuple) else addr
    if isinstance(host, str) and host.startswith("/"):
        return  # unix socket
    try:
        ip = ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        raise OSError(f"tests may not resolve-and-connect to {host!r}: no network in tests") from None
    if not ip.is_loopback:
        raise OSError(f"tests may not connect to {host}: only loopback is allowed")


def _guarded_connect(self: socket.socket, addr: object) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check(addr)
    return _real_connect(self, addr)


def _guarded_connect_ex(self: socket.socket, addr: object) -> int:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check(addr)
    return _real_connect_ex(self, addr)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _isolated_demo(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own demo-copy folder and state-dir default (never ~/.cache/cleaning/demo)."""
    monkeypatch.setenv("CLEANING_DEMO_DIR", str(tmp_path_factory.mktemp("demo")))
    monkeypatch.delenv("CLEANING_STATE_DIR", raising=False)
    monkeypatch.delenv("CLEANING_ROOT", raising=False)


@pytest.fixture(scope="session")
def mapped_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled demo, scanned once per test session with a UMAP map (the pages' review tests share it)."""
    from tests.apptest import scanned_demo

    return scanned_demo(tmp_path_factory.mktemp("mapped_demo"), issues=False, projection="umap")


@pytest.fixture
def mapped_ws(mapped_demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """A private copy of :func:`mapped_demo` (its decisions stay in this test), opened."""
    from cleaning.data.workspace import Workspace
    from tests.apptest import demo_copy

    return Workspace.open(demo_copy(mapped_demo, tmp_path, monkeypatch))


def demo_subset_workspace(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
                          per_class: int):  # noqa: ANN201 — a Workspace
    """A workspace over the first ``per_class`` real demo photos of bird, fruit and mammal (the model cache shared
    by the session, so the backbone embeds each photo once)."""
    import shutil

    from cleaning.data.workspace import Workspace

    monkeypatch.setenv("CLEANING_CACHE", str(tmp_path_factory.getbasetemp() / "model-cache"))
    root = tmp_path / "data"
    for label in ("bird", "fruit", "mammal"):
        (root / label).mkdir(parents=True)
        for p in sorted((REPO / "demo" / "data" / label).glob("*.jpg"))[:per_class]:
            shutil.copy(p, root / label / p.name)
    return Workspace.open(root)
