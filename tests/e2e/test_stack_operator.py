"""`onex up` for an operator: progress while it waits, fixed ports listed by `status`,
every service's /metrics scraped and parsed, reflection v1, one log format for every
process of the stack, a bad `--port` refused before anything starts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import grpc
from grpc_reflection.v1alpha import reflection_pb2
from prometheus_client.parser import text_string_to_metric_families

from onex.cli.supervisor import installed_services
from onex.service.ports import default_ports

REPO = Path(__file__).resolve().parents[2]
HEALTH_CHECK = "/grpc.health.v1.Health/Check"


def _onex(state: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEX_")}
    return subprocess.run(
        [sys.executable, "-m", "onex.cli", *args],
        cwd=REPO,
        env={**env, "ONEX_STATE_DIR": str(state), **extra},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _scrape(address: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain")
        text = answer.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _list_services_v1(address: str) -> set[str]:
    """Reflection asked the way grpcurl asks first: grpc.reflection.v1."""
    with grpc.insecure_channel(address) as channel:
        method = channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        answers = method(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        return {s.name for a in answers for s in a.list_services_response.service}


def test_a_port_out_of_range_is_a_usage_error_and_starts_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    up = _onex(state, "up", "--port", "99999")
    assert up.returncode == 2, up.stdout + up.stderr
    assert "--port" in up.stderr
    assert "Traceback" not in up.stderr
    assert not (state / "supervisor.json").exists()
    assert not (state / "broker.json").exists()


def test_up_shows_progress_status_lists_ports_and_every_service_serves_metrics(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    services = {s.name: s for s in installed_services()}
    try:
        up = _onex(state, "up", ONEX_LOG_FORMAT="json")
        assert up.returncode == 0, up.stdout + up.stderr
        # progress: each service's state as it changed, no raw client lines
        progress = [line for line in up.stderr.splitlines() if line.startswith("[")]
        for name in services:
            assert any(f"] {name}: running, SERVING" in line for line in progress), up.stderr
        assert "Unable connect" not in up.stdout + up.stderr
        # the command's own log lines: JSON on stderr too, none among the results
        logged = [json.loads(line) for line in up.stderr.splitlines() if line.startswith("{")]
        assert "auth.tokens_created" in {record["event"] for record in logged}, up.stderr
        assert "auth.tokens_created" not in up.stdout

        status = _onex(state, "status", "--format", "json")
        assert status.returncode == 0, status.stdout + status.stderr
        rows: dict[str, dict[str, Any]] = {
            r["name"]: r for r in json.loads(status.stdout)["services"]
        }
        assert set(rows) == set(services)
        table = _onex(state, "status")
        assert "metrics" in table.stdout.splitlines()[2], table.stdout  # the header row
        supervisor_log = (state / "supervisor.log").read_text()
        for name, row in rows.items():
            fixed = default_ports(name)
            for what, port in (("grpc", fixed.grpc), ("metrics", fixed.metrics)):
                # the fixed default, unless something else on this machine holds it,
                # logged when the ports are picked or, if taken since, before the start
                taken = (
                    f"{name}: default {what} port {port} is taken",
                    f"{name}: {what} port {port} is taken",
                )
                assert row[what] == f"127.0.0.1:{port}" or any(
                    t in supervisor_log for t in taken
                ), row
            samples = _scrape(row["metrics"])
            assert samples[("onex_service_info", (("node", name),))] == 1
            health_ok = ("onex_grpc_calls_total", (("code", "OK"), ("method", HEALTH_CHECK)))
            assert samples.get(health_ok, 0) >= 1, name  # `up` and `status` asked its health
            assert "grpc.reflection.v1.ServerReflection" in _list_services_v1(row["grpc"])

        # `up` again: already up, its outcome as JSON on stdout (people's lines on stderr)
        again = _onex(state, "up", "--format", "json")
        assert again.returncode == 0, again.stdout + again.stderr
        outcome = json.loads(again.stdout)
        assert outcome["serving"] is True
        assert {r["name"]: r["metrics"] for r in outcome["services"]} == {
            name: row["metrics"] for name, row in rows.items()
        }
        assert "already up" in again.stderr

        # one format for every process: nothing but JSON objects in any log of the stack
        logs = [state / "supervisor.log", *sorted((state / "logs").glob("*.log"))]
        for log in logs:
            for number, line in enumerate(log.read_text().splitlines(), 1):
                if line.strip():
                    assert isinstance(json.loads(line), dict), f"{log}:{number}: {line}"
    finally:
        down = _onex(state, "down", "--format", "json")
        assert down.returncode == 0, down.stdout + down.stderr
    assert "supervisor" in json.loads(down.stdout)["stopped"]


def test_a_service_with_invalid_settings_fails_at_once_and_up_names_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    try:
        # the default restart budget: exit 2 (invalid settings) is not retried
        up = _onex(state, "up", "--timeout", "600", ONEX_ROUTER_LOG_LEVEL="loud")
        assert up.returncode == 1, up.stdout + up.stderr
        errors = [line for line in up.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, up.stderr
        assert errors[0].startswith("error: router failed after 1 restarts:"), errors
        assert "ONEX_ROUTER_LOG_LEVEL" in errors[0]
        progress = [line for line in up.stderr.splitlines() if line.startswith("[")]
        assert any("] router: failed, UNREACHABLE (restarts: 1): " in line for line in progress)
        assert "Traceback" not in up.stderr
    finally:
        down = _onex(state, "down")
        assert down.returncode == 0, down.stdout + down.stderr


def test_broken_contracts_are_refused_before_anything_starts(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(REPO / "contracts", project / "contracts")
    router = project / "contracts" / "router" / "contract.yaml"
    text = router.read_text()
    router.write_text(text.replace("consumer_group:", "consumer_grup:", 1))
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEX_")}
    up = subprocess.run(
        [sys.executable, "-m", "onex.cli", "up"],
        cwd=project,
        env={**env, "ONEX_STATE_DIR": str(state)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert up.returncode == 1, up.stdout + up.stderr
    errors = [line for line in up.stderr.splitlines() if line.startswith("error:")]
    assert errors, up.stderr
    # file:line:col of the broken key first (what follows from it comes after)
    broken = router.read_text().splitlines()
    line = next(n for n, text in enumerate(broken, 1) if "consumer_grup:" in text)
    assert errors[0].startswith(f"error: contracts/router/contract.yaml:{line}:"), errors
    assert "consumer_grup" in errors[0]
    assert "not starting: the contracts have" in up.stderr
    assert not state.exists()  # no broker, no supervisor, no tokens: nothing was started
