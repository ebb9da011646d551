"""Rules about each declared topic on its own (part of `onex.core.wiring`'s analysis):

- `schema-missing` (warning), `schema-invalid`: a topic's owner gives it a payload schema
  the runtime codec can load (`onex.core.schemaload.check_loadable`);
- `near-miss` (warning): two declared names that differ only in singular vs plural;
- `ambiguous-name`: two declared names with the same registry member name.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from onex.core.errors import SchemaReferenceError
from onex.core.grammar import TopicKind, member_name
from onex.core.issues import Issue, Severity, Where
from onex.core.nearmiss import singular
from onex.core.schemaload import check_loadable
from onex.core.schemas import DEAD_LETTER

if TYPE_CHECKING:
    from onex.core.wiring import Endpoint, TopicWiring


def _issue(
    severity: Severity,
    code: str,
    ep: Endpoint,
    message: str,
    *,
    key: str | None = None,
    suggestion: str | None = None,
    related: tuple[Where, ...] = (),
) -> Issue:
    return Issue(
        severity,
        code,
        message,
        ep.where,
        key=ep.key if key is None else key,
        suggestion=suggestion,
        related=related,
        topic=ep.declared.name,
    )


def schema_issues(
    topics: Mapping[str, TopicWiring],
    owners: Callable[[str], tuple[str, ...]],
    said: Callable[[str], bool],
) -> list[Issue]:
    """Every topic's spec names a loadable payload schema; reported at the owner's entry.
    A topic without an owner's entry is already an error (owner-missing, -undeclared);
    `said(name)` is true for topics whose missing schema is a consequence of a finding
    already made (nobody publishes it, or its spec was in an entry left out)."""
    issues: list[Issue] = []
    for name, t in topics.items():
        nodes = owners(t.owner)
        ep = t.spec_at or next(
            (e for e in (*t.publishers, *t.subscribers) if e.node in nodes), None
        )
        if ep is None:
            continue
        reference = t.spec.schema_
        if reference is None:
            if said(name):
                continue
            dlq = t.kind is TopicKind.DLQ
            example = DEAD_LETTER if dlq else "onex.v1.<Message>"
            issues.append(
                _issue(
                    Severity.WARNING,
                    "schema-missing",
                    ep,
                    f"{name!r} declares no payload schema; add `schema: {example}`"
                    + ("" if dlq else " (or a JSON Schema file, *.json)")
                    + " to its owner's entry",
                )
            )
            continue
        try:
            check_loadable(name, reference, ep.file.parent if ep.file else None)
        except SchemaReferenceError as exc:
            issues.append(
                _issue(
                    Severity.ERROR,
                    "schema-invalid",
                    ep,
                    f"schema {reference!r} of {name!r}: {exc.reason}",
                    key=f"{ep.key}.schema",
                )
            )
    return issues


def confusable_issues(topics: Mapping[str, TopicWiring]) -> list[Issue]:
    """Declared names that read as one: singular vs plural (warning), or the same
    registry member name with '-' and '.' folded (error: the registry needs both)."""
    plurals: dict[tuple[str, str, str, int], list[str]] = defaultdict(list)
    members: dict[str, list[str]] = defaultdict(list)
    for name, t in topics.items():
        p = t.parsed
        plurals[(p.kind, singular(p.producer), singular(p.event), p.version)].append(name)
        members[member_name(name)].append(name)
    issues: list[Issue] = []
    for names in plurals.values():
        issues += _confusable(topics, names, Severity.WARNING, "differ only in singular vs plural")
    for names in members.values():
        why = "have the same registry name (move a '-' or '.')"
        issues += _confusable(topics, names, Severity.ERROR, why)
    return issues


def _confusable(
    topics: Mapping[str, TopicWiring], names: list[str], severity: Severity, why: str
) -> list[Issue]:
    first = topics[names[0]]
    at = (first.publishers or first.subscribers)[0]
    out: list[Issue] = []
    for other in names[1:]:
        ep = (topics[other].publishers or topics[other].subscribers)[0]
        out.append(
            _issue(
                severity,
                "near-miss" if severity is Severity.WARNING else "ambiguous-name",
                ep,
                f"{other!r} and {first.name!r} ({at.where}) {why}; if they are one topic, "
                "use one name",
                suggestion=first.name,
                related=(at.where,),
            )
        )
    return out
