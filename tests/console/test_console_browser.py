"""The console in a real browser: Chromium from the distribution's packages, driven by
Playwright, over the same run as ``test_console.py``.

Every page loads without a console error and is written as a screenshot under
``test-output/console/`` (``$HEADWATER_TEST_OUTPUT`` moves it) for review; the lineage
graph draws the run's versions and leads to their pages; a count on the Topics page
moves when events are produced, and a rollout started from the command line appears on
the Serving page, both by the page's own live refresh. Skipped, with the reason,
without Playwright or Chromium; failed instead under ``HEADWATER_REQUIRE_EXTRAS=1``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.console.loop import Loop, clicks_csv
from tests.extras import REQUIRE_EXTRAS, require_extra

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page

pytestmark = pytest.mark.slow

#: Debian's Chromium (``apt-get install chromium``): nothing is downloaded at test time.
CHROMIUM = os.environ.get("HEADWATER_CHROMIUM", "/usr/bin/chromium")
OUTPUT = Path(os.environ.get("HEADWATER_TEST_OUTPUT", "test-output")) / "console"
PAGES = ("topics", "features", "models", "serving", "evaluation")
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    sync_api = require_extra("playwright.sync_api")
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        reason = f"no Chromium at {CHROMIUM}: apt-get install chromium"
        if REQUIRE_EXTRAS:
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM,
                                              args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()


class Watched:
    """A page whose console errors and uncaught exceptions are kept."""

    def __init__(self, browser: Browser) -> None:
        self.page: Page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.set_default_timeout(WAIT_MS)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def open(self, url: str) -> Any:
        answer = self.page.goto(url)
        assert answer is not None, url
        assert answer.status == 200, url
        return answer

    def close(self) -> None:
        self.page.close()


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    page = Watched(browser)
    yield page
    page.close()
    assert page.errors == []


def _shot(page: Page, name: str, backend: str) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"{backend}-{name}.png"), full_page=True)


def _backend(loop: Loop) -> str:
    return "embedded" if "HEADWATER_LOG_URL" not in loop.env else "redis-postgres"


def test_every_page_loads_without_errors(loop: Loop, watched: Watched) -> None:
    for page in (*PAGES, "models/clicks/2"):
        watched.open(f"{loop.console.url}/{page}")
        # Two live refreshes: the page's script swaps the content and draws its charts.
        watched.page.wait_for_function("document.getElementById('refreshed').textContent"
                                       ".startsWith('updated')")
        assert watched.page.locator("main h1").count() == 1, page
        _shot(watched.page, page.replace("/", "-"), _backend(loop))
        assert watched.errors == [], (page, watched.errors)


def test_the_lineage_graph_draws_the_versions(loop: Loop, watched: Watched) -> None:
    watched.open(f"{loop.console.url}/models")
    nodes = watched.page.locator('[data-model="clicks"] svg.lineage g.node')
    assert nodes.count() == loop.versions
    drawn = [nodes.nth(i).get_attribute("data-version") for i in range(nodes.count())]
    assert drawn == [str(v) for v in range(1, loop.versions + 1)]
    assert watched.page.locator('[data-model="clicks"] svg.lineage path.edge').count() >= 1
    nodes.nth(1).click()
    watched.page.wait_for_url(f"{loop.console.url}/models/clicks/2")
    assert "clicks v2" in watched.page.locator("main h1").inner_text()
    assert watched.page.locator("a", has_text="v1").count() >= 1  # its parent, a link


def test_counts_move_when_events_are_produced(loop: Loop, watched: Watched) -> None:
    watched.open(f"{loop.console.url}/topics")
    events = watched.page.locator('[data-topic="clicks"] [data-figure="events"]')
    assert events.inner_text().replace(",", "") == str(loop.produced)
    more = loop.root / "browser.csv"
    more.write_text(clicks_csv(5, datetime.now(tz=UTC)))
    loop.run("produce", "clicks", str(more))
    loop.produced += 5
    watched.page.wait_for_function(
        "n => document.querySelector('[data-topic=\"clicks\"] [data-figure=\"events\"]')"
        ".textContent.replace(/,/g, '') === String(n)", arg=loop.produced)
    # The events/s chart is drawn once two readings are in.
    watched.page.locator('[data-topic="clicks"] .chart .uplot').wait_for()
    _shot(watched.page, "topics-after-produce", _backend(loop))


def test_a_rollout_from_the_cli_appears(loop: Loop, watched: Watched) -> None:
    watched.open(f"{loop.console.url}/serving")
    policy = watched.page.locator('[data-figure="policy"]')
    assert '"split"' not in policy.inner_text()
    loop.run("models", "register", "clicks", "--builtin", "logistic", "--reason", "another")
    loop.versions += 1
    loop.run("models", "promote", "clicks", str(loop.versions), "--alias", "challenger",
             "--reason", "split with it")
    loop.run("policy", "set", "split", "--weights", "3,1", "--reason", "half the canary",
             "--url", loop.server.url, "--token-file", str(loop.token_file))
    watched.page.wait_for_function(
        "() => document.querySelector('[data-figure=\"policy\"]').textContent"
        ".includes('split')")
    assert "challenger" in policy.inner_text()
    _shot(watched.page, "serving-after-rollout", _backend(loop))
