"""Real-browser checks of issue 12: the ``/overview`` deep link on a fresh server, the wait helper, and the
Deleted view (restore after apply brings the file back byte-identical)."""

from __future__ import annotations

import hashlib
import re

from playwright.sync_api import Page, expect

from .conftest import IDLE_JS, App, wait_idle


def test_overview_deep_link_on_a_fresh_server(app: App, page: Page) -> None:
    page.goto(f"{app.base}/overview")  # the first page request this server sees
    expect(page.get_by_role("heading", name="Overview").first).to_be_visible(timeout=120_000)
    wait_idle(page)
    expect(page.get_by_text("Page not found")).to_have_count(0)
    expect(page.get_by_text("Files that are not usable images")).to_be_visible()
    expect(page.get_by_text("Data set:").first).to_be_visible()  # inside the full frame


def test_autofix_box_computes_its_plan_when_opened(app: App, page: Page) -> None:
    """The autofix box is a lazy expander (its plan costs 1.4 CPU-s per data-set version at 100k images):
    closed it shows nothing; a click on it reruns the page and the plan appears."""
    page.goto(f"{app.base}/issues")
    expect(page.get_by_role("heading", name="Issues").first).to_be_visible(timeout=120_000)
    wait_idle(page)
    expect(page.get_by_text("expected precision")).to_have_count(0)
    page.get_by_text("Clean the obvious in one step (autofix)").first.click()
    wait_idle(page)
    expect(page.get_by_text(re.compile(r"expected precision at")).first).to_be_visible(timeout=60_000)
    expect(page.get_by_role("button", name=re.compile(r"^Apply these \d+ fixes as one batch$"))).to_be_visible()


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


RK = ".rk"  # the keyboard-review view (Playwright's CSS selectors pierce the component's shadow root)


def current(page: Page) -> str:
    return page.locator(RK).get_attribute("data-item") or ""


def press_and_wait_next(page: Page, key: str, before: str) -> str:
    page.keyboard.press(key)
    page.wait_for_function(f"""() => {{ const v = document.querySelector('[data-testid=stMain] {RK}') ||
        [...document.querySelectorAll('*')].map(e => e.shadowRoot && e.shadowRoot.querySelector('{RK}'))
        .find(Boolean); return v && v.dataset.item && v.dataset.item !== {before!r}; }}""", timeout=10_000)
    return current(page)


def focus_by_tab(page: Page, label: str, max_tabs: int = 150, tries: int = 3) -> None:
    """Press Tab until the focused element is the switch (checkbox) named ``label`` (keyboard only).

    A rerun that replaces the focused element drops the focus back to the page; then the walk starts again
    from the top of the page (at most ``tries`` walks)."""
    for _ in range(tries):
        page.evaluate("() => { if (document.activeElement) document.activeElement.blur(); }")
        for _ in range(max_tabs):
            page.keyboard.press("Tab")
            name = page.evaluate("""() => { const a = document.activeElement;
                if (!a || a.type !== 'checkbox') return '';
                const l = a.closest('label'); return (a.getAttribute('aria-label') || (l && l.innerText) || '').trim(); }""")
            if label in name:
                return
        wait_idle(page)
    raise AssertionError(f"Tab never reached {label!r}")


def test_keyboard_only_review_records_every_decision(app: App, page: Page) -> None:
    ws = app.workspace()
    before_n = len(ws.store.history())
    page.goto(f"{app.base}/issues")
    expect(page.get_by_role("heading", name="Issues").first).to_be_visible(timeout=120_000)
    wait_idle(page)
    focus_by_tab(page, "Keyboard review")
    page.keyboard.press("Space")
    expect(page.locator(RK)).to_be_visible(timeout=60_000)
    expect(page.locator(".rk-count")).to_contain_text("Image 1 of")
    wait_idle(page)
    first = current(page)
    second = press_and_wait_next(page, "f", first)  # looks fine
    third = press_and_wait_next(page, "d", second)  # delete
    fourth = press_and_wait_next(page, "ArrowRight", third)  # skip
    assert press_and_wait_next(page, "ArrowLeft", fourth) == third  # back
    label = ws.store.current()[third].label
    classes = page.locator(".rk-classes li").all_inner_texts()
    k, cls = next((n + 1, t.split(" ", 1)[1]) for n, t in enumerate(classes) if t.split(" ", 1)[1] != label)
    press_and_wait_next(page, str(k), third)  # relabel by number
    page.keyboard.press("u")  # undo the relabel: back on that image
    page.wait_for_function("() => document.querySelector('[data-testid=stMain]') && true", timeout=5_000)
    expect(page.locator(RK)).to_have_attribute("data-item", third)
    wait_idle(page)
    want = [(first, "keep", None, "active"), (second, "delete", None, "active"), (third, "relabel", cls, "undone")]
    for _ in range(100):  # recorded by the script runs the keys triggered
        got = [(d.item_id, d.action, d.label, d.state) for d in ws.store.history()[before_n:]]
        if got == want:
            break
        page.wait_for_timeout(100)
    assert got == want
    assert all(d.note == "keyboard review" for d in ws.store.history()[before_n:])
    lat = page.evaluate("window.__reviewLatency")
    assert lat and len(lat) >= 5  # the view measured every key → image shown
    for iid in (first, second):
        ws.store.record([iid], "restore") if ws.store.current()[iid].deleted else None


def test_hover_a_point_shows_its_image_without_a_rerun(app: App, page: Page) -> None:
    from .test_clicks import hover_target

    _, paths, target = hover_target(app, page)
    runs = page.evaluate("() => performance.getEntriesByType('resource').length")
    page.mouse.move(target["x"] - 30, target["y"] - 30)
    page.mouse.move(target["x"], target["y"], steps=4)
    box = page.locator(".cleaning-hover-preview")
    expect(box).to_be_visible(timeout=5_000)
    expect(box).to_have_attribute("data-item", target["row"])  # the row the preview shows
    expect(box).to_contain_text(paths[target["id"]])
    label = paths[target["id"]].split("/")[0]
    expect(box.locator(".hp-label")).to_contain_text(re.compile(rf"^{re.escape(label)} → \S+ \d+%"))  # label → pred
    src = box.locator("img").get_attribute("src") or ""
    assert src.startswith("data:image/jpeg;base64,") and len(src) > 500  # the thumbnail itself
    assert page.evaluate(IDLE_JS)  # hovering started no script run
    assert page.evaluate("() => performance.getEntriesByType('resource').length") == runs  # and fetched nothing
    page.mouse.move(5, 5)
    expect(box).to_be_hidden()


def dialog_path(dlg) -> str:  # noqa: ANN001 — a Locator
    """The ROOT-relative path of the image the dialog shows."""
    return next(w.strip("`") for w in dlg.inner_text().split()
                if "/" in w and w.strip("`").endswith((".jpg", ".png")))


def dialog_position(dlg) -> tuple[int, int]:  # noqa: ANN001 — a Locator
    """(n, of) from the dialog's "Image n of N …" line."""
    m = re.search(r"Image (\d+) of (\d+)", dlg.inner_text())
    assert m, dlg.inner_text()
    return int(m.group(1)), int(m.group(2))


def test_review_dialog_without_a_mouse(app: App, page: Page) -> None:
    """Tab to a card's Open button, Enter opens the dialog, ← / → (and the Previous / Next buttons) walk the
    queue, a single key decides, the dialog closes."""
    ws = app.workspace()
    n0 = len(ws.store.history())
    page.goto(f"{app.base}/issues")
    expect(page.get_by_role("heading", name="Issues").first).to_be_visible(timeout=120_000)
    wait_idle(page)
    for _ in range(120):
        page.keyboard.press("Tab")
        if page.evaluate("""() => { const a = document.activeElement; return !!(a && a.tagName === 'BUTTON' &&
                a.closest('[class*="st-key-iss_item"][class*="_open"]')); }"""):  # a card's Open button
            break
    else:
        raise AssertionError("Tab never reached an Open button")
    page.keyboard.press("Enter")
    dlg = page.locator("[data-testid=stDialog]")
    expect(dlg).to_be_visible(timeout=60_000)
    expect(dlg).to_contain_text("Keys: f/Enter looks fine")
    path = dialog_path(dlg)
    expect(page.locator("[data-testid=stDialog][data-keys=ready]")).to_be_attached(timeout=30_000)
    # ← / → walk the queue the dialog was opened from, keys and buttons with words alike. The Tab walk may
    # land on any card (a rerun can drop the focus), so step away from the nearer end of the queue first.
    pos, total = dialog_position(dlg)
    assert total > 1 and 1 <= pos <= total
    expect(dlg.get_by_role("button", name="Next →")).to_be_visible()
    expect(dlg.get_by_role("button", name="← Previous")).to_be_visible()
    away, back, by = ("ArrowRight", "ArrowLeft", 1) if pos < total else ("ArrowLeft", "ArrowRight", -1)
    page.keyboard.press(away)
    expect(dlg).to_contain_text(f"Image {pos + by} of {total}", timeout=30_000)
    wait_idle(page)  # the dialog's run has replaced the panel too
    assert dialog_path(dlg) != path
    page.keyboard.press(back)
    expect(dlg).to_contain_text(f"Image {pos} of {total}", timeout=30_000)
    wait_idle(page)
    assert dialog_path(dlg) == path
    dlg.get_by_role("button", name="Next →" if by == 1 else "← Previous").click()
    expect(dlg).to_contain_text(f"Image {pos + by} of {total}", timeout=30_000)
    page.keyboard.press(back)  # the focus is still the dialog's after a click on its button
    expect(dlg).to_contain_text(f"Image {pos} of {total}", timeout=30_000)
    wait_idle(page)
    assert len(ws.store.history()) == n0  # walking records nothing
    page.keyboard.press("d")
    expect(dlg).to_be_hidden(timeout=60_000)
    wait_idle(page)
    new = ws.store.history()[n0:]
    assert [(d.action, d.path) for d in new] == [("delete", path)]
    ws.store.undo()
