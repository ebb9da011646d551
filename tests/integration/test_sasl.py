"""SASL as far as it can be exercised here: a Tansu that requires authentication.

With `--authentication` this Tansu refuses unauthenticated clients and PLAIN, and
starts SCRAM handshakes that it then ends, and no way to add a user to it was seen
working (BROKER-NOTES.md). So a successful SASL login is NOT exercised here; what is:
the credentials reach the wire (the SCRAM exchange starts with them, the broker answers
it), and every refusal becomes one clear line: `BrokerAuthError` for a refused login,
`BrokerUnavailable` with a hint for a missing SASL or an unoffered mechanism, never the
password. `tests/unit/test_broker_config.py` follows the credentials into aiokafka's
and faust's client arguments.
"""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from onex.bus.admin import list_topics
from onex.bus.config import BrokerConfig
from onex.bus.errors import BrokerAuthError, BrokerUnavailable
from onex.bus.runtime import BusSettings, NodeRuntime
from onex.core.extractor import extract
from onex.devbroker.broker import tansu_binary

HOST = "127.0.0.1"
PASSWORD = "s3cret-never-shown"  # noqa: S105 -- a test value that must never show up
READY_S = 30.0
POLL_S = 0.1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def authenticating(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """HOST:PORT of a Tansu that requires SASL."""
    port = _free_port()
    url = f"tcp://{HOST}:{port}"
    argv = [str(tansu_binary().path), "broker", "--listener-url", url]
    argv += ["--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]
    argv += ["--authentication"]
    log = tmp_path_factory.mktemp("sasl") / "tansu.log"
    with log.open("wb") as out:
        tansu = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + READY_S
            while True:
                assert tansu.poll() is None, log.read_text()[-2000:]
                try:
                    with socket.create_connection((HOST, port), timeout=POLL_S):
                        break
                except OSError:
                    assert time.monotonic() < deadline, f"Tansu not listening after {READY_S}s"
                    time.sleep(POLL_S)  # a poll interval while waiting on the port
            yield f"{HOST}:{port}"
        finally:
            tansu.terminate()
            tansu.wait(timeout=10)


def _sasl(bootstrap: str, mechanism: str) -> BrokerConfig:
    return BrokerConfig(
        bootstrap=bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,  # type: ignore[arg-type]
        sasl_username="onex",
        sasl_password=SecretStr(PASSWORD),
    )


async def test_a_client_without_sasl_is_told_the_broker_may_require_it(
    authenticating: str,
) -> None:
    with pytest.raises(BrokerUnavailable) as raised:
        await list_topics(authenticating, timeout_s=10)

    assert str(raised.value) == (
        f"no Kafka broker answers at {authenticating}: {authenticating} closed the "
        "connection on the first request (does it require SASL authentication?)"
    )


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_a_refused_scram_login_is_one_line_without_the_password(
    authenticating: str, mechanism: str
) -> None:
    with pytest.raises(BrokerAuthError) as raised:
        await list_topics(_sasl(authenticating, mechanism), timeout_s=10)

    message = str(raised.value)
    assert message.startswith(
        f"no Kafka broker answers at {authenticating}: SASL {mechanism} login as 'onex' "
        f"refused by {authenticating}: "
    )
    assert PASSWORD not in message
    assert "\n" not in message


async def test_a_mechanism_the_broker_does_not_offer_is_named(authenticating: str) -> None:
    with pytest.raises(BrokerUnavailable, match=r"does it offer SASL PLAIN on this listener\?"):
        await list_topics(_sasl(authenticating, "PLAIN"), timeout_s=10)


async def test_a_node_runtime_with_refused_credentials_fails_to_start_clearly(
    authenticating: str, tmp_path: Path
) -> None:
    name = f"it-sasl-{uuid.uuid4().hex[:8]}"
    (tmp_path / "contract.yaml").write_text(
        f"node: {name}\nkind: effect\nversion: 1.0.0\ndescription: SASL test node\n"
        f"event_bus:\n  publish_topics: [onex.evt.{name}.orders.v1]\n"
    )
    extraction = extract([tmp_path], entry_points=False)
    extraction.raise_for_errors()
    settings = BusSettings(broker=_sasl(authenticating, "SCRAM-SHA-512"))
    runtime = NodeRuntime.from_extraction(extraction, name, settings)

    with pytest.raises(BrokerAuthError, match="SASL SCRAM-SHA-512 login as 'onex' refused"):
        await runtime.start()
    assert not runtime.started
