"""Real-browser checks of issue 12: the ``/overview`` deep link on a fresh server, the wait helper, and the
Deleted view (restore after apply brings the file back byte-identical)."""

from __future__ import annotations

import hashlib

from playwright.sync_api import Page, expect

from .conftest import IDLE_JS, App, wait_idle


def test_overview_deep_link_on_a_fresh_server(app: App, page: Page) -> None:
    page.goto(f"{app.base}/overview")  # the first page request this server sees
    expect(page.get_by_role("heading", name="Overview").first).to_be_visible(timeout=120_000)
    wait_idle(page)
    expect(page.get_by_text("Page not found")).to_have_count(0)
    expect(page.get_by_text("Files that are not usable images")).to_be_visible()
    expect(page.get_by_text("Data set:").first).to_be_visible()  # inside the full frame


def test_wait_idle_waits_for_the_run_to_finish(app: App, page: Page) -> None:
    page.goto(f"{app.base}/history")
    wait_idle(page)  # no fixed sleeps after this: the page must be there
    assert page.evaluate(IDLE_JS)
    assert page.get_by_role("heading", name="History").first.is_visible()
    state = page.evaluate("document.querySelector('[data-testid=stApp]').getAttribute('data-test-script-state')")
    assert state == "notRunning"  # the attribute the helper relies on exists in this Streamlit


def test_deleted_view_restores_a_quarantined_file_byte_identical(app: App, page: Page) -> None:
    from cleaning.data.files import apply_decisions

    ws = app.workspace()
    path = "fruit/fruit_0007.jpg"
    iid = ws.item_id_for_path(path)
    before = hashlib.sha256((app.root / path).read_bytes()).hexdigest()
    ws.store.record([iid], "delete", note="browser test")
    apply_decisions(ws)
    assert not (app.root / path).exists()
    page.goto(f"{app.base}/deleted")
    expect(page.get_by_role("heading", name="Deleted").first).to_be_visible(timeout=120_000)
    wait_idle(page)
    page.get_by_placeholder("file name, class, note or source query").fill("fruit_0007")
    page.keyboard.press("Enter")
    wait_idle(page)
    expect(page.get_by_text("fruit_0007.jpg").first).to_be_visible()
    page.locator("[data-testid=stMain]").get_by_role("button", name="Restore", exact=True).first.click()
    expect(page.get_by_text(f"Restored {path}").first).to_be_visible()  # the toast after the rerun
    wait_idle(page)
    assert not ws.store.current()[iid].deleted
    last = ws.store.history()[-1]
    assert (last.item_id, last.action, last.state) == (iid, "restore", "active")
    apply_decisions(ws)
    assert hashlib.sha256((app.root / path).read_bytes()).hexdigest() == before
