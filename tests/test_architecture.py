"""The library's layout is its architecture: which wing may import which, no cycles, small files.

Wings of ``cleaning/``: ``data`` (tree walk, images, store — the only SQL —, workspace, files, caches),
``detect`` (pure detectors), ``model`` (backbone, embeddings, out-of-sample heads, training, runs,
projection), ``scrape`` (search, fetch, dedupe, run), ``review`` (analysis, queue, selection, sources,
figures) and ``cli``. ``errors``, ``groups`` and ``progress`` sit at the bottom and import no wing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LIB = REPO / "cleaning"

# wing -> wings it may import (itself and the bottom modules are always allowed)
ALLOWED: dict[str, set[str]] = {
    "base": set(),
    "data": set(),
    "detect": {"data"},
    "model": {"data"},
    "scrape": {"data"},
    "review": {"data", "detect", "model"},
    "cli": {"data", "detect", "model", "scrape", "review"},
}
BOTTOM = {"cpus", "errors", "groups", "progress"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _wing(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in BOTTOM or parts[1] == "__main__":
        return "base" if len(parts) == 1 or parts[1] in BOTTOM else "cli"
    return parts[1]


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(absolute module imported, at module top level?) for every import of ``cleaning`` modules."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pkg = _module_name(path).split(".")
    if path.name != "__init__.py":
        pkg = pkg[:-1]
    top_level = {id(n) for n in tree.body}
    for node in tree.body:  # imports under `if TYPE_CHECKING:` are not run
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            top_level.update(id(n) for n in ast.walk(node))
            for n in ast.walk(node):
                n._type_only = True
    out: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if getattr(node, "_type_only", False):
            continue
        names: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names = [mod] if node.module else [f"{mod}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for n in names:
            if n == "cleaning" or n.startswith("cleaning."):
                out.append((n, id(node) in top_level))
    return out


LIB_FILES = sorted(LIB.rglob("*.py"))


@pytest.mark.parametrize("path", LIB_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_wing_imports_only_what_it_may(path: Path) -> None:
    me = _wing(_module_name(path))
    for mod, _ in _imports(path):
        other = _wing(mod)
        assert other == me or other == "base" or other in ALLOWED[me], (
            f"{path.relative_to(REPO)} ({me}) imports {mod} ({other}): {me} may import {sorted(ALLOWED[me])}")


def test_detect_and_data_import_no_model_scrape_review_or_pages() -> None:
    for path in LIB_FILES:
        if _wing(_module_name(path)) in {"data", "detect"}:
            bad = [m for m, _ in _imports(path) if _wing(m) in {"model", "scrape", "review", "cli"}]
            assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def test_library_never_imports_streamlit_or_pages() -> None:
    for path in LIB_FILES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import)
                    else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for m in mods:
                assert not m.startswith(("streamlit", "pages")), f"{path.relative_to(REPO)} imports {m}"


def test_no_import_cycle_between_modules() -> None:
    """Counting every import (also those inside functions), the module graph has no cycle."""
    names = {_module_name(p): p for p in LIB_FILES}
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        deps = set()
        for mod, _ in _imports(path):
            while mod and mod not in names:  # `from cleaning.x import name` names a module or an attribute
                mod = mod.rpartition(".")[0]
            if mod and mod != name and not name.startswith(mod + ".") and mod != "cleaning":
                deps.add(mod)
        graph[name] = deps
    state: dict[str, int] = {}

    def visit(n: str, trail: list[str]) -> None:
        state[n] = 1
        for d in graph[n]:
            if d.startswith(n + "."):
                continue  # a package's __init__ importing its own sub-modules
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(trail + [n, d]))
            if not state.get(d):
                visit(d, trail + [n])
        state[n] = 2

    for n in graph:
        if not state.get(n):
            visit(n, [])


@pytest.mark.parametrize("folder", ["cleaning", "pages"])
def test_files_stay_small(folder: str) -> None:
    big = {str(p.relative_to(REPO)): n for p in (REPO / folder).rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > 420}
    assert not big, f"files over ~400 lines: {big}"


def test_cli_has_one_root_parser_and_no_import_hooks() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in LIB_FILES)
    # everything is imported by name: a missing or broken module is an error, never silently skipped
    assert "__import__(" not in text and "import_module(" not in text
    assert text.count("argparse.ArgumentParser(") == 1
    assert text.count('add_argument("--state-dir"') == 1


def test_pages_hold_no_sql() -> None:
    """The pages ask the library; only the store speaks SQL."""
    for path in sorted((REPO / "pages").glob("*.py")) + [REPO / "dashboard.py"]:
        text = path.read_text(encoding="utf-8")
        for needle in ("store.query(", "store.conn", ".execute(", "SELECT ", "INSERT ", "UPDATE "):
            assert needle not in text, f"{path.relative_to(REPO)} has SQL ({needle.strip()})"


def test_only_the_store_speaks_sql() -> None:
    """SQL lives in the store modules (data/store*.py); the rest of the library calls their methods."""
    import re

    sql = re.compile(r"\.execute(many|script)?\(|\.query\(\s*f?[\"'](SELECT|INSERT|UPDATE|DELETE|PRAGMA)|store\.conn\b")
    for path in LIB_FILES:
        if path.parent.name == "data" and path.name.startswith("store"):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            assert not sql.search(line), f"{path.relative_to(REPO)}:{n} speaks SQL: {line.strip()}"
