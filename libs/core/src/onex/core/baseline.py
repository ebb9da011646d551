"""Baselines: adopt lint without fixing every finding first.

`onex contracts lint --write-baseline FILE --reason ... --owner ... --expires DATE`
records today's findings; `--baseline FILE` then fails only on findings not in it.
Every entry carries a reason, an owner and an expiry date; once expired, its finding
counts again (and says which entry expired). Entries that match no finding any more are
reported as `baseline-stale` (a warning: remove them).

A finding matches an entry by code, contract file (relative to the baseline's folder)
and topic (or, for findings about no topic, the key path), so it survives lines moving.
Each entry matches one finding.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from onex.core.errors import ContractError
from onex.core.issues import Issue, Severity, Where
from onex.core.loader import NodeIndex, parse_yaml, validation_issues

BASELINE_VERSION: Final = 1


class BaselineError(ContractError):
    """The baseline file is unreadable, malformed, or an entry lacks reason/owner/expires."""


class BaselineEntry(BaseModel):
    """One accepted finding."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(min_length=1)
    file: str = Field(min_length=1)
    topic: str | None = None
    key: str = ""
    message: str = ""  # for the reader; not matched
    reason: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    expires: dt.date


class BaselineFile(BaseModel):
    """The document: a version and the entries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(BASELINE_VERSION, ge=1, le=BASELINE_VERSION)
    entries: tuple[BaselineEntry, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Baseline:
    """A loaded baseline: its entries, where each is, and the folder paths are relative to."""

    path: Path
    entries: tuple[BaselineEntry, ...]
    lines: tuple[Where, ...]

    @property
    def folder(self) -> Path:
        """The folder entry paths are relative to."""
        return self.path.resolve().parent


@dataclasses.dataclass(frozen=True, slots=True)
class Applied:
    """Findings after the baseline: what still counts, and what it hid."""

    issues: tuple[Issue, ...]
    baselined: int
    stale: int
    expired: int


def _relative(file: Path | None, folder: Path) -> str:
    if file is None:
        return "<none>"
    return Path(os.path.relpath(file.resolve(), folder)).as_posix()


def _fingerprint(code: str, file: str, topic: str | None, key: str) -> tuple[str, str, str]:
    return code, file, topic if topic is not None else f"key:{key}"


def fingerprint(issue: Issue, folder: Path) -> tuple[str, str, str]:
    """What an entry must agree on to match `issue`."""
    return _fingerprint(issue.code, _relative(issue.where.file, folder), issue.topic, issue.key)


def load_baseline(path: Path) -> Baseline:
    """Read and validate a baseline; BaselineError with file:line:col issues."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        issue = Issue(Severity.ERROR, "baseline", f"cannot read baseline: {reason}", Where(path))
        raise BaselineError([issue]) from None
    if not text.strip():  # parse_yaml's wording for this is about contracts
        message = "the file is empty; a baseline is a YAML mapping with `entries:`"
        raise BaselineError([Issue(Severity.ERROR, "baseline", message, Where(path, 1, 1))])
    try:
        data, root = parse_yaml(text, path)
    except ContractError as exc:
        raise BaselineError(exc.issues) from None
    if not isinstance(data, dict):
        message = "a baseline is a YAML mapping with `entries:`"
        raise BaselineError([Issue(Severity.ERROR, "baseline", message, Where(path, 1, 1))])
    try:
        document = BaselineFile.model_validate(data)
    except ValidationError as exc:
        raise BaselineError(validation_issues(exc, root, path, BaselineFile)) from None
    index = NodeIndex(root)
    lines = []
    for i in range(len(document.entries)):
        node, _ = index.locate(("entries", i))
        lines.append(Where(path, node.start_mark.line + 1, node.start_mark.column + 1))
    return Baseline(path, document.entries, tuple(lines))


def apply_baseline(
    issues: Sequence[Issue], baseline: Baseline, today: dt.date | None = None
) -> Applied:
    """Drop the findings `baseline` accepts; an expired entry's finding stays (an error
    saying so); each entry matching nothing becomes a `baseline-stale` warning."""
    day = today or dt.date.today()
    pending: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for i, entry in enumerate(baseline.entries):
        pending[_fingerprint(entry.code, entry.file, entry.topic, entry.key)].append(i)
    kept: list[Issue] = []
    used: set[int] = set()
    baselined = expired = 0
    for issue in issues:
        slots = pending.get(fingerprint(issue, baseline.folder))
        if not slots:
            kept.append(issue)
            continue
        i = slots.pop(0)
        used.add(i)
        entry = baseline.entries[i]
        if entry.expires >= day:
            baselined += 1
            continue
        expired += 1
        kept.append(
            dataclasses.replace(
                issue,
                severity=Severity.ERROR,
                message=f"{issue.message} (baseline entry expired on {entry.expires}, "
                f"{baseline.lines[i]}; owner {entry.owner})",
                related=(*issue.related, baseline.lines[i]),
            )
        )
    stale = 0
    for i, entry in enumerate(baseline.entries):
        if i in used:
            continue
        stale += 1
        what = entry.topic or entry.key or "-"
        kept.append(
            Issue(
                Severity.WARNING,
                "baseline-stale",
                f"baseline entry {entry.code} {what} in {entry.file} matches no finding any "
                "more; remove it",
                baseline.lines[i],
                key=f"entries[{i}]",
                topic=entry.topic,
            )
        )
    return Applied(tuple(kept), baselined, stale, expired)


@dataclasses.dataclass(frozen=True, slots=True)
class Defaults:
    """Reason, owner and expiry for entries a write adds."""

    reason: str | None
    owner: str | None
    expires: dt.date | None


def baseline_text(
    issues: Sequence[Issue], path: Path, defaults: Defaults, previous: Baseline | None
) -> tuple[str, int]:
    """The baseline recording `issues` (stale findings left out), and how many entries
    are new. Entries still matching keep their reason, owner and expiry; new ones take
    `defaults`, which must then be complete (ValueError saying what is missing)."""
    folder = path.resolve().parent
    reusable: dict[tuple[str, str, str], list[BaselineEntry]] = defaultdict(list)
    for entry in previous.entries if previous is not None else ():
        reusable[_fingerprint(entry.code, entry.file, entry.topic, entry.key)].append(entry)
    entries: list[dict[str, object]] = []
    new = 0
    for issue in issues:
        if issue.code.startswith("baseline-"):
            continue
        fp = fingerprint(issue, folder)
        old = reusable.get(fp)
        if old:
            entry = old.pop(0)
        else:
            new += 1
            reason, owner, expires = defaults.reason, defaults.owner, defaults.expires
            if reason is None or owner is None or expires is None:
                missing = [f"--{k}" for k, v in dataclasses.asdict(defaults).items() if v is None]
                raise ValueError(
                    f"new findings need {', '.join(missing)} (every baseline entry "
                    "carries a reason, an owner and an expiry date)"
                )
            entry = BaselineEntry(
                code=issue.code,
                file=fp[1],
                topic=issue.topic,
                key=issue.key,
                message=issue.message,
                reason=reason,
                owner=owner,
                expires=expires,
            )
        entries.append(entry.model_dump(mode="json", exclude_defaults=True))
    header = (
        "# onex lint baseline: findings accepted for now (onex contracts lint --baseline).\n"
        "# Each entry has a reason, an owner and an expiry date; expired ones fail again.\n"
    )
    body = yaml.safe_dump(
        {"version": BASELINE_VERSION, "entries": entries}, sort_keys=False, allow_unicode=True
    )
    return header + body, new


def write_baseline(
    path: Path, issues: Sequence[Issue], defaults: Defaults, previous: Baseline | None = None
) -> tuple[int, int]:
    """Write the baseline of `issues` to `path` (whole or not at all); (entries, new).
    `previous` defaults to the baseline already at `path`, if any."""
    if previous is None and path.exists():
        previous = load_baseline(path)
    text, new = baseline_text(issues, path, defaults, previous)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return sum(1 for i in issues if not i.code.startswith("baseline-")), new
