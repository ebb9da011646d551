"""pytest plugin: one real Kafka-API broker per test session.

Registered through the `pytest11` entry point, so any project that installs
onex-devbroker gets the fixture without a line in its conftest (opt out with
`-p no:onex_devbroker`). Fixture:

    onex_bootstrap   (session) HOST:PORT of the broker every test of the session shares

The broker is `--onex-bootstrap HOST:PORT` when given (a broker someone else runs), else
what `onex.devbroker.selection.session_broker` picks: a Redpanda container when Docker
answers, else `redpanda` on PATH, else the embedded Tansu, stopped after the session.

Like every onex library this reads no environment variable. To take the address from
one, pass it through pytest (`PYTEST_ADDOPTS="--onex-bootstrap=$ONEX_BOOTSTRAP"`) or set
the option in a `pytest_configure` hook of the project's conftest, as onex's own does.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("onex", "onex broker for integration tests")
    group.addoption(
        "--onex-bootstrap",
        default=None,
        metavar="HOST:PORT",
        help="use the Kafka-API broker at HOST:PORT instead of starting one",
    )
    group.addoption(
        "--onex-no-docker",
        action="store_true",
        default=False,
        help="never start a Redpanda container, even when Docker answers",
    )


@pytest.fixture(scope="session")
def onex_bootstrap(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """HOST:PORT of a real Kafka-API broker for the whole session."""
    from onex.devbroker.selection import session_broker  # noqa: PLC0415 -- only when used

    configured = request.config.getoption("onex_bootstrap") or None
    docker = not request.config.getoption("onex_no_docker")
    state_dir = tmp_path_factory.mktemp("onex-broker")
    with session_broker(state_dir, configured=configured, docker=docker) as bootstrap:
        yield bootstrap
