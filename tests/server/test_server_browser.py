"""The review console in a real Chromium (Debian's, driven by Playwright; nothing is
downloaded at run time): sign in, the veiled picture is blurred and grey by computed
style, press-and-hold reveals it and the reveal is in the audit log, two accounts
confirm an item under a two-person rule, and hostile text renders as text.

Set ANSIM_SCREENSHOT_DIR to keep the screenshots (docs/ holds the committed ones)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from ansim.casework import confirmations
from ansim.store.tables import AuditEntry, Takedown
from sqlalchemy import select

from tests.server_fixtures import (
    HOSTILE_LABEL,
    HOSTILE_URL,
    PASSWORD,
    LiveServer,
    ready_app,
    served_home,
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip

playwright_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip(
        "Debian's chromium is not installed (`make test` installs it)", allow_module_level=True
    )


@pytest.fixture
def server_home(ansim_home, tmp_path):  # noqa: ANN001, ANN201
    with served_home(tmp_path) as home:
        yield home


@pytest.fixture
def browser():  # noqa: ANN201
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield launched
        launched.close()


def sign_in(browser, base: str, name: str):  # noqa: ANN001, ANN201
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill('input[name="name"]', name)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_url(f"{base}/queue")
    return page


def image_loaded(page) -> bool:  # noqa: ANN001
    return page.evaluate(
        "() => { const i = document.getElementById('item-image'); "
        "return i.complete && i.naturalWidth > 0; }"
    )


def test_review_in_chromium(server_home, browser, tmp_path) -> None:  # noqa: ANN001
    shots = Path(os.environ.get("ANSIM_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    workspace = server_home.workspace
    confirmations.set_rule(workspace, "digital-sex-crime", 2)
    with LiveServer(ready_app(workspace)) as server:
        alice = sign_in(browser, server.url, "alice")
        dialogs: list[str] = []
        alice.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        alice.goto(f"{server.url}/queue")
        assert alice.locator("table.queue tbody tr").count() == 2
        alice.screenshot(path=str(shots / "console-queue.png"), full_page=True)

        item = f"{server.url}/item/{server_home.item_id}"
        alice.goto(item)
        alice.wait_for_function("() => document.getElementById('item-image').naturalWidth > 0")
        style = alice.evaluate(
            "() => getComputedStyle(document.getElementById('item-image')).filter"
        )
        assert "blur(" in style and "grayscale(1)" in style, style
        alice.screenshot(path=str(shots / "console-item-veiled.png"), full_page=True)

        # Press and hold: the unveiled picture comes in; letting go veils it again.
        frame = alice.locator("#media")
        frame.hover()
        alice.mouse.down()
        alice.wait_for_selector("#item-image.revealed")
        alice.wait_for_function(
            "() => { const i = document.getElementById('item-image'); "
            "return i.src.includes('/media/full') && i.complete && i.naturalWidth > 0; }"
        )
        revealed = alice.evaluate(
            "() => getComputedStyle(document.getElementById('item-image')).filter"
        )
        assert revealed == "none"
        alice.screenshot(path=str(shots / "console-item-revealed.png"), full_page=True)
        alice.mouse.up()
        alice.wait_for_selector("#item-image.veiled")
        assert alice.locator("#reveal-count").text_content() == "1"
        with workspace.store.session() as session:
            reveals = session.execute(
                select(AuditEntry.actor, AuditEntry.subject).where(
                    AuditEntry.action == "review.reveal"
                )
            ).all()
        assert reveals == [("alice", f"takedown:{server_home.item_id}")]

        # Two accounts confirm under the two-person rule.
        alice.fill('#confirm-form input[name="note"]', "same photo, cropped")
        alice.click("#confirm")
        alice.wait_for_load_state()
        bob = sign_in(browser, server.url, "bob")
        bob.goto(item)
        assert "alice (1 of 2 needed)" in bob.locator("#confirmed-by").text_content()
        bob.click("#confirm")
        bob.wait_for_load_state()
        with workspace.store.session() as session:
            assert session.get(Takedown, server_home.item_id).status == "confirmed"

        # Hostile URL and label: shown as text, no script runs, no direction override obeyed.
        alice.goto(f"{server.url}/item/{server_home.hostile_item_id}")
        shown_url = alice.locator("#location").text_content()
        shown_label = alice.locator("#reference-label").text_content()
        assert shown_url == HOSTILE_URL.replace("\u202e", "\u27e6U+202E\u27e7")
        assert shown_label == HOSTILE_LABEL.replace("\u202e", "\u27e6U+202E\u27e7")
        assert alice.locator("#location script, #reference-label img").count() == 0
        assert dialogs == []
