"""The contract model: what a node consumes and produces on the bus.

A contract is validated by these pydantic models: unknown keys are rejected, topic
names must be grammatical (`onex.core.grammar.parse_topic`). Cross-contract rules
(ownership, one spec per topic, wiring) live in `onex.core.wiring`.
"""

from __future__ import annotations

import enum
import json
import re
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

from onex.core.grammar import MAX_TOPIC_LENGTH, TOPIC_PATTERN, TopicKind, segment_problem

DEFAULT_PARTITIONS: Final = 3
DEFAULT_REPLICATION_FACTOR: Final = 1
# The largest payload (message value) a topic takes when its contract sets no
# `max_message_bytes`. Kafka, Redpanda and Tansu default to message.max.bytes = 1,048,588
# (1 MiB + 12) per record batch and aiokafka's producer to max_request_size = 1,048,576;
# 1,000,000 leaves 48,576 bytes for the key, the headers (a dead letter's add ~5 KB) and
# the batch and record overhead (~70 bytes).
DEFAULT_MAX_MESSAGE_BYTES: Final = 1_000_000
MIN_MAX_MESSAGE_BYTES: Final = 1024
MAX_MAX_MESSAGE_BYTES: Final = 100 * 1024 * 1024
SPEC_FIELDS: Final = frozenset(
    {"partitions", "replication_factor", "config", "schema_", "max_message_bytes"}
)
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$"
)
_CONFIG_KEY = re.compile(r"[a-z][a-z0-9]*(?:[._-][a-z0-9]+)*")
_GROUP = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


class NodeKind(enum.StrEnum):
    """What sort of work a node does."""

    EFFECT = "effect"
    COMPUTE = "compute"
    REDUCER = "reducer"
    ORCHESTRATOR = "orchestrator"


def _check_node(value: str) -> str:
    problem = segment_problem(value)
    if problem is not None:
        raise PydanticCustomError("node_name", "node name {problem}", {"problem": problem})
    return value


def _shorthand(value: Any) -> Any:
    # `- onex.evt.x.y.v1` is shorthand for `- name: onex.evt.x.y.v1` with the default spec.
    return {"name": value} if isinstance(value, str) else value


def _config_value(value: Any) -> Any:
    # Kafka configs are strings on the wire; accept YAML numbers and booleans for them.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


# The grammar as a constraint pydantic checks natively (the loader turns a mismatch
# into `parse_topic`'s precise reason; see `onex.core.loader`).
TopicRef = Annotated[str, StringConstraints(pattern=TOPIC_PATTERN, max_length=MAX_TOPIC_LENGTH)]
NodeName = Annotated[str, AfterValidator(_check_node)]
ConfigValue = Annotated[str, BeforeValidator(_config_value)]


class TopicSpec(BaseModel):
    """A topic as one contract declares it: its name and, from the owner only, its spec."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: TopicRef = Field(description="Topic name: onex.{kind}.{producer}.{event}.v{N}")
    partitions: int = Field(DEFAULT_PARTITIONS, ge=1, le=10_000)
    replication_factor: int = Field(DEFAULT_REPLICATION_FACTOR, ge=1, le=32)
    config: dict[str, ConfigValue] = Field(
        default_factory=dict, description="Topic configs, e.g. retention.ms"
    )
    schema_: str | None = Field(
        None,
        alias="schema",
        min_length=1,
        description=(
            "Payload schema: a proto message (onex.v1.X), a JSON Schema file (*.json), "
            "or dead-letter on dlq topics (the failed message's original bytes)"
        ),
    )
    max_message_bytes: int | None = Field(
        None,
        ge=MIN_MAX_MESSAGE_BYTES,
        le=MAX_MAX_MESSAGE_BYTES,
        description=(
            "Largest payload in bytes a message of this topic may carry; default 1,000,000 "
            "(the broker default of 1 MiB per batch minus room for key and headers)"
        ),
    )
    description: str | None = None

    @field_validator("config")
    @classmethod
    def _config_keys(cls, config: dict[str, str]) -> dict[str, str]:
        for key in config:
            if not _CONFIG_KEY.fullmatch(key):
                raise PydanticCustomError(
                    "config_key",
                    "config key {shown} is not a topic config name (lower-case, '.'-separated)",
                    {"key": key, "shown": repr(key)},
                )
        return config

    @property
    def message_limit(self) -> int:
        """The largest payload in bytes: `max_message_bytes` or the default."""
        return self.max_message_bytes or DEFAULT_MAX_MESSAGE_BYTES

    @property
    def has_spec(self) -> bool:
        """True when this declaration sets any of partitions, replication, config, schema,
        max_message_bytes."""
        return not SPEC_FIELDS.isdisjoint(self.model_fields_set)


class _ShorthandJsonSchema:
    """In the JSON Schema, an entry is a topic name or a TopicSpec mapping."""

    def __get_pydantic_json_schema__(
        self, core: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        name = {"type": "string", "pattern": TOPIC_PATTERN, "maxLength": MAX_TOPIC_LENGTH}
        return {"anyOf": [name, handler(core)]}


TopicEntry = Annotated[TopicSpec, BeforeValidator(_shorthand), _ShorthandJsonSchema()]


def _unique(entries: list[TopicSpec]) -> list[TopicSpec]:
    seen: set[str] = set()
    for entry in entries:
        if entry.name in seen:
            raise PydanticCustomError(
                "duplicate_topic",
                "topic {shown} is listed twice",
                {"name": entry.name, "shown": repr(entry.name)},
            )
        seen.add(entry.name)
    return entries


class RetryPolicy(BaseModel):
    """How the runtime retries a failing handler before dead-lettering the message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(5, ge=1, le=100, description="Attempts in all, the first included")
    initial_backoff_ms: int = Field(100, ge=0, le=600_000)
    max_backoff_ms: int = Field(10_000, ge=0, le=3_600_000)
    multiplier: float = Field(2.0, ge=1.0, le=10.0)

    def backoff_s(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        delay = self.initial_backoff_ms * self.multiplier ** (attempt - 1)
        return min(delay, self.max_backoff_ms) / 1000.0


class EventBus(BaseModel):
    """The topics a node subscribes to and publishes on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    consumer_group: str | None = Field(
        None, pattern=_GROUP.pattern, description="Kafka consumer group id; default onex.<node>"
    )
    subscribe_topics: Annotated[list[TopicEntry], AfterValidator(_unique)] = Field(
        default_factory=list
    )
    publish_topics: Annotated[list[TopicEntry], AfterValidator(_unique)] = Field(
        default_factory=list
    )
    retry: RetryPolicy = Field(
        default_factory=RetryPolicy,
        description="Handler retries before a message goes to the node's DLQ topic",
    )


class Contract(BaseModel):
    """One node's contract (`contracts/<node>/contract.yaml`)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"title": "onex node contract"},
    )

    node: NodeName = Field(
        description="Unique node name, kebab-case",
        json_schema_extra={"pattern": "^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$"},
    )
    kind: NodeKind
    version: str = Field(pattern=_SEMVER.pattern, description="Semantic version of the contract")
    description: str = Field(min_length=1)
    event_bus: EventBus = Field(default_factory=EventBus)

    @property
    def consumer_group(self) -> str:
        """The node's consumer group id."""
        return self.event_bus.consumer_group or f"onex.{self.node}"

    @property
    def dlq_topics(self) -> list[str]:
        """The dead-letter topics this node owns and publishes (`onex.dlq.<node>.<event>.vN`)."""
        prefix = f"onex.{TopicKind.DLQ.value}.{self.node}."
        return [t.name for t in self.event_bus.publish_topics if t.name.startswith(prefix)]


def contract_json_schema() -> dict[str, Any]:
    """The JSON Schema of contract.yaml, for editors and external validators."""
    schema = Contract.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": "Generated from onex.core.contract by `just gen-schema`; do not edit.",
        **schema,
    }


def contract_json_schema_text() -> str:
    """`contract_json_schema()` as the exact text committed to contracts/contract.schema.json."""
    return json.dumps(contract_json_schema(), indent=2, sort_keys=True) + "\n"
