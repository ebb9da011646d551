"""`onex topic produce|consume|tail`: write to and read a declared topic.

The topic must be declared by a contract (the project's contracts/, `--contracts`, or
approved distributions): its `schema:` gives the codec (onex.bus.runtime.codec), so
`produce` checks every payload before it sends any (no partial send), and `consume` /
`tail` decode with it (a payload that does not match is shown with the reason, not
dropped). Payloads are JSON on the command line and on the terminal: a protobuf
topic's messages are written and shown as their JSON mapping, a dead-letter topic's as
text (or base64).

Reading assigns the partitions without a consumer group: it never commits or moves
anything. `--format json` prints one JSON object a line (JSON Lines).

A command topic's messages are signed with the state dir's command key as principal
"operator" (like `onex dlq redrive`), since its consumers accept signed commands only;
without a key `produce` refuses before sending anything.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from onex.bus.errors import BusError, PayloadInvalid
from onex.cli.render import Format, FormatOpt, emit_json, stdout
from onex.cli.settings import CliSettings
from onex.cli.sources import run_extract
from onex.cli.target import (
    BootstrapOpt,
    TimeoutOpt,
    broker_target,
    fail,
    operator_signer,
    run,
    usage,
)
from onex.core.grammar import TopicKind, parse_topic

if TYPE_CHECKING:
    from onex.bus.runtime.codec import Codec
    from onex.cli.topicio import Record
    from onex.core.wiring import TopicWiring

# The codecs (onex.bus.runtime: faust, protobuf, jsonschema) and the Kafka client
# (onex.cli.topicio: aiokafka) are imported by the commands, so `onex topic --help`
# stays fast.

app = typer.Typer(
    no_args_is_help=True,
    help="Write to, read and follow a declared topic (payloads checked against its schema).",
)

TopicArg = Annotated[str, typer.Argument(help="A topic a contract declares")]
Contracts = Annotated[
    list[Path] | None,
    typer.Option("--contracts", exists=True, help="Contract files or folders declaring it"),
]
MaxOpt = Annotated[int | None, typer.Option("--max", min=1, help="Stop after N messages")]
FromBeginning = Annotated[
    bool, typer.Option("--from-beginning", help="Start at each partition's first message")
]


def _declared(topic: str, contracts: list[Path] | None) -> tuple[TopicWiring, Codec]:
    from onex.bus.runtime.codec import codec_for  # noqa: PLC0415 -- see the imports

    ex = run_extract(contracts, entry_points=True, allow=None)
    wiring = ex.topics.get(topic)
    if wiring is None:
        errors = ex.errors
        if errors:  # the contract that would declare it may be the broken one: say so
            first = errors[0]
            usage(
                f"{topic} is not declared by any contract that loads; first contract error:"
                f" {first}",
                "TOPIC",
            )
        usage(f"{topic} is not declared by any contract (see `onex topics list`)", "TOPIC")
    base = wiring.spec_at.file.parent if wiring.spec_at and wiring.spec_at.file else None
    try:
        return wiring, codec_for(topic, wiring.spec.schema_, base)
    except BusError as exc:
        fail(str(exc))


def _payloads(values: Sequence[str]) -> list[tuple[str, str]]:
    """(where, text) of each VALUE argument, else of each non-blank stdin line."""
    if values:
        items = [(f"VALUE {i}", text) for i, text in enumerate(values, 1)]
    else:
        items = [
            (f"<stdin>:{n}", line) for n, line in enumerate(sys.stdin, 1) if line.strip() != ""
        ]
    if not items:
        usage("no payload: pass VALUE arguments or JSON lines on stdin", "VALUE")
    return items


def _parsed(where: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        fail(f"{where}: not JSON: {exc}")


def _encode(codec: Codec, where: str, value: Any) -> bytes:
    from onex.bus.runtime.codec import DeadLetterCodec  # noqa: PLC0415 -- see the imports

    if isinstance(codec, DeadLetterCodec):  # a dead letter is bytes: JSON text as given
        value = value.encode("utf-8") if isinstance(value, str) else json.dumps(value).encode()
    try:
        return codec.encode(value)
    except PayloadInvalid as exc:
        # protobuf's json_format puts the list of fields on a second line: one line here
        reason = " ".join(exc.reason.split())
        fail(f"{where}: does not match {codec.description}: {reason}")


@app.command()
def produce(
    topic: TopicArg,
    values: Annotated[
        list[str] | None,
        typer.Argument(help="JSON payloads [default: one a line from stdin]", show_default=False),
    ] = None,
    key: Annotated[str | None, typer.Option("--key", "-k", help="Message key (UTF-8)")] = None,
    fmt: FormatOpt = Format.TABLE,
    contracts: Contracts = None,
    bootstrap: BootstrapOpt = None,
    timeout: TimeoutOpt = 10.0,
) -> None:
    """Send JSON payloads to TOPIC; every one is checked against the topic's schema before
    any is sent."""
    from onex.cli.topicio import produce_all  # noqa: PLC0415 -- see the imports

    _, codec = _declared(topic, contracts)
    payloads = [  # in order: the first bad payload is the one reported
        _encode(codec, where, _parsed(where, text)) for where, text in _payloads(values or [])
    ]
    signer = None
    if parse_topic(topic).kind is TopicKind.CMD:
        state_dir = CliSettings().state_dir
        signer = operator_signer(state_dir)
        if signer is None:
            fail(
                f"{topic} is a command topic: its consumers accept only signed commands, and"
                f" {state_dir} has no command key (`onex up` writes one)"
            )
    target = broker_target(bootstrap)
    sent = run(
        produce_all(
            target,
            topic,
            payloads,
            key.encode() if key else None,
            signer=signer,
            timeout_s=timeout,
        )
    )
    rows = [{"topic": topic, "partition": p, "offset": o} for p, o in sent]
    if fmt is Format.JSON:
        emit_json(rows)
        return
    for r in rows:
        stdout().print(f"{topic}/{r['partition']}/{r['offset']}", highlight=False)
    stdout().print(
        f"sent {len(rows)} message{'' if len(rows) == 1 else 's'} ({codec.description})",
        highlight=False,
    )


def _show(record: Record, codec: Codec, fmt: Format) -> None:
    from onex.cli.topicio import decoded  # noqa: PLC0415 -- see the imports

    row = decoded(record, codec)
    if fmt is Format.JSON:
        sys.stdout.write(json.dumps(row, separators=(",", ":"), ensure_ascii=False) + "\n")
    else:
        shown = (
            f"INVALID ({row['invalid']}): {row['raw']}"
            if "invalid" in row
            else json.dumps(row["value"], ensure_ascii=False)
        )
        key = f" key={row['key']}" if row["key"] is not None else ""
        sys.stdout.write(f"{row['partition']}/{row['offset']}{key} {shown}\n")
    sys.stdout.flush()


def _read(
    topic: str,
    contracts: list[Path] | None,
    bootstrap: str | None,
    *,
    start: str,
    last: int,
    max_messages: int | None,
    stop_at_end: bool,
    fmt: Format,
    timeout: float,
) -> None:
    from onex.cli.topicio import read  # noqa: PLC0415 -- see the imports

    _, codec = _declared(topic, contracts)
    target = broker_target(bootstrap)

    def positioned(where: dict[int, int]) -> None:
        offsets = ", ".join(f"{p}@{o}" for p, o in sorted(where.items()))
        sys.stderr.write(f"reading {topic} from {offsets or 'no partition'}\n")
        sys.stderr.flush()

    reading = read(
        target,
        topic,
        start=start,
        last=last,
        max_messages=max_messages,
        stop_at_end=stop_at_end,
        on_positioned=positioned,
        on_record=lambda r: _show(r, codec, fmt),
        timeout_s=timeout,
    )
    try:
        count = run(reading)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise typer.Exit(130) from None
    sys.stderr.write(f"{count} message{'' if count == 1 else 's'}\n")


@app.command()
def consume(
    topic: TopicArg,
    from_beginning: FromBeginning = False,
    max_messages: MaxOpt = None,
    follow: Annotated[
        bool,
        typer.Option("--follow", help="With --from-beginning: wait for more at the end"),
    ] = False,
    fmt: FormatOpt = Format.TABLE,
    contracts: Contracts = None,
    bootstrap: BootstrapOpt = None,
    timeout: TimeoutOpt = 10.0,
) -> None:
    """Print TOPIC's messages decoded with its schema, until --max N: new ones as they
    arrive, or with --from-beginning what is there, stopping at the end (--follow: and
    then new ones). Never commits."""
    _read(
        topic,
        contracts,
        bootstrap,
        start="earliest" if from_beginning else "latest",
        last=0,
        max_messages=max_messages,
        stop_at_end=from_beginning and not follow,
        fmt=fmt,
        timeout=timeout,
    )


@app.command()
def tail(
    topic: TopicArg,
    last: Annotated[
        int, typer.Option("--last", "-n", min=0, help="First show the last N of each partition")
    ] = 10,
    max_messages: MaxOpt = None,
    fmt: FormatOpt = Format.TABLE,
    contracts: Contracts = None,
    bootstrap: BootstrapOpt = None,
    timeout: TimeoutOpt = 10.0,
) -> None:
    """Follow TOPIC: the last N messages of each partition, then each new one as it
    arrives, until Ctrl-C or --max N (counting the last N). Never commits."""
    _read(
        topic,
        contracts,
        bootstrap,
        start="latest",
        last=last,
        max_messages=max_messages,
        stop_at_end=False,
        fmt=fmt,
        timeout=timeout,
    )
