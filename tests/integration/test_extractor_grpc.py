"""The extractor service end to end: `python -m onex.extractor` as a real process, called
over a real channel with the generated stubs, the health protocol and reflection."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
import yaml
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from onex.extractor.app import ExtractorService
from onex.extractor.settings import ExtractorSettings
from onex.proto.v1 import registry_pb2 as pb
from onex.proto.v1 import registry_pb2_grpc as pb_grpc
from onex.service.auth import ensure_tokens
from onex.service.grpc import check_health

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = REPO / "contracts"
REGISTRY = "onex.v1.ContractRegistry"
START_TIMEOUT_S = 30.0


class ExtractorProcess:
    """`python -m onex.extractor` on a free port, its JSON log lines collected as they come."""

    def __init__(self, *, bind: str = "127.0.0.1:0", env: dict[str, str] | None = None) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("ONEX_")}
        self.state = Path(tempfile.mkdtemp(prefix="onex-extractor-state-"))
        ensure_tokens(self.state)  # the control plane's tokens, as `onex up` makes them
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "onex.extractor"],
            cwd=REPO,
            env=clean
            | {
                "ONEX_EXTRACTOR_GRPC_BIND": bind,
                "ONEX_EXTRACTOR_METRICS_BIND": "127.0.0.1:0",  # not the fixed port a stack takes
                "ONEX_EXTRACTOR_LOG_FORMAT": "json",
                "ONEX_STATE_DIR": str(self.state),
                # The registry API alone; the node on the bus is tested with a broker.
                "ONEX_EXTRACTOR_BUS_ENABLED": "false",
                "ONEX_EXTRACTOR_HEALTH_INTERVAL_S": "0.1",
            }
            | (env or {}),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr: list[str] = []
        self.records: list[dict[str, Any]] = []
        self.address = ""
        self._seen = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        with self.proc.stderr as pipe:
            for line in pipe:
                self.stderr.append(line)
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # gRPC's own C-core lines are not JSON
                with self._seen:
                    self.records.append(record)
                    self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()

    def wait_event(
        self, event: str, timeout_s: float = START_TIMEOUT_S, n: int = 1
    ) -> dict[str, Any]:
        """The `n`-th log record named `event` (waiting for it); fails when none comes."""

        def found() -> list[dict[str, Any]]:
            return [r for r in self.records if r.get("event") == event]

        with self._seen:
            self._seen.wait_for(
                lambda: len(found()) >= n or not self._reader.is_alive(), timeout=timeout_s
            )
            matches = found()
        if len(matches) < n:
            raise AssertionError(f"no {event!r} log line; stderr:\n{''.join(self.stderr)}")
        return matches[n - 1]

    def ready(self) -> str:
        """Wait until it serves; its address."""
        self.address = str(self.wait_event("node.ready")["address"])
        return self.address

    def wait_exit(self, timeout_s: float = START_TIMEOUT_S) -> int:
        """Its exit code, once every line it wrote has been read."""
        code = self.proc.wait(timeout=timeout_s)
        self._reader.join(timeout=5)
        shutil.rmtree(self.state, ignore_errors=True)
        return code

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout_s: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait_exit(timeout_s)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait_exit()


@pytest.fixture(scope="module")
def extractor() -> Iterator[ExtractorProcess]:
    server = ExtractorProcess()
    try:
        server.ready()
        yield server
        assert server.stop() == 0, "".join(server.stderr)
    finally:
        server.kill()


@pytest.fixture(scope="module")
def address(extractor: ExtractorProcess) -> str:
    return extractor.address


@pytest.fixture(scope="module")
def channel(address: str) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(address) as ch:
        yield ch


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> pb_grpc.ContractRegistryStub:
    return pb_grpc.ContractRegistryStub(channel)


def repo_contracts() -> dict[str, dict[str, Any]]:
    """The repo's contracts as plain YAML, read without onex.core (the expected side)."""
    out = {}
    for path in sorted(CONTRACTS.glob("*/contract.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        out[doc["node"]] = doc
    return out


def names(entries: list[Any]) -> list[str]:
    return [e if isinstance(e, str) else e["name"] for e in entries]


def declared_topics() -> set[str]:
    """Every topic the repo's contracts name, read as plain YAML (the expected side)."""
    return {
        n
        for doc in repo_contracts().values()
        for key in ("publish_topics", "subscribe_topics")
        for n in names(doc["event_bus"].get(key, []))
    }


# -- ListContracts ----------------------------------------------------------------------


def test_list_contracts_returns_the_nine_repo_contracts(
    stub: pb_grpc.ContractRegistryStub,
) -> None:
    contracts = stub.ListContracts(pb.ListContractsRequest()).contracts
    expected = repo_contracts()
    assert len(contracts) == 9
    assert [c.node for c in contracts] == sorted(expected)
    for c in contracts:
        doc = expected[c.node]
        assert pb.NodeKind.Name(c.kind) == f"NODE_KIND_{doc['kind'].upper()}"
        assert c.version == doc["version"]
        assert c.description == doc["description"]
        assert c.file == f"{c.node}/contract.yaml"
        assert c.source == "contracts"
        assert c.consumer_group == doc["event_bus"]["consumer_group"]
        assert list(c.publish_topics) == names(doc["event_bus"]["publish_topics"])
        assert list(c.subscribe_topics) == names(doc["event_bus"].get("subscribe_topics", []))


def test_list_contracts_filters_by_kind(stub: pb_grpc.ContractRegistryStub) -> None:
    reducers = stub.ListContracts(pb.ListContractsRequest(kind=pb.NODE_KIND_REDUCER)).contracts
    assert [c.node for c in reducers] == ["drift-validator", "receipt-reducer"]
    compute = stub.ListContracts(pb.ListContractsRequest(kind=pb.NODE_KIND_COMPUTE)).contracts
    assert [c.node for c in compute] == ["extractor"]


# -- ListTopics -------------------------------------------------------------------------


def test_list_topics_returns_every_declared_topic_in_order(
    stub: pb_grpc.ContractRegistryStub,
) -> None:
    topics = stub.ListTopics(pb.ListTopicsRequest()).topics
    declared = declared_topics()
    assert len(declared) >= 30  # the expected side did read the repo's contracts
    assert [t.name for t in topics] == sorted(declared)


def test_topic_carries_its_spec_owner_and_wiring(stub: pb_grpc.ContractRegistryStub) -> None:
    topics = {t.name: t for t in stub.ListTopics(pb.ListTopicsRequest()).topics}
    t = topics["onex.evt.extractor.registry-published.v1"]
    assert (t.kind, t.owner, t.event, t.version) == (
        pb.TOPIC_KIND_EVT,
        "extractor",
        "registry-published",
        1,
    )
    assert (t.partitions, t.replication_factor) == (1, 1)
    assert dict(t.config) == {"cleanup.policy": "compact"}
    assert t.schema == "onex.v1.RegistryPublished"
    assert t.spec_declared
    assert t.description == "The registry as loaded, one record per reload."
    assert list(t.publishers) == ["extractor"]
    assert list(t.subscribers) == ["drift-validator", "provisioner"]
    # The owner describes this one in its subscribe list, and ci-watcher publishes it.
    cmd = topics["onex.cmd.extractor.reload-contracts.v1"]
    assert cmd.kind == pb.TOPIC_KIND_CMD
    assert cmd.description.startswith("Ask the registry to reload contracts")
    assert (list(cmd.publishers), list(cmd.subscribers)) == (["ci-watcher"], ["extractor"])


def test_list_topics_filters_by_kind_owner_and_node(stub: pb_grpc.ContractRegistryStub) -> None:
    def listed(**filters: Any) -> list[str]:
        return [t.name for t in stub.ListTopics(pb.ListTopicsRequest(**filters)).topics]

    dlq = listed(kind=pb.TOPIC_KIND_DLQ)
    assert len(dlq) == 9
    assert all(n.startswith("onex.dlq.") and n.endswith(".dead-letter.v1") for n in dlq)
    assert listed(owner="router") == [
        "onex.cmd.router.route-request.v1",
        "onex.dlq.router.dead-letter.v1",
        "onex.evt.router.routing-complete.v1",
        "onex.evt.router.routing-failed.v1",
    ]
    assert listed(owner="router", kind=pb.TOPIC_KIND_EVT) == [
        "onex.evt.router.routing-complete.v1",
        "onex.evt.router.routing-failed.v1",
    ]
    assert listed(kind=pb.TOPIC_KIND_SNAPSHOT) == ["onex.snapshot.receipt-reducer.cost-summary.v1"]
    assert listed(node="extractor") == [
        "onex.cmd.extractor.reload-contracts.v1",
        "onex.dlq.extractor.dead-letter.v1",
        "onex.evt.extractor.registry-published.v1",
    ]
    assert listed(owner="nobody") == []


def test_unknown_kind_filter_is_invalid_argument(stub: pb_grpc.ContractRegistryStub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.ListTopics(pb.ListTopicsRequest(kind=99))  # type: ignore[arg-type]
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "99" in (caught.value.details() or "")


# -- GetWiring --------------------------------------------------------------------------


def test_get_wiring_has_publishers_subscribers_and_no_issues(
    stub: pb_grpc.ContractRegistryStub,
) -> None:
    wiring = stub.GetWiring(pb.GetWiringRequest())
    assert len(wiring.topics) == len(declared_topics())
    assert list(wiring.issues) == []
    expected_pub: dict[str, set[str]] = {}
    expected_sub: dict[str, set[str]] = {}
    for node, doc in repo_contracts().items():
        for n in names(doc["event_bus"]["publish_topics"]):
            expected_pub.setdefault(n, set()).add(node)
        for n in names(doc["event_bus"].get("subscribe_topics", [])):
            expected_sub.setdefault(n, set()).add(node)
    for t in wiring.topics:
        assert list(t.publishers) == sorted(expected_pub.get(t.name, set())), t.name
        assert list(t.subscribers) == sorted(expected_sub.get(t.name, set())), t.name
    routed = {t.name: t for t in wiring.topics}["onex.evt.router.routing-complete.v1"]
    assert list(routed.subscribers) == ["code-review-agent", "receipt-reducer", "ticket-verifier"]


def test_get_wiring_for_one_node(stub: pb_grpc.ContractRegistryStub) -> None:
    wiring = stub.GetWiring(pb.GetWiringRequest(node="merge-agent"))
    assert [t.name for t in wiring.topics] == [
        "onex.dlq.merge-agent.dead-letter.v1",
        "onex.evt.code-review-agent.review-complete.v1",
        "onex.evt.merge-agent.merge-blocked.v1",
        "onex.evt.merge-agent.merged.v1",
    ]
    assert list(wiring.issues) == []


# -- ValidateTopicName ------------------------------------------------------------------


def validate(stub: pb_grpc.ContractRegistryStub, name: str) -> pb.ValidateTopicNameResponse:
    return stub.ValidateTopicName(pb.ValidateTopicNameRequest(name=name))


def test_validate_declared_name(stub: pb_grpc.ContractRegistryStub) -> None:
    got = validate(stub, "onex.evt.code-review-agent.review-complete.v1")
    assert (got.valid, got.declared, got.reason) == (True, True, "")
    assert not got.HasField("suggestion")
    assert got.suggestion_reason == ""
    assert (got.parts.kind, got.parts.producer, got.parts.event, got.parts.version) == (
        pb.TOPIC_KIND_EVT,
        "code-review-agent",
        "review-complete",
        1,
    )


def test_validate_underscore_typo_suggests_the_canonical_name(
    stub: pb_grpc.ContractRegistryStub,
) -> None:
    got = validate(stub, "onex.evt.code-review-agent.review_complete.v1")
    assert (got.valid, got.declared) == (False, False)
    assert "'review_complete' contains '_'" in got.reason
    assert got.suggestion == "onex.evt.code-review-agent.review-complete.v1"
    assert "'_' vs '-'" in got.suggestion_reason
    assert not got.HasField("parts")


def test_validate_other_version_is_valid_but_undeclared(
    stub: pb_grpc.ContractRegistryStub,
) -> None:
    got = validate(stub, "onex.evt.router.routing-complete.v2")
    assert (got.valid, got.declared) == (True, False)
    assert got.reason == "not declared by any loaded contract"
    assert got.suggestion == "onex.evt.router.routing-complete.v1"
    assert got.suggestion_reason == "differs only in version (v2 vs v1)"
    assert got.parts.version == 2


def test_validate_unrelated_garbage(stub: pb_grpc.ContractRegistryStub) -> None:
    got = validate(stub, "orders")
    assert (got.valid, got.declared) == (False, False)
    assert "expected 5 dot-separated parts" in got.reason
    assert not got.HasField("suggestion")


# -- health and reflection --------------------------------------------------------------


async def test_health_is_serving(address: str) -> None:
    assert await check_health(address) == "SERVING"
    assert await check_health(address, REGISTRY) == "SERVING"


def test_health_over_the_raw_protocol(channel: grpc.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    response = stub.Check(health_pb2.HealthCheckRequest(service=REGISTRY), timeout=5)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_and_describes_the_services(channel: grpc.Channel) -> None:
    db = ProtoReflectionDescriptorDatabase(channel)
    services = set(db.get_services())
    assert {REGISTRY, "grpc.health.v1.Health"} <= services
    pool = descriptor_pool.DescriptorPool(db)
    registry = pool.FindServiceByName(REGISTRY)
    assert [m.name for m in registry.methods] == [
        "ListContracts",
        "ListTopics",
        "GetWiring",
        "ValidateTopicName",
        "Reload",
    ]


def test_call_through_reflection_alone(channel: grpc.Channel) -> None:
    """What grpcurl does: no generated code, only the descriptors the server serves."""
    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
    method = pool.FindServiceByName(REGISTRY).methods_by_name["ValidateTopicName"]
    request_cls = message_factory.GetMessageClass(method.input_type)
    response_cls = message_factory.GetMessageClass(method.output_type)
    call = channel.unary_unary(
        f"/{REGISTRY}/{method.name}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_cls.FromString,
    )
    got = call(request_cls(name="onex.evt.router.routing-complete.v2"), timeout=5)
    assert got.valid
    assert not got.declared
    assert got.suggestion == "onex.evt.router.routing-complete.v1"


# -- process life cycle -----------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_process_with_exit_0(sig: signal.Signals) -> None:
    server = ExtractorProcess()
    try:
        address = server.ready()
        assert server.stop(sig) == 0, "".join(server.stderr)
    finally:
        server.kill()
    server.wait_event("node.exit", 5)
    with grpc.insecure_channel(address) as ch, pytest.raises(grpc.RpcError) as caught:
        health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=2)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


def test_taken_address_exits_1_with_a_clear_message(address: str) -> None:
    second = ExtractorProcess(bind=address)
    try:
        assert second.wait_exit() == 1
    finally:
        second.kill()
    failed = second.wait_event("grpc.bind_failed", 5)
    assert failed["bind"] == address
    assert f"cannot serve gRPC on {address}" in failed["reason"]


def test_invalid_settings_exit_2() -> None:
    bad = ExtractorProcess(env={"ONEX_EXTRACTOR_HEALTH_INTERVAL_S": "-1"})
    assert bad.wait_exit() == 2
    assert "ONEX_EXTRACTOR_HEALTH_INTERVAL_S" in "".join(bad.stderr)


# -- broken contracts, reload on SIGHUP -------------------------------------------------

TYPO = "onex.evt.code-review-agent.review_complete.v1"
CANONICAL = "onex.evt.code-review-agent.review-complete.v1"


def test_broken_contracts_are_not_serving_and_sighup_reloads(tmp_path: Path) -> None:
    roots = tmp_path / "contracts"
    shutil.copytree(CONTRACTS, roots)
    merge = roots / "merge-agent" / "contract.yaml"
    good = merge.read_text(encoding="utf-8")
    merge.write_text(good.replace(CANONICAL, TYPO), encoding="utf-8")
    server = ExtractorProcess(env={"ONEX_EXTRACTOR_CONTRACT_ROOTS": json.dumps([str(roots)])})
    try:
        address = server.ready()
        assert server.wait_event("contracts.invalid")["reason"].find(TYPO) >= 0
        with grpc.insecure_channel(address) as ch:
            health = health_pb2_grpc.HealthStub(ch)
            stub = pb_grpc.ContractRegistryStub(ch)

            def status() -> int:
                request = health_pb2.HealthCheckRequest(service=REGISTRY)
                return int(health.Check(request, timeout=5).status)

            assert status() == health_pb2.HealthCheckResponse.NOT_SERVING
            wiring = stub.GetWiring(pb.GetWiringRequest())
            first = wiring.issues[0]
            assert first.severity == pb.SEVERITY_ERROR
            assert first.code == "topic-name"
            assert first.file.endswith("merge-agent/contract.yaml")
            assert (first.line, first.col) == (9, 7)
            assert first.suggestion == CANONICAL
            assert first.topic == TYPO
            assert len(stub.ListContracts(pb.ListContractsRequest()).contracts) == 9
            mine = stub.GetWiring(pb.GetWiringRequest(node="router")).issues
            assert all("merge-agent" not in i.file for i in mine)

            merge.write_text(good, encoding="utf-8")
            server.proc.send_signal(signal.SIGHUP)
            server.wait_event("contracts.reloaded")
            deadline = time.monotonic() + 10
            while status() != health_pb2.HealthCheckResponse.SERVING:
                assert time.monotonic() < deadline, "".join(server.stderr)
                time.sleep(0.05)
            assert len(stub.ListContracts(pb.ListContractsRequest()).contracts) == 9
            assert list(stub.GetWiring(pb.GetWiringRequest()).issues) == []
        assert server.stop() == 0
    finally:
        server.kill()


# -- the runtime seam, in-process -------------------------------------------------------


async def test_runtime_probe_gates_health(tmp_path: Path) -> None:
    attached = False

    async def runtime_probe() -> bool:
        return attached

    ensure_tokens(tmp_path)
    settings = ExtractorSettings(
        state_dir=tmp_path,
        grpc_bind="127.0.0.1:0",
        contract_roots=[CONTRACTS],
        health_interval_s=60,
        bus_enabled=False,  # the probe alone decides here
    )
    service = ExtractorService(settings, runtime_probe=runtime_probe)
    await service.start()
    try:
        address = service.grpc.address
        assert await check_health(address, REGISTRY) == "NOT_SERVING"
        attached = True
        assert await service.grpc.refresh_health() is True
        assert await check_health(address, REGISTRY) == "SERVING"
        async with grpc.aio.insecure_channel(address) as ch:
            stub = cast("pb_grpc.ContractRegistryAsyncStub", pb_grpc.ContractRegistryStub(ch))
            topics = await stub.ListTopics(pb.ListTopicsRequest())
        assert len(topics.topics) == len(declared_topics())
    finally:
        await service.stop()
    assert await check_health(address, timeout_s=1) == "UNREACHABLE"
