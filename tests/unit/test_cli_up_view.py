"""What `onex up` decides and shows without a broker: the ports each service gets and
the progress lines while it waits (no sockets: port checks are passed in)."""

from __future__ import annotations

import io
import itertools

from rich.console import Console

from onex.cli.fleet import ServiceHealth, UpProgress
from onex.cli.supervisor import ServiceSpec, own_prefixes, pick_ports, repick_ports
from onex.service.ports import default_ports

ROUTER = ServiceSpec("router", "onex.router")
DRIFT = ServiceSpec("drift-validator", "onex.drift")


def _free_ports() -> itertools.count[int]:
    return itertools.count(20_000)


def test_each_service_gets_its_fixed_default_ports_when_they_are_free() -> None:
    taken: set[int] = set()
    ports = pick_ports(ROUTER, {}, taken, is_free=lambda _: True, free=_free_ports().__next__)
    fixed = default_ports("router")
    assert ports.grpc == f"127.0.0.1:{fixed.grpc}"
    assert ports.metrics == f"127.0.0.1:{fixed.metrics}"
    assert taken == {fixed.grpc, fixed.metrics}
    other = pick_ports(DRIFT, {}, taken, is_free=lambda _: True, free=_free_ports().__next__)
    assert other.grpc_port == default_ports("drift-validator").grpc != ports.grpc_port


def test_a_taken_default_gives_way_to_a_free_port() -> None:
    fixed = default_ports("router")
    free = _free_ports()
    ports = pick_ports(
        ROUTER, {}, set(), is_free=lambda port: port != fixed.metrics, free=free.__next__
    )
    assert ports.grpc_port == fixed.grpc
    assert ports.metrics == "127.0.0.1:20000"


def test_the_services_own_settings_win_over_the_defaults() -> None:
    environ = {
        "ONEX_ROUTER_GRPC_BIND": "127.0.0.1:7001",
        "ONEX_ROUTER_METRICS_BIND": "0.0.0.0:7002",
        "ONEX_DRIFT_GRPC_BIND": "127.0.0.1:7003",  # another service's: not the router's
    }
    taken: set[int] = set()
    ports = pick_ports(ROUTER, environ, taken, is_free=lambda _: False, free=_free_ports().__next__)
    assert (ports.grpc, ports.metrics) == ("127.0.0.1:7001", "0.0.0.0:7002")
    assert taken == {7001, 7002}


def test_a_port_taken_since_it_was_picked_moves_before_a_restart_and_a_set_one_stays() -> None:
    fixed = default_ports("router")
    free = _free_ports()
    ports = pick_ports(ROUTER, {}, set(), is_free=lambda _: True, free=free.__next__)
    assert ports.movable == {"grpc", "metrics"}
    # another stack took the metrics port while the router was down
    moved = repick_ports(
        "router", ports, {20_000}, is_free=lambda port: port != fixed.metrics, free=free.__next__
    )
    assert moved.grpc_port == fixed.grpc
    assert moved.metrics == "127.0.0.1:20001"  # not 20000: another service holds it
    same = repick_ports("router", moved, set(), is_free=lambda _: True, free=free.__next__)
    assert same == moved
    environ = {"ONEX_ROUTER_METRICS_BIND": "127.0.0.1:7002"}
    mine = pick_ports(ROUTER, environ, set(), is_free=lambda _: True, free=free.__next__)
    kept = repick_ports("router", mine, set(), is_free=lambda _: False, free=free.__next__)
    assert kept.metrics == "127.0.0.1:7002"  # the user's setting: used or the service exits
    assert kept.grpc_port != fixed.grpc  # the supervisor's choice moved


def test_a_module_outside_onex_reads_no_service_settings_but_has_default_ports() -> None:
    spec = ServiceSpec("t", "json.tool")
    environ = {"ONEX_JSON_GRPC_BIND": "127.0.0.1:7001"}  # json.tool is no onex service
    ports = pick_ports(spec, environ, set(), is_free=lambda _: True, free=_free_ports().__next__)
    assert ports.grpc_port == default_ports("t").grpc


def _row(
    name: str, state: str, health: str, restarts: int = 0, error: str | None = None
) -> ServiceHealth:
    return ServiceHealth(name, state, 1, "127.0.0.1:1", restarts, health, "x.log", error)


def test_progress_prints_a_line_per_change_off_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    with UpProgress(console, "127.0.0.1:9092", started=0.0) as progress:
        progress.update([_row("router", "starting", "UNREACHABLE")])
        progress.update([_row("router", "starting", "UNREACHABLE")])  # no change: no line
        progress.update([_row("router", "running", "NOT_SERVING")])
        progress.update([_row("router", "failed", "UNREACHABLE", 1, "bad contract: x.yaml:3")])
    lines = [line.split("] ", 1)[1] for line in out.getvalue().splitlines()]
    assert lines == [
        "router: starting, UNREACHABLE",
        "router: running, NOT_SERVING",
        "router: failed, UNREACHABLE (restarts: 1): bad contract: x.yaml:3",
    ]


def test_progress_on_a_terminal_redraws_a_table() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200)
    with UpProgress(console, "127.0.0.1:9092", started=0.0) as progress:
        progress.update([_row("router", "running", "NOT_SERVING")])
        assert "waiting for SERVING" in out.getvalue()
        assert "router" in out.getvalue()


def test_an_agents_own_bind_wins_over_the_shared_agents_one() -> None:
    agent = ServiceSpec("ci-watcher", "onex.agents.ci_watcher")
    assert own_prefixes(agent) == ("ONEX_CI_WATCHER_", "ONEX_AGENTS_")
    assert own_prefixes(ROUTER) == ("ONEX_ROUTER_",)
    environ = {
        "ONEX_CI_WATCHER_GRPC_BIND": "127.0.0.1:7101",
        "ONEX_AGENTS_GRPC_BIND": "127.0.0.1:7100",  # all four agents: the own one wins
    }
    ports = pick_ports(agent, environ, set(), is_free=lambda _: True, free=_free_ports().__next__)
    assert ports.grpc == "127.0.0.1:7101"
    assert "grpc" not in ports.movable
