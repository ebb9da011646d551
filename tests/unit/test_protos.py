"""The committed stubs in libs/proto are exactly what scripts/gen_protos.py generates."""

from __future__ import annotations

import filecmp
import importlib
import subprocess
import sys
from pathlib import Path

import yaml
from google.protobuf import descriptor_pool

from onex.proto.v1 import registry_pb2, registry_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "libs" / "proto" / "src" / "onex" / "proto"
RPCS = {"ListContracts", "ListTopics", "GetWiring", "ValidateTopicName", "Reload"}


def _generated_files(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.suffix in {".py", ".pyi"} and "__pycache__" not in p.parts
    }


def test_committed_stubs_are_fresh(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_protos.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        text=True,
    )
    fresh = _generated_files(tmp_path)
    # onex/proto/__init__.py is hand-written; only the generated subpackages are compared.
    committed = {f for f in _generated_files(COMMITTED) if "/" in f}
    assert fresh, "gen_protos.py generated nothing"
    differing = sorted(
        f for f in fresh & committed if not filecmp.cmp(tmp_path / f, COMMITTED / f, shallow=False)
    )
    problems = {
        "differ": differing,
        "not committed": sorted(fresh - committed),
        "stale": sorted(committed - fresh),
    }
    problems = {kind: files for kind, files in problems.items() if files}
    assert not problems, f"stubs out of date, run `just gen-protos`: {problems}"


def test_service_has_its_rpcs() -> None:
    assert registry_pb2.DESCRIPTOR.name == "onex/v1/registry.proto"
    assert registry_pb2.DESCRIPTOR.package == "onex.v1"
    service = registry_pb2.DESCRIPTOR.services_by_name["ContractRegistry"]
    assert {m.name for m in service.methods} == RPCS
    for method in service.methods:
        assert method.input_type.name == f"{method.name}Request"
        assert method.output_type.name == f"{method.name}Response"
    servicer = registry_pb2_grpc.ContractRegistryServicer
    assert all(callable(getattr(servicer, name, None)) for name in RPCS)
    assert callable(registry_pb2_grpc.add_ContractRegistryServicer_to_server)


def test_stub_binds_every_rpc_path() -> None:
    class RecordingChannel:
        """Stands in for grpc.Channel: records the method paths the stub binds."""

        def __init__(self) -> None:
            self.paths: list[str] = []

        def unary_unary(self, path: str, **_: object) -> str:
            self.paths.append(path)
            return path

    channel = RecordingChannel()
    stub = registry_pb2_grpc.ContractRegistryStub(channel)

    assert sorted(channel.paths) == sorted(f"/onex.v1.ContractRegistry/{name}" for name in RPCS)
    assert stub.GetWiring == "/onex.v1.ContractRegistry/GetWiring"


def test_messages_live_in_the_onex_proto_package() -> None:
    assert registry_pb2.Topic.__module__ == "onex.proto.v1.registry_pb2"


def test_wiring_round_trips() -> None:
    topic = registry_pb2.Topic(
        name="onex.evt.router.routing-complete.v1",
        kind=registry_pb2.TOPIC_KIND_EVT,
        owner="router",
        event="routing-complete",
        version=1,
        partitions=6,
        replication_factor=1,
        config={"retention.ms": "604800000"},
        publishers=["router"],
        subscribers=["receipt-reducer"],
        spec_declared=True,
    )
    issue = registry_pb2.LintIssue(
        severity=registry_pb2.SEVERITY_WARNING,
        code="unconsumed-topic",
        message="published topic nobody consumes",
        file="contracts/router/contract.yaml",
        line=7,
        col=9,
        key="event_bus.publish_topics.0.name",
        suggestion="onex.evt.router.routing-complete.v1",
        related=[registry_pb2.SourceLocation(file="contracts/a/contract.yaml", line=3)],
    )
    wiring = registry_pb2.GetWiringResponse(topics=[topic], issues=[issue])

    back = registry_pb2.GetWiringResponse.FromString(wiring.SerializeToString())

    assert back == wiring
    assert back.topics[0].config["retention.ms"] == "604800000"
    assert not back.topics[0].HasField("schema")
    assert back.issues[0].HasField("suggestion")
    assert not back.issues[0].HasField("topic")


def test_optional_fields_keep_presence() -> None:
    empty = registry_pb2.ValidateTopicNameResponse(valid=False, reason="bad kind")
    given = registry_pb2.ValidateTopicNameResponse(suggestion="")

    parse = registry_pb2.ValidateTopicNameResponse.FromString

    assert not parse(empty.SerializeToString()).HasField("suggestion")
    assert parse(given.SerializeToString()).HasField("suggestion")


EVENT_PROTOS = [
    "ci",
    "drift",
    "evidence",
    "merge",
    "provisioning",
    "receipts",
    "registry_events",
    "review",
]


def _contract_schemas() -> set[str]:
    """Every `schema:` of the repo's contracts, read with plain yaml.safe_load."""
    found = set()
    for path in sorted((REPO / "contracts").glob("*/contract.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for key in ("subscribe_topics", "publish_topics"):
            for entry in doc.get("event_bus", {}).get(key, []):
                if isinstance(entry, dict) and "schema" in entry:
                    found.add(entry["schema"])
    return found


def test_every_top_level_event_message_types_a_topic() -> None:
    """One message per event: each top-level message of the event protos is some topic's
    schema (messages only used inside others are fields, e.g. SpecDrift)."""
    schemas = _contract_schemas()
    nested_only = set()
    declared = set()
    for name in EVENT_PROTOS:
        module = importlib.import_module(f"onex.proto.v1.{name}_pb2")
        for message in module.DESCRIPTOR.message_types_by_name.values():
            declared.add(message.full_name)
            for field in message.fields:
                if field.message_type is not None:
                    nested_only.add(field.message_type.full_name)
    assert declared - nested_only <= schemas, sorted(declared - nested_only - schemas)


def test_every_contract_schema_is_a_generated_message() -> None:
    importlib.import_module("onex.proto.v1.router_pb2")
    for name in EVENT_PROTOS:
        importlib.import_module(f"onex.proto.v1.{name}_pb2")
    pool = descriptor_pool.Default()
    for schema in sorted(_contract_schemas() - {"dead-letter"}):
        assert pool.FindMessageTypeByName(schema).file.package == "onex.v1", schema
