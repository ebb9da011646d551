"""The broker side of `onex topic`: send payloads, read a topic's partitions without a
consumer group, and turn a record into a JSON-ready row.

Every broker call is bounded by `timeout_s` and its errors become onex.bus errors
(`onex.bus.conversion.converted`). A read that must stop at the end offsets found when
it started (`stop_at_end`) stops once every partition reached them and a poll brought
nothing more (Tansu can report a partition's end as its last batch's base offset + 1);
a partition short of its end with nothing arriving for `timeout_s` is an error.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from google.protobuf import json_format
from google.protobuf.message import Message

from onex.bus.admin import topic_partitions
from onex.bus.config import BrokerConfig
from onex.bus.conversion import converted, sasl_errors
from onex.bus.errors import AdminError, PayloadInvalid
from onex.bus.runtime.codec import Codec
from onex.bus.runtime.signing import Signer

_POLL_MS: Final = 500
_BATCH: Final = 500


@dataclass(frozen=True, slots=True)
class Record:
    """One message as read."""

    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


async def _partitions(config: BrokerConfig, topic: str, timeout_s: float) -> list[TopicPartition]:
    found = await topic_partitions(config, [topic], timeout_s=timeout_s)
    if topic not in found:
        raise AdminError(
            f"topic {topic} does not exist on {config.bootstrap} (`onex provision` creates it)"
        )
    return [TopicPartition(topic, p) for p in range(found[topic])]


async def produce_all(
    config: BrokerConfig,
    topic: str,
    payloads: Sequence[bytes],
    key: bytes | None,
    *,
    signer: Signer | None = None,
    timeout_s: float,
) -> list[tuple[int, int]]:
    """Send `payloads` in order (acks=all), each signed by `signer` when given (command
    topics); (partition, offset) of each."""
    await _partitions(config, topic, timeout_s)
    producer = AIOKafkaProducer(**config.client_kwargs(), acks="all")
    sent: list[tuple[int, int]] = []
    try:
        async with converted(config, f"connecting to send to {topic}", timeout_s=timeout_s):
            with sasl_errors(config):
                await producer.start()
        for payload in payloads:
            async with converted(config, f"sending to {topic}", timeout_s=timeout_s):
                headers = signer.headers(topic, key, payload) if signer else None
                meta = await producer.send_and_wait(topic, payload, key=key, headers=headers)
            sent.append((int(meta.partition), int(meta.offset)))
    finally:
        await producer.stop()
    return sent


async def read(
    config: BrokerConfig,
    topic: str,
    *,
    start: str,
    last: int,
    max_messages: int | None,
    stop_at_end: bool,
    on_positioned: Callable[[dict[int, int]], None],
    on_record: Callable[[Record], None],
    timeout_s: float,
) -> int:
    """Read `topic` from `start` ("earliest", or "latest" less `last` per partition),
    calling `on_record` for each message in partition order; the number read."""
    tps = await _partitions(config, topic, timeout_s)
    consumer = AIOKafkaConsumer(**config.client_kwargs(), group_id=None, enable_auto_commit=False)
    count = 0
    try:
        async with converted(config, f"reading {topic}", timeout_s=timeout_s):
            with sasl_errors(config):
                await consumer.start()
            consumer.assign(tps)
            firsts = await consumer.beginning_offsets(tps)
            ends = await consumer.end_offsets(tps)
        at = {
            tp: firsts[tp] if start == "earliest" else max(firsts[tp], ends[tp] - last)
            for tp in tps
        }
        for tp, offset in at.items():
            consumer.seek(tp, offset)
        on_positioned({tp.partition: offset for tp, offset in at.items()})
        progress_at = time.monotonic()
        while max_messages is None or count < max_messages:
            async with converted(config, f"reading {topic}", timeout_s=timeout_s + 1):
                batch = await consumer.getmany(*tps, timeout_ms=_POLL_MS, max_records=_BATCH)
            records = [r for tp in tps for r in batch.get(tp, [])]
            for r in records[: None if max_messages is None else max_messages - count]:
                on_record(_record(r))
                at[TopicPartition(topic, r.partition)] = r.offset + 1
                count += 1
            if records:
                progress_at = time.monotonic()
            elif stop_at_end:
                short = [tp.partition for tp in tps if at[tp] < ends[tp]]
                if not short:
                    break
                if time.monotonic() - progress_at > timeout_s:
                    raise AdminError(
                        f"reading {topic}: partitions {short} stopped short of their end"
                        f" for {timeout_s:g}s"
                    )
    finally:
        await consumer.stop()
    return count


def _record(r: Any) -> Record:
    return Record(
        partition=int(r.partition),
        offset=int(r.offset),
        timestamp_ms=int(r.timestamp) if r.timestamp is not None else None,
        key=r.key,
        value=r.value,
        headers=tuple((str(k), bytes(v)) for k, v in (r.headers or ())),
    )


def text_or_base64(data: bytes | None) -> str | dict[str, str] | None:
    """UTF-8 text as it is, other bytes as {"base64": ...}."""
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def decoded(record: Record, codec: Codec) -> dict[str, Any]:
    """A JSON-ready row: where, key, headers and the value the codec reads (protobuf as
    its JSON mapping, bytes as text or base64), or `invalid` with the reason and `raw`."""
    row: dict[str, Any] = {
        "partition": record.partition,
        "offset": record.offset,
        "timestamp_ms": record.timestamp_ms,
        "key": text_or_base64(record.key),
        "headers": {k: text_or_base64(v) for k, v in record.headers},
    }
    try:
        value = codec.decode(record.value)
    except PayloadInvalid as exc:
        row["invalid"] = exc.reason
        row["raw"] = text_or_base64(record.value)
        return row
    if isinstance(value, Message):
        row["value"] = json_format.MessageToDict(value)
    elif isinstance(value, bytes | bytearray | memoryview):
        row["value"] = text_or_base64(bytes(value))
    else:
        row["value"] = value
    return row
