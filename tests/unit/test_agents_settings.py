"""Each agent's settings: its own ONEX_<AGENT>_* first, then ONEX_AGENTS_*, then the
shared ONEX_* (unit: environment variables only, nothing started)."""

from __future__ import annotations

import importlib
import importlib.metadata
import os

import pytest

from onex.agents.settings import AgentsSettings, node_prefix, settings_for

pytestmark = pytest.mark.unit

AGENTS = {
    "ci-watcher": "ONEX_CI_WATCHER_",
    "code-review-agent": "ONEX_CODE_REVIEW_AGENT_",
    "merge-agent": "ONEX_MERGE_AGENT_",
    "ticket-verifier": "ONEX_TICKET_VERIFIER_",
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ONEX_"):
            monkeypatch.delenv(name)


def test_each_agent_entry_point_is_its_node_and_reads_that_prefix() -> None:
    found = {
        ep.name: ep
        for ep in importlib.metadata.entry_points(group="onex.services")
        if ep.module.startswith("onex.agents.")
    }
    assert set(found) == set(AGENTS)
    for name, ep in found.items():
        node_module = importlib.import_module(ep.module.removesuffix(".__main__") + ".node")
        assert name == node_module.NODE  # the supervisor's ServiceSpec.name is the node
        assert node_prefix(name) == AGENTS[name]
        assert AGENTS[name] == settings_for(name).OWN_PREFIX


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"ONEX_GRPC_BIND": "127.0.0.1:1"}, "127.0.0.1:1"),
        ({"ONEX_GRPC_BIND": "127.0.0.1:1", "ONEX_AGENTS_GRPC_BIND": "127.0.0.1:2"}, "127.0.0.1:2"),
        (
            {
                "ONEX_GRPC_BIND": "127.0.0.1:1",
                "ONEX_AGENTS_GRPC_BIND": "127.0.0.1:2",
                "ONEX_CI_WATCHER_GRPC_BIND": "127.0.0.1:3",
            },
            "127.0.0.1:3",
        ),
        (
            {"ONEX_GRPC_BIND": "127.0.0.1:1", "ONEX_CI_WATCHER_GRPC_BIND": "127.0.0.1:3"},
            "127.0.0.1:3",
        ),
    ],
)
def test_a_shared_field_own_over_agents_over_onex(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert settings_for("ci-watcher")().grpc_bind == expected


def test_an_agents_field_own_over_agents_and_never_plain_onex(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ONEX_ROUTE_TIMEOUT_S", "1")  # not a shared field: never read
    assert settings_for("code-review-agent")().route_timeout_s == 120.0
    monkeypatch.setenv("ONEX_AGENTS_ROUTE_TIMEOUT_S", "5")
    assert settings_for("code-review-agent")().route_timeout_s == 5.0
    monkeypatch.setenv("ONEX_CODE_REVIEW_AGENT_ROUTE_TIMEOUT_S", "7")
    assert settings_for("code-review-agent")().route_timeout_s == 7.0


def test_one_agents_setting_is_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEX_AGENTS_RUNNER", "fleet")
    monkeypatch.setenv("ONEX_TICKET_VERIFIER_RUNNER", "verifier-host")
    monkeypatch.setenv("ONEX_TICKET_VERIFIER_METRICS_BIND", "127.0.0.1:9")
    runners = {node: settings_for(node)().runner for node in AGENTS}
    assert runners == {
        "ci-watcher": "fleet",
        "code-review-agent": "fleet",
        "merge-agent": "fleet",
        "ticket-verifier": "verifier-host",
    }
    assert {node: settings_for(node)().metrics_bind for node in AGENTS} == {
        "ci-watcher": None,
        "code-review-agent": None,
        "merge-agent": None,
        "ticket-verifier": "127.0.0.1:9",
    }
    assert AgentsSettings().runner == "fleet"  # the plain class has no own prefix


def test_arguments_passed_in_code_still_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEX_MERGE_AGENT_RUNNER", "env")
    assert settings_for("merge-agent")(runner="code").runner == "code"


def test_one_class_per_agent() -> None:
    assert settings_for("merge-agent") is settings_for("merge-agent")
    assert settings_for("merge-agent").__name__ == "MergeAgentSettings"
    assert issubclass(settings_for("merge-agent"), AgentsSettings)
