"""The dashboard in a real browser: Debian's Chromium, headless, driven by
Playwright (never its own browser downloads), against the session's running
cluster. Without /usr/bin/chromium these tests fail; .ci/run installs it."""

from __future__ import annotations

import concurrent.futures
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster import create_echo
from conftest import UpCluster
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
# The probe's flags: no sandbox as root, and no background connections a
# closed network refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is required (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def invoke(client: Any, **params: Any) -> dict[str, Any]:
    """Invoke and read the payload, which returns the connection to the
    client's pool (an unread one leaks its socket)."""
    response: dict[str, Any] = client.invoke(**params)
    response["Payload"] = response["Payload"].read()
    return response


class Console:
    """Errors the page reported: console errors and uncaught exceptions."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} at {message.location.get('url', '')}")


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def test_every_asset_is_served_by_the_gateway(cluster: UpCluster) -> None:
    with urllib.request.urlopen(f"{cluster.endpoint}/_fleet/", timeout=10) as response:
        html = response.read().decode()
        assert response.headers["Content-Type"].startswith("text/html")
    for asset in ("/_fleet/assets/dashboard.css", "/_fleet/assets/dashboard.js"):
        assert asset in html
        with urllib.request.urlopen(f"{cluster.endpoint}{asset}", timeout=10) as response:
            assert response.status == 200 and response.read()
    # Nothing from elsewhere: no absolute URL in what the page loads.
    assert "http://" not in html and "https://" not in html


def test_dashboard_shows_the_cluster_live(
    cluster: UpCluster, client: Any, page: Page, tmp_path: Path
) -> None:
    name = f"dash-{uuid.uuid4().hex[:8]}"
    create_echo(client, name)
    console = Console(page)
    page.goto(f"{cluster.endpoint}/_fleet/")

    worker = page.locator(f'#workers tr[data-worker-id^="{cluster.worker_prefix}"]')
    worker.wait_for(timeout=10_000)
    assert "live" in worker.inner_text()
    page.locator(f'#functions tr[data-function="{name}"]').wait_for(timeout=10_000)
    assert page.locator("#connection").inner_text() == "live"

    response = invoke(client, FunctionName=name, Payload=b'{"from": "the test"}')
    request_id = response["ResponseMetadata"]["RequestId"]
    invoked = time.monotonic()
    row = page.locator(f'#recent tr[data-request-id="{request_id}"]')
    # The one timing the issue asks for: the invocation shows within 2 s.
    row.wait_for(timeout=2_000)
    assert time.monotonic() - invoked < 2.0
    assert name in row.inner_text() and "success" in row.inner_text()
    assert console.errors == []

    # A burst over a few functions, photographed while it runs.
    names = [name] + [f"dash-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for other in names[1:]:
        create_echo(client, other)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        calls = [
            pool.submit(invoke, client, FunctionName=names[i % len(names)], Payload=b"{}")
            for i in range(60)
        ]
        page.locator(f'#functions tr[data-function="{names[-1]}"]').wait_for(timeout=10_000)
        page.wait_for_function(
            "() => document.querySelectorAll('#recent tr.inv').length >= 20", timeout=30_000
        )
        screenshot = tmp_path / "dashboard-burst.png"
        page.screenshot(path=str(screenshot), full_page=True)
        assert all(call.result()["StatusCode"] == 200 for call in calls)
    assert screenshot.stat().st_size > 10_000
    assert console.errors == []

    # An invocation's logs open under it: from /_fleet/logs when the
    # gateway serves them, "no logs" otherwise.
    clicked = page.locator("#recent tr.inv").first.get_attribute("data-request-id")
    page.locator(f'#recent tr.inv[data-request-id="{clicked}"]').first.click()
    logs = page.locator(f'#recent tr.logs[data-logs-for="{clicked}"]')
    logs.wait_for(timeout=5_000)
    page.wait_for_function(
        '(rid) => { const row = document.querySelector(`tr.logs[data-logs-for="${rid}"]`);'
        " return row && !row.innerText.includes('loading'); }",
        arg=clicked,
        timeout=10_000,
    )
    assert logs.inner_text().strip()
    # A gateway without the logs endpoint answers 404, which Chromium reports
    # as a console error; nothing else may be one.
    assert [e for e in console.errors if "/_fleet/logs/" not in e] == []
