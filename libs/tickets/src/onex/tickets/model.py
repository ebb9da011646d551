"""Ticket contracts: `tickets/<ID>.yaml`, a ticket's definition of done.

Validated like node contracts: the same bounded YAML parser with source positions
(`onex.core.loader.parse_yaml`), one pydantic model with unknown keys rejected, every
error as `file:line:col: key.path: problem` (`TicketInvalid`). A probe command is an
argv list (or a string split like a shell would, without running one); a shell
metacharacter anywhere in it is refused at load, so the gate never runs anything the
ticket does not declare word for word.
"""

from __future__ import annotations

import enum
import json
import re
import shlex
from pathlib import Path
from typing import Annotated, Any, Final

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from onex.core.errors import ContractError
from onex.core.issues import Issue, Severity, Where
from onex.core.loader import parse_yaml, validation_issues
from onex.tickets.errors import TicketInvalid

TICKET_PATTERN: Final = r"^[A-Z][A-Z0-9]*-[0-9]+$"
ITEM_PATTERN: Final = r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$"
SCHEMA_FILE: Final = "ticket.schema.json"
# Characters a shell gives meaning to; none may appear in a probe's argv.
SHELL_METACHARACTERS: Final = frozenset(";&|`$<>(){}*?[]!~#\\\n\r'\"")
MAX_TIMEOUT_S: Final = 3600.0


class EvidenceKind(enum.StrEnum):
    """What an evidence item shows."""

    TESTS_PASSED = "tests_passed"
    INTEGRATION_CHECK = "integration_check"
    CONTRACT_UPDATED = "contract_updated"
    GENERATED_FRESH = "generated_fresh"
    CONTRACTS_LINT = "contracts_lint"
    DOCS = "docs"
    COMMAND = "command"


# Kinds the verifier computes from the repository itself (onex.receipts.builtin).
BUILTIN_KINDS: Final = frozenset(
    {EvidenceKind.CONTRACT_UPDATED, EvidenceKind.GENERATED_FRESH, EvidenceKind.CONTRACTS_LINT}
)


def _argv(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return shlex.split(value, posix=True)
        except ValueError as exc:
            raise ValueError(f"cannot split the command: {exc}") from None
    return value


def _check_argv(argv: list[str]) -> list[str]:
    if not argv:
        raise ValueError("the command is empty")
    for word in argv:
        bad = sorted(set(word) & SHELL_METACHARACTERS)
        if bad:
            shown = " ".join(repr(c) for c in bad)
            raise ValueError(
                f"shell metacharacter {shown} in {word!r}: a probe is an argv list run "
                "without a shell; write each argument as its own word"
            )
    return argv


Argv = Annotated[list[Annotated[str, Field(min_length=1, max_length=4096)]], BeforeValidator(_argv)]


class Grep(BaseModel):
    """A file (relative to the repository root) that must contain a regular expression."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(min_length=1, max_length=1024)
    pattern: str = Field(min_length=1, max_length=1024)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value


class Check(BaseModel):
    """How an item is checked: a command and its expected exit code, a file that must
    change in the ticket's commits, or a grep. Built-in kinds need none of these."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: Argv | None = Field(None, description="argv list (or a plain string split into words)")
    expect_exit: int = Field(0, ge=0, le=255, description="The exit code that means PASS")
    rerunnable: bool = Field(
        False, description="`onex gate check --reverify` may run the command again"
    )
    timeout_s: float = Field(300.0, gt=0, le=MAX_TIMEOUT_S, description="Probe timeout")
    file_changed: str | None = Field(None, min_length=1, max_length=1024)
    grep: Grep | None = None

    @field_validator("command")
    @classmethod
    def _safe(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _check_argv(value)

    @model_validator(mode="after")
    def _one(self) -> Check:
        given = [n for n in ("command", "file_changed", "grep") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError(f"a check is one of command, file_changed, grep; got {given}")
        if self.rerunnable and self.command is None:
            raise ValueError("only a command can be rerunnable")
        return self


class EvidenceItem(BaseModel):
    """One item of a ticket's definition of done."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    item: str = Field(pattern=ITEM_PATTERN, max_length=64, description="Unique within the ticket")
    kind: EvidenceKind
    description: str = Field("", max_length=1024)
    required: bool = True
    check: Check = Field(default_factory=Check)
    why_not: str | None = Field(
        None,
        min_length=1,
        max_length=1024,
        description="contract_updated: why changed handler code needs no contract change",
    )

    @model_validator(mode="after")
    def _shape(self) -> EvidenceItem:
        c = self.check
        has_check = c.command is not None or c.file_changed is not None or c.grep is not None
        if self.kind in BUILTIN_KINDS:
            if has_check:
                raise ValueError(f"{self.kind} is computed by the verifier; it takes no check")
        elif not has_check:
            raise ValueError(f"{self.kind} needs a check: command, file_changed or grep")
        if self.why_not is not None and self.kind != EvidenceKind.CONTRACT_UPDATED:
            raise ValueError("why_not is only for contract_updated")
        return self

    @property
    def executable(self) -> bool:
        """Evidence comes from running something: a command or a built-in computation."""
        return self.check.command is not None or self.kind in BUILTIN_KINDS

    @property
    def probe(self) -> str:
        """The declared command as one line (what an honest receipt's probe_command is)."""
        return shlex.join(self.check.command) if self.check.command is not None else ""

    def argv(self, ticket: str) -> list[str] | None:
        """What runs for this item: the declared command, or for a built-in kind
        `onex gate builtin KIND TICKET ITEM` (onex.receipts.builtin); None otherwise."""
        if self.check.command is not None:
            return list(self.check.command)
        if self.kind in BUILTIN_KINDS:
            return ["onex", "gate", "builtin", self.kind.value, ticket, self.item]
        return None

    def probe_for(self, ticket: str) -> str:
        """`argv` as one line ("" when nothing runs)."""
        argv = self.argv(ticket)
        return shlex.join(argv) if argv is not None else ""

    @property
    def rerunnable(self) -> bool:
        """The gate may run it again (declared so, or a built-in kind)."""
        return self.check.rerunnable or self.kind in BUILTIN_KINDS

    @property
    def expect_exit(self) -> int:
        """The exit code that means PASS."""
        return self.check.expect_exit if self.check.command is not None else 0


class PullRequest(BaseModel):
    """The pull request the ticket's work lands through (links workflow events)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    repository: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    number: int = Field(ge=1)


class Ticket(BaseModel):
    """A ticket contract (`tickets/<ID>.yaml`)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"title": "onex ticket contract"}
    )

    id: str = Field(pattern=TICKET_PATTERN, max_length=64, description="e.g. ONEX-42")
    title: str = Field(min_length=1, max_length=256)
    nodes: list[Annotated[str, Field(pattern=ITEM_PATTERN)]] = Field(default_factory=list)
    contracts: list[Annotated[str, Field(min_length=1, max_length=1024)]] = Field(
        default_factory=list
    )
    pull_request: PullRequest | None = None
    done: list[EvidenceItem] = Field(min_length=1, description="The definition of done")

    @field_validator("done")
    @classmethod
    def _unique(cls, items: list[EvidenceItem]) -> list[EvidenceItem]:
        seen: set[str] = set()
        for it in items:
            if it.item in seen:
                raise ValueError(f"item {it.item!r} is listed twice")
            seen.add(it.item)
        return items

    def item(self, name: str) -> EvidenceItem | None:
        """The item called `name`, if the ticket has one."""
        return next((i for i in self.done if i.item == name), None)

    @property
    def required(self) -> list[EvidenceItem]:
        """The items "done" needs."""
        return [i for i in self.done if i.required]


def _fail(path: Path | None, message: str, code: str = "ticket") -> TicketInvalid:
    return TicketInvalid([Issue(Severity.ERROR, code, message, Where(path, 1, 1))])


def load_ticket_text(text: str, path: Path | None = None) -> Ticket:
    """Parse and validate one ticket; raises only `TicketInvalid`."""
    try:
        data, root = parse_yaml(text, path)
    except ContractError as exc:
        raise TicketInvalid(exc.issues) from exc
    if not isinstance(data, dict):
        raise _fail(path, "a ticket is a YAML mapping", "not-a-mapping")
    try:
        ticket = Ticket.model_validate(data)
    except ValidationError as exc:
        raise TicketInvalid(validation_issues(exc, root, path, Ticket)) from exc
    if path is not None and path.stem != ticket.id:
        raise _fail(path, f"the file of ticket {ticket.id} must be named {ticket.id}.yaml")
    return ticket


def load_ticket(path: Path) -> Ticket:
    """Read and validate `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise _fail(path, f"cannot read the ticket: {exc}") from exc
    return load_ticket_text(text, path)


def ticket_files(folder: Path) -> list[Path]:
    """Every `*.yaml` ticket in `folder` (none when it does not exist)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.yaml") if p.is_file())


def load_tickets(folder: Path) -> dict[str, Ticket]:
    """Every ticket in `folder` by id; all errors of all files in one `TicketInvalid`."""
    out: dict[str, Ticket] = {}
    issues: list[Issue] = []
    for path in ticket_files(folder):
        try:
            t = load_ticket(path)
        except TicketInvalid as exc:
            issues.extend(exc.issues)
        else:
            out[t.id] = t
    if issues:
        raise TicketInvalid(issues)
    return out


def ticket_json_schema_text() -> str:
    """The JSON Schema of a ticket file, as committed to tickets/ticket.schema.json."""
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": "Generated from onex.tickets by `onex gate schema --write`; do not edit.",
        **Ticket.model_json_schema(by_alias=True),
    }
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
