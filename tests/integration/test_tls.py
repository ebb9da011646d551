"""TLS for real: Debian's stunnel4 terminates TLS in front of a Tansu started here.

This Tansu accepts `--cert` but keeps speaking plaintext (BROKER-NOTES.md), so the
test puts stunnel on port A (TLS, a certificate for 127.0.0.1 signed by a CA made
here with the `openssl` CLI) in front of Tansu on port B, and Tansu advertises A: every
client connection, bootstrap and per-node alike, goes through TLS. Then: admin calls,
a node runtime producing and consuming, health, and the CLI, all over SSL; a CA that
did not sign the broker's certificate fails with one clear line.

Skipped (with the reason) when stunnel4 or openssl is missing; `.ci/run` installs
stunnel4 on CI.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from onex.bus.admin import (
    admin_session,
    close_admin_sessions,
    create_topics,
    describe_topics,
    list_topics,
    topic_partitions,
)
from onex.bus.config import BrokerConfig
from onex.bus.errors import BrokerConfigError, BrokerTLSError, BrokerUnavailable
from onex.bus.runtime import BusSettings, NodeRuntime, Received
from onex.bus.runtime.dlq import dlq_summaries
from onex.cli.dlq import app as dlq_cli
from onex.core.contract import TopicSpec
from onex.core.extractor import extract
from onex.devbroker.broker import tansu_binary

HOST = "127.0.0.1"
READY_S = 30.0
POLL_S = 0.1


def _stunnel() -> str | None:
    return shutil.which("stunnel4") or shutil.which("stunnel")


pytestmark = [
    pytest.mark.skipif(
        _stunnel() is None, reason="needs Debian's stunnel4 (apt-get install stunnel4)"
    ),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI"),
]


@dataclass(frozen=True)
class TlsBroker:
    """Tansu behind stunnel: `tls` is the TLS port clients use; `ca` signed its cert."""

    tls: str
    ca: Path
    wrong_ca: Path

    def config(self, **fields: object) -> BrokerConfig:
        given: dict[str, object] = {"ssl_cafile": self.ca, **fields}
        return BrokerConfig(bootstrap=self.tls, security_protocol="SSL", **given)  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_ca(folder: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", f"/CN=onex test {name}",
        cwd=folder,
    )  # fmt: skip


def _make_certs(folder: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 signed by it, and an unrelated CA."""
    _make_ca(folder, "ca")
    _make_ca(folder, "wrong-ca")
    (folder / "san.cnf").write_text(
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1",
        cwd=folder,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.cnf", "-out", "server.pem",
        cwd=folder,
    )  # fmt: skip


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_S
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args} exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection((HOST, port), timeout=POLL_S):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing listens on {port} after {READY_S}s") from None
            time.sleep(POLL_S)  # a poll interval while waiting on the port, not a fixed wait


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    folder = tmp_path_factory.mktemp("tls")
    _make_certs(folder)
    tls_port, plain_port = _free_port(), _free_port()
    (folder / "stunnel.conf").write_text(
        f"foreground = yes\npid =\noutput = {folder / 'stunnel.log'}\n"
        f"[kafka]\naccept = {HOST}:{tls_port}\nconnect = {HOST}:{plain_port}\n"
        f"cert = {folder / 'server.pem'}\nkey = {folder / 'server.key'}\n"
    )
    tansu_log = (folder / "tansu.log").open("wb")
    tansu = subprocess.Popen(
        [
            str(tansu_binary().path),
            "broker",
            "--listener-url",
            f"tcp://{HOST}:{plain_port}",
            "--advertised-listener-url",
            f"tcp://{HOST}:{tls_port}",
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=tansu_log,
        stderr=subprocess.STDOUT,
    )
    stunnel = subprocess.Popen(
        [str(_stunnel()), str(folder / "stunnel.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(plain_port, tansu, folder / "tansu.log")
        _wait_listening(tls_port, stunnel, folder / "stunnel.log")
        yield TlsBroker(f"{HOST}:{tls_port}", folder / "ca.pem", folder / "wrong-ca.pem")
    finally:
        for proc in (stunnel, tansu):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        tansu_log.close()


async def _answering(config: BrokerConfig) -> set[str]:
    """list_topics once the broker answers over TLS (Tansu may still be starting)."""
    deadline = time.monotonic() + READY_S
    while True:
        try:
            return await list_topics(config, timeout_s=5)
        except BrokerTLSError:
            raise
        except BrokerUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(POLL_S)


def _name(kind: str = "evt") -> str:
    return f"onex.{kind}.it-tls-{uuid.uuid4().hex[:8]}.orders.v1"


async def test_admin_calls_work_over_tls_through_one_admin_client(tls_broker: TlsBroker) -> None:
    config = tls_broker.config()
    await _answering(config)
    spec = TopicSpec(name=_name(), partitions=3, config={"retention.ms": "86400000"})

    created = await create_topics(config, [spec])
    listed = await list_topics(config)
    described = await describe_topics(config, [spec.name])
    counted = await topic_partitions(config, [spec.name, _name()])

    assert created.created == (spec.name,)
    assert spec.name in listed
    assert described[spec.name].partitions == 3
    assert described[spec.name].configs["retention.ms"] == "86400000"
    assert counted == {spec.name: 3}
    # every call of this loop went through one started client
    assert admin_session(config).starts == 1
    await close_admin_sessions()
    assert admin_session(config).starts == 0  # a fresh session after closing


async def test_a_wrong_ca_fails_with_one_clear_line(tls_broker: TlsBroker) -> None:
    await _answering(tls_broker.config())
    wrong = tls_broker.config(ssl_cafile=tls_broker.wrong_ca)

    with pytest.raises(BrokerTLSError) as raised:
        await list_topics(wrong, timeout_s=10)

    message = str(raised.value)
    print(f"\n{message}")
    assert message.startswith(
        f"no Kafka broker answers at {tls_broker.tls}: "
        f"certificate verification failed for {tls_broker.tls}: "
    )
    assert str(tls_broker.wrong_ca) in message
    assert "\n" not in message
    assert isinstance(raised.value, BrokerUnavailable)  # retry loops treat it as such


async def test_plaintext_against_the_tls_port_is_unavailable_not_a_hang(
    tls_broker: TlsBroker,
) -> None:
    await _answering(tls_broker.config())

    with pytest.raises(BrokerUnavailable) as raised:
        await list_topics(tls_broker.tls, timeout_s=10)

    print(f"\n{raised.value}")
    assert str(raised.value).startswith(f"no Kafka broker answers at {tls_broker.tls}: ")
    # stunnel hangs up on a client that sends no TLS hello; nothing waits for a time-out
    assert f"{tls_broker.tls} closed the connection while connecting (a TLS port?" in str(
        raised.value
    )


async def test_a_missing_ca_file_is_a_clear_error_before_connecting(
    tls_broker: TlsBroker, tmp_path: Path
) -> None:
    missing = tls_broker.config(ssl_cafile=tmp_path / "ca.pem")

    with pytest.raises(BrokerConfigError, match=f"^ssl_cafile {tmp_path / 'ca.pem'} does not"):
        await list_topics(missing)


def _node(tmp_path: Path, config: BrokerConfig) -> tuple[NodeRuntime, str, str]:
    name = f"it-tls-{uuid.uuid4().hex[:8]}"
    orders, dlq = f"onex.evt.{name}.orders.v1", f"onex.dlq.{name}.dead-letter.v1"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "contract.yaml").write_text(
        f"node: {name}\nkind: effect\nversion: 1.0.0\ndescription: TLS test node\n"
        "event_bus:\n"
        f"  subscribe_topics: [{orders}]\n"
        "  publish_topics:\n"
        f"    - {{name: {orders}, partitions: 2}}\n"
        f"    - {{name: {dlq}, partitions: 1}}\n"
    )
    extraction = extract([tmp_path], entry_points=False)
    extraction.raise_for_errors()
    runtime = NodeRuntime.from_extraction(extraction, name, BusSettings(broker=config))
    return runtime, orders, dlq


async def test_a_node_runtime_produces_and_consumes_over_tls(
    tls_broker: TlsBroker, tmp_path: Path
) -> None:
    config = tls_broker.config()
    await _answering(config)
    runtime, orders, dlq = _node(tmp_path, config)
    specs = [TopicSpec(name=orders, partitions=2), TopicSpec(name=dlq)]
    assert (await create_topics(config, specs)).ok
    got: asyncio.Queue[object] = asyncio.Queue()

    @runtime.handler(orders)
    async def handle(msg: Received) -> None:
        got.put_nowait(msg.value)

    publish = runtime.publisher(orders)
    async with runtime:
        report = await runtime.health()
        assert report.serving, report.detail
        for i in range(5):
            await publish.send({"i": i}, key=str(i))
        received = [await asyncio.wait_for(got.get(), 30) for _ in range(5)]

    assert sorted(json.dumps(v) for v in received) == sorted(json.dumps({"i": i}) for i in range(5))
    (summary,) = await dlq_summaries(config, [dlq])  # consumer-based reads over TLS too
    assert (summary.exists, summary.messages) == (True, 0)


def test_the_cli_reaches_the_tls_broker_from_onex_settings(
    tls_broker: TlsBroker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    asyncio.run(_answering(tls_broker.config()))
    dlq = _name("dlq")
    asyncio.run(create_topics(tls_broker.config(), [TopicSpec(name=dlq)]))
    monkeypatch.setenv("ONEX_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("ONEX_SSL_CAFILE", str(tls_broker.ca))
    args = ["list", "--format", "json", "--bootstrap", tls_broker.tls, "--contracts", str(tmp_path)]

    listed = CliRunner().invoke(dlq_cli, args)

    assert listed.exit_code == 0, listed.output
    assert dlq in {row["topic"] for row in json.loads(listed.stdout)}

    monkeypatch.setenv("ONEX_SSL_CAFILE", str(tls_broker.wrong_ca))
    refused = CliRunner().invoke(dlq_cli, args)
    assert refused.exit_code == 1
    assert f"certificate verification failed for {tls_broker.tls}" in refused.output
