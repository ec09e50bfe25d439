"""Smoke tests of every page through Streamlit's AppTest, and the library's independence from it."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parent.parent


def page_files() -> list[str]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("dash_pages", REPO / "dashboard.py")
    assert spec is not None
    src = (REPO / "dashboard.py").read_text()
    tree = ast.parse(src)
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PAGES":
            return [elt.elts[0].value for elt in node.value.elts]  # type: ignore[attr-defined]
    raise AssertionError("PAGES not found in dashboard.py")


def test_library_never_imports_streamlit() -> None:
    for py in (REPO / "cleaning").rglob("*.py"):
        tree = ast.parse(py.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] == "streamlit" for n in names), f"{py} imports streamlit"


def test_every_page_file_exists() -> None:
    missing = [f for f in page_files() if not (REPO / f).exists()]
    assert not missing, f"pages listed in dashboard.py but missing: {missing}"


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("app") / "demo"
    shutil.copytree(REPO / "demo" / "data", root)
    return root


@pytest.mark.parametrize("page", page_files())
def test_page_renders_without_exception(page: str, demo_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANING_ROOT", str(demo_root))
    at = AppTest.from_file(str(REPO / "dashboard.py"), default_timeout=240)
    at.run()
    assert not at.exception, at.exception
    if page != "pages/overview.py":
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title, f"{page} shows no title"


def test_overview_counts_the_demo(demo_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANING_ROOT", str(demo_root))
    at = AppTest.from_file(str(REPO / "dashboard.py"), default_timeout=120).run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images"] == "129" and metrics["Classes"] == "4" and metrics["Unusable files"] == "1"
    assert any("mammal_0035.jpg" in df.value.to_string() for df in at.dataframe)


def test_overview_counts_classes_in_a_table_without_a_chart_library(demo_root: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The landing page shows images per class as a table with in-cell bars: a Plotly chart there made the
    browser load and evaluate Plotly's 4.7 MB bundle (Overview 4.1 s on the demo, 5.2 s at 100,000 images;
    2.2 s / 2.6 s without it, bench/results/app_scale_quiet.md)."""
    monkeypatch.setenv("CLEANING_ROOT", str(demo_root))
    at = AppTest.from_file(str(REPO / "dashboard.py"), default_timeout=120).run()
    table = next(d.value for d in at.dataframe if "images" in d.value.columns)
    assert table["class"].tolist() == ["bird", "flower", "fruit", "mammal"]
    assert int(table["images"].sum()) == 129 and int(table["deleted"].sum()) == 0
    assert not at.get("plotly_chart")


def test_history_undo_from_the_page(demo_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cleaning.data.workspace import Workspace

    monkeypatch.setenv("CLEANING_ROOT", str(demo_root))
    ws = Workspace.open(demo_root)
    iid = ws.store.find_item("bird/bird_0004.jpg")
    ws.store.record([iid], "relabel", label="flower")
    at = AppTest.from_file(str(REPO / "dashboard.py"), default_timeout=120).run()
    at.switch_page("pages/history.py").run()
    assert "bird/bird_0004.jpg" in at.dataframe[0].value["image"].tolist()
    at.button(key="hist_undo").click().run()
    assert ws.store.current()[iid].label == "bird"
    assert "undone" in at.dataframe[0].value["state"].iloc[0]


def test_no_root_argument_opens_a_copy_of_the_demo() -> None:
    at = AppTest.from_file(str(REPO / "dashboard.py"), default_timeout=120).run()
    assert not at.exception
    assert any("bundled demo" in i.value for i in at.info)
    assert not list((REPO / "demo").glob("*.cleaning"))  # the committed demo is never written to


def test_history_reruns_without_rebuilding_the_table(demo_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The table of decisions is built once per data-set version (at 20,000 decisions a build is a row
    per decision and an items frame); a rerun that changes nothing reads the history no more."""
    from cleaning.data.store import Store
    from cleaning.data.workspace import Workspace

    monkeypatch.setenv("CLEANING_ROOT", str(demo_root))
    ws = Workspace.open(demo_root)
    ws.store.record([ws.store.find_item("bird/bird_0005.jpg")], "keep")
    reads = []
    real = Store.history
    monkeypatch.setattr(Store, "history", lambda self, *a, **k: reads.append(a or k) or real(self, *a, **k))
    at = AppTest.from_file(str(REPO / "dashboard.py"), default_timeout=120).run()
    at.switch_page("pages/history.py").run()
    assert "bird/bird_0005.jpg" in at.dataframe[0].value["image"].tolist()
    at.run()
    at.run()
    assert len([r for r in reads if not r]) == 1  # the whole history, once
