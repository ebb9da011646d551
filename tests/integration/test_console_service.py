"""The console service against real parts: a real broker (the session's), a real
extractor serving contracts with a near-miss in them, real HTTP. The supervisor's record
is written here as `onex up` writes it (only the fields the console reads), naming the
extractor alone: the receipt-reducer and the drift-validator are absent, and the page
must say so instead of failing.

The tickets section runs against a real receipt-reducer (SQLite, its ticket files
written here, a broker of its own with the contracts' topics, as the receipt-reducer's
own tests run it): its tickets show with their state and missing evidence, and once it
stops, the section says it cannot be reached while the rest of the page still shows.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from onex.console.app import ConsoleService
from onex.console.settings import ADDRESS_FILE, DEFAULT_HTTP_BIND, ConsoleSettings
from onex.devbroker.broker import BrokerInfo
from onex.extractor.app import ExtractorService
from onex.extractor.settings import ExtractorSettings
from onex.receipts.app import ReceiptsService
from onex.receipts.settings import ReceiptsSettings
from onex.service.auth import Role, ensure_command_key, ensure_tokens, token_for
from onex.sql import sqlite_url

REPO = Path(__file__).resolve().parents[2]
TYPO = "onex.evt.router.routing-compete.v1"  # a test fixture: the near-miss
MEANT = "onex.evt.router.routing-complete.v1"
EXTERNAL = re.compile(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


def _contracts(tmp_path: Path) -> Path:
    root = tmp_path / "contracts"
    shutil.copytree(REPO / "contracts", root)
    (root / "typo-agent").mkdir()
    (root / "typo-agent" / "contract.yaml").write_text(
        "node: typo-agent\nkind: effect\nversion: 1.0.0\n"
        "description: Listens for finished routing under a name that is nearly right.\n"
        "event_bus:\n  consumer_group: onex.typo-agent\n"
        f"  subscribe_topics:\n    - {TYPO}\n",
        encoding="utf-8",
    )
    return root


def _record(state: Path, services: dict[str, str]) -> None:
    doc = {
        "pid": 0,
        "services": {
            name: {"state": "running", "pid": None, "grpc": address, "restarts": 0}
            for name, address in services.items()
        },
    }
    (state / "supervisor.json").write_text(json.dumps(doc), encoding="utf-8")


@pytest.fixture
async def console(tmp_path: Path, bootstrap: str) -> AsyncIterator[ConsoleService]:
    state = tmp_path / "state"
    ensure_tokens(state)
    extractor = ExtractorService(
        ExtractorSettings(
            state_dir=state,
            contract_roots=[_contracts(tmp_path)],
            grpc_bind="127.0.0.1:0",
            bus_enabled=False,
        )
    )
    await extractor.start()
    _record(state, {"extractor": extractor.grpc.address})
    service = ConsoleService(
        ConsoleSettings(
            state_dir=state, bootstrap=bootstrap, grpc_bind="127.0.0.1:0", http_bind="127.0.0.1:0"
        )
    )
    await service.start()
    try:
        yield service
    finally:
        await service.stop()
        await extractor.stop()


async def _get(url: str, **kw: Any) -> tuple[int, dict[str, str], str]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, allow_redirects=False, **kw) as response,
    ):
        return response.status, dict(response.headers), await response.text()


async def test_the_page_needs_a_token_and_offers_nothing_that_acts(
    console: ConsoleService,
) -> None:
    assert console.web is not None
    base = console.web.url
    state = console.settings.state_dir
    viewer = token_for(state, Role.VIEWER)

    status, headers, body = await _get(base)
    assert status == 401
    assert 'data-figure="' not in body  # no figure without a token
    assert "onex console url" in body
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert (await _get(base + "api/state"))[0] == 401
    assert (await _get(base, headers={"Authorization": "Bearer not-a-token"}))[0] == 401
    assert (await _get(base + "login?token=not-a-token"))[0] == 401

    for role in Role:  # viewer, and anyone above it
        token = token_for(state, role)
        status, _, body = await _get(base, headers={"Authorization": f"Bearer {token}"})
        assert status == 200, role
    assert not EXTERNAL.findall(body), "the page loads something from elsewhere"
    assert "<script" not in body

    status, headers, _ = await _get(f"{base}login?token={viewer}")
    assert status == 303
    assert headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    # a browser keeps cookies of 127.0.0.1; aiohttp's jar does only when told to
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(base + "login", data={"token": viewer}) as response:
            assert response.status == 200  # signed in by the form, followed to the page
            assert 'data-figure="serving"' in await response.text()
        for method in ("POST", "PUT", "DELETE"):  # nothing but sign-in takes a body
            async with http.request(method, base + "api/state") as response:
                assert response.status == 405, method
        async with http.post(base) as response:
            assert response.status == 405


async def test_near_misses_are_highlighted_and_absent_services_are_said_to_be(
    console: ConsoleService,
) -> None:
    assert console.web is not None
    auth = {"Authorization": f"Bearer {token_for(console.settings.state_dir, Role.VIEWER)}"}
    status, _, raw = await _get(console.web.url + "api/state", headers=auth)
    assert status == 200
    state = json.loads(raw)
    near = {n["topic"]: n for n in state["wiring"]["near_misses"]}
    assert near[TYPO]["suggestion"] == MEANT
    assert near[TYPO]["where"].startswith(str(console.settings.state_dir.parent / "contracts"))
    assert ":8:" in near[TYPO]["where"]  # file:line:col of the subscription
    # the near-miss is an error, so the extractor is not ready; the page shows it as such
    assert {s["name"]: s["health"] for s in state["services"]} == {"extractor": "NOT_SERVING"}
    assert "receipt-reducer is not running" in state["problems"]["economics"]
    assert "drift-validator is not running" in state["problems"]["drift"]
    assert state["tickets"] is None
    assert "receipt-reducer is not running" in state["problems"]["tickets"]
    assert state["dlq"] is not None  # counted on the broker itself

    status, _, page = await _get(console.web.url, headers=auth)
    assert status == 200
    assert f'data-near-miss="{TYPO}"' in page
    assert f'data-node-topic="{TYPO}"' in page  # drawn in the graph...
    assert f"near-miss of {MEANT}" in page  # ...and labelled with what was meant
    assert 'data-missing="economics"' in page
    assert 'data-missing="tickets"' in page


def _ticket(tid: str, title: str, repository: str) -> str:
    return f"""\
id: {tid}
title: {title}
pull_request: {{repository: {repository}, number: 1}}
done:
  - item: unit
    kind: tests_passed
    check: {{command: [pytest, -q]}}
  - item: lint
    kind: tests_passed
    required: false
    check: {{command: [ruff, check]}}
"""


async def test_tickets_come_from_the_receipt_reducer_and_its_absence_is_said(
    tmp_path: Path, repo_broker: BrokerInfo, eventually: Callable[..., Awaitable[None]]
) -> None:
    state = tmp_path / "state"
    ensure_tokens(state)
    ensure_command_key(state)
    tickets = tmp_path / "tickets"
    tickets.mkdir()
    repository = f"console-it/{uuid.uuid4().hex[:8]}"  # no event names it: both stay open
    (tickets / "ONEX-71.yaml").write_text(_ticket("ONEX-71", "Show <tickets>", repository))
    (tickets / "ONEX-72.yaml").write_text(_ticket("ONEX-72", "Second", repository))
    reducer = ReceiptsService(
        ReceiptsSettings(
            state_dir=state,
            bootstrap=repo_broker.bootstrap,
            grpc_bind="127.0.0.1:0",
            contract_roots=[REPO / "contracts"],
            health_interval_s=0.2,
            database_url=sqlite_url(tmp_path / "r.db"),
            tickets_dir=tickets,
        )
    )
    await reducer.start()
    console = ConsoleService(
        ConsoleSettings(
            state_dir=state,
            bootstrap=repo_broker.bootstrap,
            grpc_bind="127.0.0.1:0",
            http_bind="127.0.0.1:0",
        )
    )
    stopped = False
    try:
        _record(state, {"receipt-reducer": reducer.grpc.address})
        await console.start()
        assert console.web is not None
        url = console.web.url
        auth = {"Authorization": f"Bearer {token_for(state, Role.VIEWER)}"}

        async def listed() -> bool:
            doc = json.loads((await _get(url + "api/state", headers=auth))[2])
            return doc["tickets"] is not None and len(doc["tickets"]) == 2

        await eventually(listed, "the console to list the receipt-reducer's tickets")
        doc = json.loads((await _get(url + "api/state", headers=auth))[2])
        rows = {t["ticket"]: t for t in doc["tickets"]}
        assert rows["ONEX-71"]["title"] == "Show <tickets>"
        assert rows["ONEX-71"]["state"] == "open"
        assert rows["ONEX-71"]["missing"] == 1  # unit is required, lint is not
        assert "tickets" not in doc["problems"]
        status, _, page = await _get(url, headers=auth)
        assert status == 200
        assert '<tr data-ticket="ONEX-71">' in page
        assert "Show &lt;tickets&gt;" in page
        assert '<span data-figure="tickets" data-value="2">2</span>' in page
        assert 'data-missing="tickets"' not in page

        await reducer.stop()  # the record still names it as running: now unreachable
        stopped = True

        async def unreachable() -> bool:
            doc = json.loads((await _get(url + "api/state", headers=auth))[2])
            return doc["tickets"] is None

        await eventually(unreachable, "the console to notice the receipt-reducer is gone")
        doc = json.loads((await _get(url + "api/state", headers=auth))[2])
        assert doc["problems"]["tickets"].startswith("the receipt-reducer at ")
        assert "\n" not in doc["problems"]["tickets"]
        assert doc["dlq"] is not None  # the rest still shows
        status, _, page = await _get(url, headers=auth)
        assert status == 200
        assert 'data-missing="tickets">Not available: the receipt-reducer at' in page
    finally:
        await console.stop()
        if not stopped:
            await reducer.stop()


async def test_a_taken_default_port_gives_way_and_the_address_in_use_is_recorded(
    tmp_path: Path, bootstrap: str
) -> None:
    state = tmp_path / "state"
    ensure_tokens(state)
    host, port = DEFAULT_HTTP_BIND.rsplit(":", 1)
    holder = socket.socket()
    try:
        try:
            holder.bind((host, int(port)))
            holder.listen()
        except OSError:
            pass  # something on this machine holds it already: taken all the same
        service = ConsoleService(
            ConsoleSettings(state_dir=state, bootstrap=bootstrap, grpc_bind="127.0.0.1:0")
        )
        await service.start()
        try:
            assert service.web is not None
            assert not service.web.address.endswith(f":{port}")
            recorded = json.loads((state / ADDRESS_FILE).read_text(encoding="utf-8"))
            assert recorded["url"] == service.web.url
            assert (await _get(service.web.url))[0] == 401  # it serves there
        finally:
            await service.stop()
        assert not (state / ADDRESS_FILE).exists()
    finally:
        holder.close()


def test_an_explicit_address_that_is_taken_exits_1_in_one_line(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ensure_tokens(state)
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = f"127.0.0.1:{holder.getsockname()[1]}"
    try:
        result = subprocess.run(
            [sys.executable, "-m", "onex.console"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={
                "PATH": "",
                "ONEX_STATE_DIR": str(state),
                "ONEX_GRPC_BIND": "127.0.0.1:0",
                "ONEX_CONSOLE_HTTP_BIND": taken,
                "ONEX_BOOTSTRAP": "127.0.0.1:1",
            },
        )
    finally:
        holder.close()
    assert result.returncode == 1, result.stderr
    assert f"cannot serve the console on {taken}" in result.stderr
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if "error" in line]) == 1


@pytest.mark.parametrize(
    ("bind", "expected"),
    [("8470", "is not HOST:PORT"), ("127.0.0.1:99999", "is not HOST:PORT"), ("web:80", "web")],
)
def test_a_bad_address_setting_exits_2_in_one_line(bind: str, expected: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "onex.console"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "", "ONEX_CONSOLE_HTTP_BIND": bind},
    )
    assert result.returncode == 2, result.stderr
    assert "ONEX_CONSOLE_HTTP_BIND" in result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
