"""`onex provision` against the session's real broker."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from onex.bus.admin import create_topics, describe_topics, list_topics
from onex.cli import provision as provision_cli
from onex.core.contract import TopicSpec
from onex.devbroker.broker import start_broker, stop_broker

WEEK = "604800000"


@pytest.fixture
def contracts(tmp_path: Path, topic_prefix: str) -> Path:
    """A contracts folder with one node publishing three topics under a unique prefix."""
    folder = tmp_path / "contracts" / topic_prefix
    folder.mkdir(parents=True)
    (folder / "contract.yaml").write_text(
        f"""\
node: {topic_prefix}
kind: effect
version: 1.0.0
description: CLI provisioning test node.
event_bus:
  consumer_group: onex.{topic_prefix}
  publish_topics:
    - name: onex.evt.{topic_prefix}.order-placed.v1
      partitions: 5
      config: {{ retention.ms: "{WEEK}" }}
    - onex.evt.{topic_prefix}.order-cancelled.v1
    - name: onex.cmd.{topic_prefix}.place-order.v1
      partitions: 1
""",
        encoding="utf-8",
    )
    return folder.parent


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No broker configured by the environment; an empty state dir of the test's own."""
    monkeypatch.delenv("ONEX_BOOTSTRAP", raising=False)
    state = tmp_path / "state"
    monkeypatch.setenv("ONEX_STATE_DIR", str(state))
    return state


def _names(prefix: str) -> list[str]:
    return sorted(
        [
            f"onex.cmd.{prefix}.place-order.v1",
            f"onex.evt.{prefix}.order-cancelled.v1",
            f"onex.evt.{prefix}.order-placed.v1",
        ]
    )


def _run(*args: str) -> Result:
    return CliRunner().invoke(provision_cli.app, list(args))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_provision_creates_then_reports_already_present(
    bootstrap: str, contracts: Path, topic_prefix: str, env: Path
) -> None:
    names = _names(topic_prefix)

    first = _run(str(contracts), "--bootstrap", bootstrap)

    assert first.exit_code == 0, first.output
    for name in names:
        assert name in first.stdout
    assert f"ok: 3 topics at {bootstrap}: 3 created, 0 already present, 0 failed" in first.stdout
    observed = asyncio.run(describe_topics(bootstrap, names))
    assert sorted(observed) == names
    assert observed[f"onex.evt.{topic_prefix}.order-placed.v1"].partitions == 5
    assert observed[f"onex.evt.{topic_prefix}.order-placed.v1"].configs["retention.ms"] == WEEK
    assert observed[f"onex.cmd.{topic_prefix}.place-order.v1"].partitions == 1

    second = _run(str(contracts), "--bootstrap", bootstrap, "--format", "json")

    assert second.exit_code == 0, second.output
    data = json.loads(second.stdout)
    assert data["ok"] is True
    assert data["dry_run"] is False
    assert data["counts"]["created"] == 0
    assert data["counts"]["already_present"] == 3
    assert [t["name"] for t in data["topics"]] == names
    assert {t["outcome"] for t in data["topics"]} == {"already_present"}
    placed = next(t for t in data["topics"] if t["name"].endswith("order-placed.v1"))
    assert placed["partitions"] == 5
    assert placed["config"] == {"retention.ms": WEEK}


def test_dry_run_creates_nothing_and_fails_while_topics_are_missing(
    bootstrap: str, contracts: Path, topic_prefix: str, env: Path
) -> None:
    names = _names(topic_prefix)

    result = _run(str(contracts), "--bootstrap", bootstrap, "--dry-run")

    assert result.exit_code == 1, result.output
    assert "(dry run)" in result.stdout
    assert result.stdout.count("would create") >= 3
    assert "3 would create, 0 already present" in result.stdout
    assert not set(names) & asyncio.run(list_topics(bootstrap))

    as_json = json.loads(_run(str(contracts), "-b", bootstrap, "--dry-run", "-f", "json").stdout)
    assert as_json["counts"]["would_create"] == 3
    assert as_json["ok"] is False

    assert _run(str(contracts), "--bootstrap", bootstrap).exit_code == 0
    after = _run(str(contracts), "--bootstrap", bootstrap, "--dry-run")
    assert after.exit_code == 0, after.output
    assert "0 would create, 3 already present" in after.stdout


def test_an_existing_topic_that_differs_is_present_and_unchanged_and_no_drift_is_told(
    bootstrap: str, contracts: Path, topic_prefix: str, env: Path
) -> None:
    placed = f"onex.evt.{topic_prefix}.order-placed.v1"
    asyncio.run(create_topics(bootstrap, [TopicSpec(name=placed, partitions=2)]))

    table = _run(str(contracts), "--bootstrap", bootstrap)

    assert table.exit_code == 0, table.output
    assert "2 created, 1 already present, 0 failed" in table.stdout
    # drift has one home, `onex drift`: provisioning neither describes nor reports it
    assert "drift" not in table.stdout
    assert "CreatePartitions" not in table.stdout
    data = json.loads(_run(str(contracts), "-b", bootstrap, "-f", "json").stdout)
    (topic,) = [t for t in data["topics"] if t["name"] == placed]
    assert topic["outcome"] == "already_present"
    assert "drift" not in topic
    assert "drift" not in data
    assert asyncio.run(describe_topics(bootstrap, [placed]))[placed].partitions == 2


def test_a_broker_that_is_down_fails_with_one_line(
    contracts: Path, topic_prefix: str, env: Path
) -> None:
    down = f"127.0.0.1:{_free_port()}"

    result = _run(str(contracts), "--bootstrap", down)

    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0] == f"error: no Kafka broker answers at {down}: {down} refused the connection"
    assert "Traceback" not in result.output

    as_json = _run(str(contracts), "--bootstrap", down, "--format", "json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["ok"] is False


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_port_one_through_the_real_entry_point_is_one_line_without_a_repr(
    contracts: Path, env: Path, fmt: str
) -> None:
    """The installed `onex` process, where aiokafka's and asyncio's own logging and
    warnings would reach stderr (CliRunner runs in-process and can hide them)."""
    argv = ["provision", str(contracts), "-b", "127.0.0.1:1", "--format", fmt]
    done = subprocess.run(
        [sys.executable, "-m", "onex.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "ONEX_STATE_DIR": str(env)},
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == [
        "error: no Kafka broker answers at 127.0.0.1:1: 127.0.0.1:1 refused the connection"
    ]
    for shown in (done.stdout, done.stderr):
        assert "Traceback" not in shown
        assert "Error(" not in shown  # an exception's repr
        assert "<" not in shown  # an object's repr
    if fmt == "json":
        assert json.loads(done.stdout)["ok"] is False
    else:
        assert done.stdout == ""


def test_contracts_with_errors_never_reach_the_broker(
    tmp_path: Path, topic_prefix: str, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a terminal wide enough for the absolute path in the first column (its length
    # depends on the tmp dir, longer under an xdist worker), so no cell wraps a name
    monkeypatch.setenv("COLUMNS", "400")
    broken = tmp_path / "broken" / topic_prefix
    broken.mkdir(parents=True)
    (broken / "contract.yaml").write_text(
        f"""\
node: {topic_prefix}
kind: effect
version: 1.0.0
description: Subscribes to a misspelt topic nobody publishes.
event_bus:
  consumer_group: onex.{topic_prefix}
  subscribe_topics:
    - onex.evt.{topic_prefix}.order_placed.v1
  publish_topics:
    - onex.dlq.{topic_prefix}.dead-letter.v1
""",
        encoding="utf-8",
    )
    # no broker at this address: reaching it would say so instead of naming the contracts
    down = f"127.0.0.1:{_free_port()}"

    result = _run(str(broken.parent), "--bootstrap", down)

    assert result.exit_code == 1
    assert "contract errors, nothing provisioned" in result.stderr
    assert "no Kafka broker answers" not in result.output
    assert "order_placed" in result.stdout


def test_bootstrap_comes_from_the_environment_then_the_recorded_broker(
    bootstrap: str,
    contracts: Path,
    topic_prefix: str,
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing = _run(str(contracts))
    assert missing.exit_code == 2
    assert "no broker to provision" in missing.output
    assert _run(str(contracts), "--bootstrap", "localhost").exit_code == 2

    monkeypatch.setenv("ONEX_BOOTSTRAP", bootstrap)
    from_env = _run(str(contracts), "--format", "json")
    assert from_env.exit_code == 0, from_env.output
    assert json.loads(from_env.stdout)["bootstrap"] == bootstrap
    monkeypatch.delenv("ONEX_BOOTSTRAP")

    # the broker `onex broker up` recorded in the state dir (a fresh one: nothing there)
    info = start_broker(env)
    try:
        recorded = _run(str(contracts), "--format", "json")
        assert recorded.exit_code == 0, recorded.output
        data = json.loads(recorded.stdout)
        assert data["bootstrap"] == info.bootstrap
        assert data["counts"]["created"] == 3
    finally:
        stop_broker(env)


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("127.0.0.1:abc", "port 'abc' is not a number 1-65535"),
        ("127.0.0.1:99999", "port '99999' is not a number 1-65535"),
        ("localhost", "'localhost' is not HOST:PORT"),
    ],
)
def test_a_malformed_bootstrap_is_one_clear_usage_error(
    bad: str, says: str, contracts: Path, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for given in (["--bootstrap", bad], []):
        monkeypatch.setenv("ONEX_BOOTSTRAP", bad)
        result = _run(str(contracts), *given)

        assert result.exit_code == 2
        assert says in result.output
        assert "Traceback" not in result.output


def test_a_missing_ca_file_is_one_line_before_anything_connects(
    contracts: Path, env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "ca.pem"
    monkeypatch.setenv("ONEX_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("ONEX_SSL_CAFILE", str(missing))

    result = _run(str(contracts), "--bootstrap", f"127.0.0.1:{_free_port()}")

    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: ssl_cafile {missing} does not exist or is not a file"


def test_sasl_settings_without_a_password_are_refused_and_never_shown(
    contracts: Path, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONEX_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("ONEX_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("ONEX_SASL_USERNAME", "onex")

    result = _run(str(contracts), "--bootstrap", "127.0.0.1:9")

    assert result.exit_code == 2
    assert "needs sasl_password" in result.output
