"""Issues page (issue 9): a junk group is one card with one "Delete all N" (one undoable batch) and "Looks
fine"; an off-topic image's primary action is Delete, never "Accept → class". AppTest on a scanned demo copy
whose cached scan marks the demo's off-topic photos as one junk group (the page reads that cache as usual)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cleaning.data.cache import load_arrays, save_arrays
from cleaning.data.workspace import Workspace
from cleaning.review import analysis
from tests.test_pages_issues import n_open, open_page, prepared, root, show_all  # noqa: F401 — fixtures

GROUP = "junk-testgroup"


@pytest.fixture
def grouped(root: Path) -> tuple[Path, list[str]]:  # noqa: F811 — the imported fixture
    """The scan cache of the demo copy with its single off-topic rows joined into one junk group."""
    ws = Workspace.open(root)
    key = analysis.scan_key(ws)
    arrays = load_arrays(ws.cache_dir, "scan", key)
    assert arrays is not None
    out = arrays["i_issue"] == "outlier"
    assert out.sum() >= 2, "the demo has off-topic photos found alone"
    arrays["i_group"] = arrays["i_group"].astype(object)
    arrays["i_group"][out] = GROUP
    arrays["i_group"] = arrays["i_group"].astype(str)
    save_arrays(ws.cache_dir, "scan", key, **arrays)
    members = sorted({str(i) for i in arrays["i_item_id"][out]})
    ws.store.close()
    return root, members


def test_the_group_is_one_card_and_delete_all_is_one_undoable_batch(grouped: tuple[Path, list[str]]) -> None:
    data_root, members = grouped
    at = show_all(open_page("pages/issues.py"))
    n = n_open(at)
    key = f"iss_group:{GROUP}_delete_all"
    assert at.button(key=key).label == f"Delete all {len(members)}"
    assert not [b for b in at.button if b.key and any(m in b.key for m in members)]  # no per-image card
    at.button(key=key).click().run()
    ws = Workspace.open(data_root)
    hist = ws.store.history()
    assert len(hist) == len(members) and len({d.batch for d in hist}) == 1
    assert all(ws.store.current()[m].deleted for m in members)
    assert n_open(at) == n - 1 and key not in [b.key for b in at.button]
    at.button(key="frame_undo").click().run()
    assert not any(Workspace.open(data_root).store.current()[m].deleted for m in members)
    assert n_open(at) == n


def test_looks_fine_keeps_the_whole_group(grouped: tuple[Path, list[str]]) -> None:
    data_root, members = grouped
    at = show_all(open_page("pages/issues.py"))
    at.button(key=f"iss_group:{GROUP}_keep_all").click().run()
    state = Workspace.open(data_root).store.current()
    assert all(state[m].kept and not state[m].deleted for m in members)


def test_an_off_topic_image_offers_delete_first_never_accept(root: Path) -> None:  # noqa: F811
    at: AppTest = show_all(open_page("pages/issues.py"))
    ws = Workspace.open(root)
    outliers = set(analysis.load_or_find_issues(ws).query("issue == 'outlier'")["item_id"])
    assert outliers
    for iid in outliers:
        k = f"iss_item:{iid}"
        primary = [b for b in at.button if b.key and b.key.startswith(k) and b.proto.type == "primary"]
        assert [b.key for b in primary] == [f"{k}_delete_off"], primary
        assert not [b for b in at.button if b.key == f"{k}_accept"]
