"""The UI in a real browser: Debian's chromium driven by Playwright against real API and UI servers.

Each page is opened, used as a person would, checked, and photographed. Screenshots go to
``test-output/ui/``; with ``PLANTGRAPH_DOCS_SCREENSHOTS=1`` they also refresh ``docs/images/``,
which docs/ui.md shows.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import ROOT, ui_server
from tests.ui.conftest import UiStack

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]
WAIT_MS = 120_000
OUT = ROOT / "test-output" / "ui"
DOCS_IMAGES = ROOT / "docs" / "images"


@pytest.fixture(scope="module")
def ui_url(ui_stack: UiStack) -> Iterator[str]:
    with ui_server(ui_stack.plant, ui_stack.api_url) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


def _shot(page: object, name: str) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"ui-{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    if os.environ.get("PLANTGRAPH_DOCS_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_IMAGES / path.name)
    return path


def _sign_in(browser: object, ui_url: str, key: str):  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page.set_default_timeout(WAIT_MS)
    page.goto(ui_url + "/", wait_until="domcontentloaded")
    page.get_by_label("API key", exact=True).fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in as").first.wait_for()
    return page


def _goto(page, name: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("link", name=name).first.click()
    page.get_by_role("heading", name=name).first.wait_for()


def test_overview_and_sign_in(browser: object, ui_url: str, ui_stack: UiStack) -> None:
    page = _sign_in(browser, ui_url, ui_stack.plant.keys["ana"])
    page.get_by_text("API ready").wait_for()
    assert page.get_by_text("role analyst").count() >= 1 or page.get_by_text("analyst").count() >= 1
    _shot(page, "overview")
    page.close()


def test_impact_explorer_search_and_trace(browser: object, ui_url: str, ui_stack: UiStack) -> None:
    scenario = ui_stack.plant.truth["scenarios"]["quality_hold"]
    page = _sign_in(browser, ui_url, ui_stack.plant.keys["ana"])
    _goto(page, "Impact explorer")
    page.get_by_label("Search by id or name (typos are fine)").fill(scenario["hold"])
    page.keyboard.press("Enter")
    page.get_by_text("Matches").first.wait_for()
    page.get_by_role("button", name="Trace").click()
    for customer in scenario["affected_customers"]:
        page.get_by_text(customer).first.wait_for()
    page.wait_for_timeout(2500)  # let the graph layout settle for the picture
    _shot(page, "impact")
    page.close()


def test_risk_board_cause_chain(browser: object, ui_url: str, ui_stack: UiStack) -> None:
    held = ui_stack.plant.truth["scenarios"]["deliveries_at_risk"]["lines_with_held_allocations"][0]
    page = _sign_in(browser, ui_url, ui_stack.plant.keys["pia"])
    _goto(page, "Delivery risk")
    page.get_by_text("Why, and what could unblock it").wait_for()
    box = page.get_by_label("Sales order line")
    box.click()
    page.keyboard.type(held)
    page.keyboard.press("Enter")
    # the cause chain is a list under the table: "- **hold** `HOLD-...`: ..."
    page.locator("li strong", has_text=re.compile(r"^hold$")).first.wait_for()
    page.wait_for_timeout(1500)
    _shot(page, "risk")
    page.close()


def test_root_cause_explorer(browser: object, ui_url: str, ui_stack: UiStack) -> None:
    scenario = ui_stack.plant.truth["scenarios"]["root_cause"]
    page = _sign_in(browser, ui_url, ui_stack.plant.keys["ana"])
    _goto(page, "Root cause")
    page.get_by_label("Incident id").fill(scenario["incident"])
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Find candidates").click()
    page.get_by_text("Evidence for").wait_for()
    # the top factor's evidence paths are code blocks under the chart (grid cells are hidden to locators)
    page.locator("code", has_text=scenario["factor"]).first.wait_for()
    page.wait_for_timeout(1500)
    _shot(page, "rootcause")
    page.close()


def test_copilot_citation_opens_the_impact_explorer(browser: object, ui_url: str, ui_stack: UiStack) -> None:
    scenario = ui_stack.plant.truth["scenarios"]["quality_hold"]
    page = _sign_in(browser, ui_url, ui_stack.plant.keys["ana"])
    _goto(page, "Copilot")
    page.get_by_placeholder(re.compile("Ask about")).fill(f"Which customers are affected by hold {scenario['hold']}?")
    page.keyboard.press("Enter")
    page.get_by_text(scenario["affected_customers"][0]).first.wait_for()
    page.get_by_text("Degraded mode").first.wait_for()
    _shot(page, "copilot")
    page.get_by_text(re.compile(r"^Citations \(")).first.click()
    target = scenario["affected_customers"][0]
    page.get_by_role("link", name=f"open {target}").first.click()
    # same session: no second sign-in, the explorer opens on the cited entity
    page.get_by_role("heading", name=re.compile(target)).wait_for()
    assert "/impact" in page.url
    page.close()


def test_approval_by_a_second_person(browser: object, ui_url: str, ui_stack: UiStack) -> None:
    lots = ui_stack.plant.truth["scenarios"]["contaminated_supplier_lot"]["in_house_lots"][:1] or \
        ui_stack.plant.truth["scenarios"]["quality_hold"]["reached_lots"][:1]
    with ui_stack.client("apo") as c:
        resp = c.post("/v1/proposals", json={"action": {"kind": "quality_hold", "lot_ids": lots,
                                                        "reason": "browser test: suspect"}})
        assert resp.status_code == 201, resp.text
        pid = resp.json()["id"]
    mine = _sign_in(browser, ui_url, ui_stack.plant.keys["apo"])
    _goto(mine, "Approvals & audit")
    mine.get_by_text(pid).first.wait_for()
    assert mine.get_by_text("You proposed this").count() >= 1
    mine.close()
    page = _sign_in(browser, ui_url, ui_stack.plant.keys["apo2"])
    _goto(page, "Approvals & audit")
    page.get_by_text(pid).first.wait_for()
    page.get_by_label("Comment").first.fill("approved in the browser test")
    page.keyboard.press("Enter")
    _shot(page, "approvals")
    page.get_by_role("button", name="Approve").first.click()
    page.wait_for_timeout(3000)
    with ui_stack.client("apo") as c:
        assert c.get(f"/v1/proposals/{pid}").json()["status"] == "approved"
    page.close()
