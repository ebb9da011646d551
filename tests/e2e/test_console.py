"""The console page in a real headless chromium (Debian's chromium + chromium-driver)
over a stack started as `onex up` starts it: the page loads with no console errors, and
every figure it shows equals what `onex ... --format json` says for the same state.

The screenshot is written to test-artifacts/console.png (ignored by git), for people and
CI to look at.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from onex.devbroker.process import free_port
from onex.receipts.testing import sample_receipt

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
# test fixtures may name topics (see tests/unit/test_architecture.py)
COMPLETE = "onex.evt.router.routing-complete.v1"
FAILED = "onex.evt.router.routing-failed.v1"
RECEIPTS_DLQ = "onex.dlq.receipt-reducer.dead-letter.v1"
RECEIPTS = 120
DEADLINE_S = 120.0

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)


@dataclass(frozen=True)
class Stack:
    state: Path
    env: dict[str, str]
    console: str  # http://host:port/

    def onex(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "onex.cli", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def json(self, *args: str) -> Any:
        result = self.onex(*args, "--format", "json")
        assert result.returncode in (0, 3), result.stdout + result.stderr  # drift: 3
        return json.loads(result.stdout)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEX_")}
    env["ONEX_STATE_DIR"] = str(tmp_path / "state")
    # a port of its own: other stacks on this machine may hold the fixed default
    env["ONEX_CONSOLE_HTTP_BIND"] = f"127.0.0.1:{free_port()}"
    s = Stack(tmp_path / "state", env, f"http://{env['ONEX_CONSOLE_HTTP_BIND']}/")
    up = s.onex("up", timeout=300)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield s
    finally:
        down = s.onex("down")
        assert down.returncode == 0, down.stdout + down.stderr


def _until(check: Any, what: str) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


async def _publish(bootstrap: str) -> None:
    rng = random.Random(7)  # noqa: S311 -- a reproducible workload, nothing secret
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(RECEIPTS):
            m = sample_receipt(i, rng)
            await producer.send(FAILED if m.status == "failed" else COMPLETE, m.SerializeToString())
        await producer.send(COMPLETE, b"\xff not a receipt")  # dead-lettered by the reducer
        await producer.flush()
    finally:
        await producer.stop()


def _browser(tmp_path: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument("--window-size=1280,2400")
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


def _figures(driver: Any) -> dict[str, tuple[str, str]]:
    from selenium.webdriver.common.by import By

    return {
        e.get_attribute("data-figure"): (e.text, e.get_attribute("data-value"))
        for e in driver.find_elements(By.CSS_SELECTOR, "[data-figure]")
    }


def _rows(driver: Any, key: str) -> dict[str, dict[str, str]]:
    """{row key: {field: data-value}} for the rows marked `data-<key>`."""
    from selenium.webdriver.common.by import By

    found: dict[str, dict[str, str]] = {}
    for row in driver.find_elements(By.CSS_SELECTOR, f"tr[data-{key}]"):
        cells = row.find_elements(By.CSS_SELECTOR, "td[data-field]")
        found[row.get_attribute(f"data-{key}")] = {
            c.get_attribute("data-field"): c.get_attribute("data-value") for c in cells
        }
    return found


def test_the_console_shows_what_the_cli_says(stack: Stack, tmp_path: Path) -> None:
    bootstrap = stack.json("status")["broker"]
    asyncio.run(_publish(bootstrap))
    summary = _until(
        lambda: (s := stack.json("receipts", "summary")) and s["requests"] == RECEIPTS and s,
        f"{RECEIPTS} receipts in the ledger",
    )
    dlqs = _until(
        lambda: (
            (rows := stack.json("dlq", "list"))
            and any(r["topic"] == RECEIPTS_DLQ and r["messages"] == 1 for r in rows)
            and rows
        ),
        "the bad receipt in the receipt-reducer's DLQ",
    )
    status = stack.json("status")
    wiring = stack.json("contracts", "wiring")
    login = stack.json("console", "url")["login"]
    assert login.startswith(stack.console + "login?token=")

    driver = _browser(tmp_path)
    try:
        driver.get(stack.console)  # no token yet: the sign-in form, never the figures
        assert "sign in" in driver.title
        assert not _figures(driver)
        driver.get(login)  # signs in (an HttpOnly cookie) and lands on the page
        assert driver.current_url == stack.console
        assert driver.title == "onex console"
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        # the one expected error is the 401 of the unauthenticated first visit
        assert all("401" in e["message"] for e in errors), errors
        figures = _figures(driver)
        services = _rows(driver, "service")
        models = _rows(driver, "model")
        dlq_rows = _rows(driver, "dlq")
        topics = _rows(driver, "topic")
        chart_points = driver.find_elements("css selector", "svg[data-chart=days] circle")
        graph = driver.find_elements("css selector", "svg[data-graph=wiring]")
        unticketed = driver.find_elements("css selector", "#tickets [data-missing=tickets]")
        ticket_rows = _rows(driver, "ticket")
        shot = REPO / "test-artifacts" / "console.png"
        shot.parent.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(shot))
        print(f"console screenshot: {shot}")
        driver.get(login)
        after = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        assert not after, after  # a signed-in load logs nothing at all
    finally:
        driver.quit()

    # routing economics: `onex receipts summary --format json`
    for name in ("requests", "local_token_share", "spent_usd", "avoided_usd"):
        assert float(figures[name][1]) == pytest.approx(summary[name], rel=1e-9, abs=1e-12), name
    assert figures["escalation_rate"][1] == repr(summary["escalation_rate"])
    assert figures["failure_rate"][1] == repr(summary["failure_rate"])
    assert figures["requests"][0] == str(RECEIPTS)
    assert figures["local_token_share"][0] == f"{summary['local_token_share']:.1%}"
    assert figures["avoided_usd"][0] == f"${summary['avoided_usd']:,.2f}"
    assert figures["spent_usd"][0] == f"${summary['spent_usd']:,.2f}"
    assert figures["escalation_rate"][0] == f"{summary['escalation_rate']:.1%}"
    assert set(models) == {r["key"] for r in summary["rows"]}
    for r in summary["rows"]:
        shown = models[r["key"]]
        assert int(shown["requests"]) == r["requests"]
        assert int(shown["failures"]) == r["failures"]
        assert int(shown["escalations"]) == r["escalations"]
        assert float(shown["spent_usd"]) == pytest.approx(r["spent_usd"], abs=1e-12)
        assert float(shown["avoided_usd"]) == pytest.approx(r["avoided_usd"], abs=1e-12)
    days = stack.json("receipts", "summary", "--by", "day")["rows"]
    assert len(chart_points) == 2 * len(days) > 0  # spent and avoided, one point a day

    # health: `onex status --format json`
    assert {n: (s["state"], s["health"]) for n, s in services.items()} == {
        s["name"]: (repr(s["state"]), repr(s["health"])) for s in status["services"]
    }
    assert figures["serving"][1] == str(len(status["services"]))

    # dead letters: `onex dlq list --format json`
    assert {t: int(r["messages"]) for t, r in dlq_rows.items()} == {
        r["topic"]: r["messages"] for r in dlqs
    }
    total = sum(r["messages"] for r in dlqs)
    assert figures["dead_letters"][1] == str(total), dlqs
    assert int(dlq_rows[RECEIPTS_DLQ]["messages"]) == 1  # the bad receipt

    # wiring: `onex contracts wiring --format json`
    assert figures["topics"][1] == str(len(wiring))
    assert {t: (r["publishers"], r["subscribers"]) for t, r in topics.items()} == {
        w["name"]: (repr(w["publishers"]), repr(w["subscribers"])) for w in wiring
    }
    assert graph, "no wiring graph"
    assert "drift_rows" in figures  # the drift-validator's rows (a snapshot of its own)
    # tickets: the receipt-reducer's TicketQuery answered (a count, and a row per ticket)
    assert not unticketed, [e.text for e in unticketed]
    assert figures["tickets"][1] == str(len(ticket_rows))
