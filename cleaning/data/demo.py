"""The bundled demo data set (``demo/data`` in the repository), used through a writable copy.

The committed demo is never modified: :func:`prepare_demo` copies it to a cache folder (default
``~/.cache/cleaning/demo/<version>/data``; ``CLEANING_DEMO_DIR`` overrides the parent) and records the
simulated provenance from ``demo/manifest.json`` in the copy's store.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from ..errors import DatasetError

DEMO_SRC = Path(__file__).resolve().parents[2] / "demo"  # the repository's demo/ (editable install)


def demo_manifest() -> dict:
    """The manifest of planted problems and simulated provenance."""
    return json.loads((DEMO_SRC / "manifest.json").read_text(encoding="utf-8"))


def _version() -> str:
    return hashlib.sha256((DEMO_SRC / "manifest.json").read_bytes()).hexdigest()[:12]


def demo_parent() -> Path:
    env = os.environ.get("CLEANING_DEMO_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "cleaning" / "demo"


def prepare_demo(parent: str | Path | None = None, fresh: bool = False) -> Path:
    """Copy the committed demo into a writable folder (once) and return its ROOT.

    Args:
        parent: where to put the copy (default :func:`demo_parent`).
        fresh: throw away an earlier copy and its decisions and start again.
    Raises:
        DatasetError: the repository's demo folder is missing.
    """
    if not (DEMO_SRC / "data").is_dir():
        raise DatasetError(f"the bundled demo is missing at {DEMO_SRC / 'data'}")
    base = Path(parent) if parent else demo_parent()
    home = base / _version()
    root = home / "data"
    if fresh and home.exists():
        shutil.rmtree(home)  # our own copy of the demo, not user data
    if not root.exists():
        home.mkdir(parents=True, exist_ok=True)
        tmp = home / "data.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(DEMO_SRC / "data", tmp)
        os.rename(tmp, root)
        _record_provenance(root)
    return root


def _record_provenance(root: Path) -> None:
    from .workspace import Workspace

    ws = Workspace.open(root, refresh=True)
    prov = demo_manifest().get("provenance", {})
    for r in ws.items_frame().itertuples(index=False):
        p = prov.get(r.path)
        if p:
            ws.store.set_provenance(r.item_id, query=p.get("query"), url=p.get("url"))
