"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright,
against the local stack (`python -m devstack`, as `make run` starts it).

Log in, post an alert through the webhook and see it appear with its decision, see the
position and its P/L, trip the kill switch and see the next alert rejected, flatten from
the page; a wrong token shows an error; the page fits a phone; no console errors.
Screenshots go to out/screenshots/ (test artifacts, gitignored).

No browser is downloaded: Playwright drives /usr/bin/chromium (`apt-get install chromium`;
.ci/run installs it when missing). Playwright's docs: `executable_path` launches a browser
of one's own instead of its bundled build
(https://playwright.dev/python/docs/api/class-browsertype#browser-type-launch).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.devstack.stack import TOKEN, Stack, alert

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(__file__).resolve().parents[2] / "out" / "screenshots"
WAIT_MS = 30_000  # the page refreshes every 2 s here; the worker decides in well under that

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        raise RuntimeError(
            "CI needs /usr/bin/chromium: .ci/run installs it (apt-get install chromium)"
        )
    pytest.skip("no /usr/bin/chromium: apt-get install -y chromium", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")
sync_api.expect.set_options(timeout=15_000)  # 2 shared cores: a first request can be slow


def _recent_bars(path: Path, symbol: str, minutes: int = 60) -> Path:
    """A bar file (the `files` source's CSV: time, OHLCV) of the last `minutes` 1-minute
    bars, so the price chart has a market to draw; the last close is 190.00."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    rows = ["time,open,high,low,close,volume"]
    for n in range(minutes, 0, -1):
        close = 190.0 + 0.6 * math.sin(n / 7) - 0.6 * math.sin(1 / 7) + 0.01 * (n % 3)
        start = now - timedelta(minutes=n)
        rows.append(f"{start.isoformat()},{close - 0.05:.2f},{close + 0.1:.2f},"
                    f"{close - 0.1:.2f},{close:.2f},{1000 + 10 * n}")  # fmt: skip
    target = path / f"{symbol}_1min.csv"
    target.write_text("\n".join(rows) + "\n")
    return target


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("dashboard-stack")
    running = Stack(
        data,
        FLOWTRADER_DASHBOARD_REFRESH_S="2",
        FLOWTRADER_FRESH="1",
        FLOWTRADER_DATA_SOURCE="files",
        FLOWTRADER_DATA_FILE=str(_recent_bars(data, "AAPL")),
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield chromium
        chromium.close()


class Console:
    """Every console error and uncaught page error of one page."""

    def __init__(self, page) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _log_in(page, base: str, token: str) -> None:
    page.goto(f"{base}/dashboard")
    page.fill("#token", token)
    page.click("#login-button")


def test_a_wrong_token_shows_an_error_and_no_dashboard(stack, browser):
    context = browser.new_context()
    page = context.new_page()

    _log_in(page, stack.base, "not-the-token")

    error = page.locator("#login-error")
    sync_api.expect(error).to_have_text("Wrong token.")
    assert page.locator("#panel-setups").count() == 0
    assert context.cookies() == []
    assert page.input_value("#token") == ""  # the field is cleared, whatever the answer
    _shot(page, "login-wrong-token")
    context.close()


def test_trader_sees_alerts_positions_pnl_and_trips_the_kill_switch(stack, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    console = Console(page)
    page.on("dialog", lambda dialog: dialog.accept())  # every action is confirmed first

    _log_in(page, stack.base, TOKEN)
    sync_api.expect(page.locator("#panel-setups")).to_be_visible(timeout=WAIT_MS)
    cookie = next(c for c in context.cookies() if c["name"] == "ft_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["expires"] > 0  # not a browser-session cookie: it has an expiry
    assert TOKEN not in page.content()
    assert TOKEN not in page.url

    # An alert through the webhook appears with its decision.
    status, body = stack.request("/webhook", alert("AAPL", price=190.0, quantity=5))
    assert status == 202, body
    first = page.locator(f'[data-alert="{body["alert_id"]}"]')
    sync_api.expect(first).to_have_text("filled", timeout=WAIT_MS)
    row = page.locator("#setups tbody tr", has=first)
    sync_api.expect(row).to_contain_text("AAPL")
    sync_api.expect(row.locator(".check.pass").first).to_be_visible()
    sync_api.expect(row).to_contain_text(re.compile(r"\d+ ms"))

    # The position and its P/L.
    position = page.locator("#positions tbody tr", has_text="AAPL")
    sync_api.expect(position).to_contain_text("5", timeout=WAIT_MS)
    sync_api.expect(position.locator("td").nth(4)).to_have_text(re.compile(r"^−?\$\d"))
    sync_api.expect(page.locator("#exposure")).to_contain_text("1 open")
    sync_api.expect(page.locator("#pnl")).to_contain_text("Unrealized")
    # The price chart: the bars of the data source in force (a file here), the entry.
    sync_api.expect(page.locator("#chart canvas").first).to_be_visible(timeout=WAIT_MS)
    sync_api.expect(page.locator("#chart-message")).to_be_empty()
    sync_api.expect(page.locator("#chart")).to_have_attribute("data-levels", "target,stop")
    # Market conditions: the day is not classified on a fresh stack, and the panel says why.
    sync_api.expect(page.locator("#market")).to_contain_text("Day type:")
    sync_api.expect(page.locator("#data-source-now")).to_have_text("files")
    _shot(page, "dashboard-position")

    # Trip the kill switch; the next alert is rejected, and the page shows why.
    page.click("#kill-toggle")
    sync_api.expect(page.locator("#kill-state")).to_contain_text("kill switch ON")
    status, body = stack.request("/webhook", alert("MSFT", price=410.0, quantity=2))
    assert status == 202, body
    second = page.locator(f'[data-alert="{body["alert_id"]}"]')
    sync_api.expect(second).to_have_text("rejected", timeout=WAIT_MS)
    rejected_row = page.locator("#setups tbody tr", has=second)
    sync_api.expect(rejected_row.locator(".check.deny")).to_contain_text("kill_switch")
    _shot(page, "dashboard-kill-switch")

    # Flatten the position from the page (allowed under the kill switch: it cuts risk).
    page.click('#positions button[data-symbol="AAPL"]')
    sync_api.expect(page.locator("#notice")).to_contain_text("AAPL closed", timeout=WAIT_MS)
    sync_api.expect(page.locator("#positions")).to_contain_text("Flat", timeout=WAIT_MS)
    sync_api.expect(page.locator("#trades tbody")).to_contain_text("AAPL", timeout=WAIT_MS)
    page.click("#kill-toggle")
    sync_api.expect(page.locator("#kill-state")).to_have_text("trading allowed")

    # The journal filters (server side: symbol and status).
    page.fill("#f-symbol", "msft")
    page.click("#journal-filters button")
    sync_api.expect(page.locator("#journal tbody tr")).to_have_count(1)
    sync_api.expect(page.locator("#journal tbody")).to_contain_text("rejected")
    _shot(page, "dashboard")

    _, actions = stack.request("/api/actions", auth=True)
    assert [e["event"] for e in actions["events"]] == ["kill_switch", "flatten", "kill_switch"]
    assert "]: flowtrader: kill switch on" in stack.console
    assert "]: flowtrader: flatten AAPL" in stack.console

    # Phone width: the same session, one column, nothing wider than the screen.
    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    phone.add_cookies([cookie])
    small = phone.new_page()
    small_console = Console(small)
    small.goto(f"{stack.base}/dashboard")
    sync_api.expect(small.locator("#positions")).to_contain_text("Flat", timeout=WAIT_MS)
    sync_api.expect(small.locator("#setups")).to_contain_text("rejected")
    sync_api.expect(small.locator("#updated")).to_contain_text("updated")  # a whole refresh
    assert small.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    _shot(small, "dashboard-phone")

    # No console errors while in use (after logout, requests in flight may meet a 401).
    assert console.errors == []
    assert small_console.errors == []

    # Log out: the cookie is gone and the page is the login page again.
    page.click("#logout")
    sync_api.expect(page.locator("#login-form")).to_be_visible()
    # The other page's next refresh finds the session gone and shows the login page.
    sync_api.expect(small.locator("#login-form")).to_be_visible(timeout=WAIT_MS)

    # The token is printed once in the banner (make run tells it); never in a request log.
    assert TOKEN not in stack.console.split("Ctrl-C stops everything", 1)[1]
    phone.close()
    context.close()
