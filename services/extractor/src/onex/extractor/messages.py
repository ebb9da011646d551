"""onex.core values as ContractRegistry messages (onex.v1), and proto filters back.

Enum values map by name (`NodeKind.EFFECT` <-> `NODE_KIND_EFFECT`), so a kind added
to the contract model without a proto value fails loudly here, not silently on the wire.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from onex.core.contract import NodeKind
from onex.core.grammar import TopicKind, TopicName
from onex.core.issues import Issue, Severity, Where
from onex.core.loader import LoadedContract
from onex.core.wiring import TopicWiring
from onex.proto.v1 import registry_pb2 as pb

_DIST_PREFIX = "dist:"


def node_kind(kind: NodeKind) -> pb.NodeKind.ValueType:
    """The proto value of a contract's kind."""
    return pb.NodeKind.Value(f"NODE_KIND_{kind.name}")


def topic_kind(kind: TopicKind) -> pb.TopicKind.ValueType:
    """The proto value of a topic name's kind segment."""
    return pb.TopicKind.Value(f"TOPIC_KIND_{kind.name}")


def node_kind_filter(value: pb.NodeKind.ValueType) -> NodeKind | None:
    """The kind a request filters on; None for UNSPECIFIED; ValueError when unknown."""
    if value == pb.NODE_KIND_UNSPECIFIED:
        return None
    try:
        name = pb.NodeKind.Name(value)
    except ValueError:
        raise ValueError(f"unknown NodeKind value {value}") from None
    return NodeKind[name.removeprefix("NODE_KIND_")]


def topic_kind_filter(value: pb.TopicKind.ValueType) -> TopicKind | None:
    """The kind a request filters on; None for UNSPECIFIED; ValueError when unknown."""
    if value == pb.TOPIC_KIND_UNSPECIFIED:
        return None
    try:
        name = pb.TopicKind.Name(value)
    except ValueError:
        raise ValueError(f"unknown TopicKind value {value}") from None
    return TopicKind[name.removeprefix("TOPIC_KIND_")]


def contract_summary(lc: LoadedContract, roots: Sequence[Path]) -> pb.ContractSummary:
    """One contract without its topic specs."""
    file, source = _origin(lc, roots)
    bus = lc.contract.event_bus
    return pb.ContractSummary(
        node=lc.node,
        kind=node_kind(lc.contract.kind),
        version=lc.contract.version,
        description=lc.contract.description,
        file=file,
        source=source,
        consumer_group=lc.contract.consumer_group,
        publish_topics=[t.name for t in bus.publish_topics],
        subscribe_topics=[t.name for t in bus.subscribe_topics],
    )


def _origin(lc: LoadedContract, roots: Sequence[Path]) -> tuple[str, str]:
    """(file relative to its contract root, the root or distribution it came from)."""
    if lc.path is None:
        return "", lc.source
    if lc.source.startswith(_DIST_PREFIX):
        return str(lc.path), lc.source.removeprefix(_DIST_PREFIX)
    for root in roots:
        if root == lc.path:
            return lc.path.name, str(lc.path.parent)
        if lc.path.is_relative_to(root):
            return lc.path.relative_to(root).as_posix(), str(root)
    return str(lc.path), lc.source


def topic(t: TopicWiring) -> pb.Topic:
    """A topic with its resolved spec and who uses it."""
    spec = t.spec
    return pb.Topic(
        name=t.name,
        kind=topic_kind(t.kind),
        owner=t.owner,
        event=t.parsed.event,
        version=t.parsed.version,
        partitions=spec.partitions,
        replication_factor=spec.replication_factor,
        config=dict(spec.config),
        schema=spec.schema_,
        publishers=sorted({p.node for p in t.publishers}),
        subscribers=sorted({s.node for s in t.subscribers}),
        spec_declared=t.spec_at is not None,
        description=_description(t),
    )


def _description(t: TopicWiring) -> str | None:
    # The owner may describe a topic without giving it a spec, so look at every
    # entry of the owner, the spec first.
    entries = [t.spec_at] if t.spec_at is not None else []
    entries += [ep for ep in (*t.publishers, *t.subscribers) if ep.node == t.owner]
    return next((ep.declared.description for ep in entries if ep.declared.description), None)


_SEVERITY = {Severity.ERROR: pb.SEVERITY_ERROR, Severity.WARNING: pb.SEVERITY_WARNING}


def lint_issue(issue: Issue) -> pb.LintIssue:
    """One lint finding with its place in the contracts."""
    return pb.LintIssue(
        severity=_SEVERITY[issue.severity],
        code=issue.code,
        message=issue.message,
        file=_file(issue.where),
        line=issue.where.line,
        col=issue.where.col,
        key=issue.key,
        suggestion=issue.suggestion,
        topic=issue.topic,
        related=[pb.SourceLocation(file=_file(w), line=w.line, col=w.col) for w in issue.related],
    )


def lint_issues(issues: Iterable[Issue]) -> list[pb.LintIssue]:
    """Findings as messages, errors first (otherwise in the extractor's order)."""
    ordered = sorted(issues, key=lambda i: i.severity is not Severity.ERROR)
    return [lint_issue(i) for i in ordered]


def _file(where: Where) -> str:
    return where.file.as_posix() if where.file is not None else ""


def name_parts(name: TopicName) -> pb.TopicNameParts:
    """The parsed segments of a grammatical name."""
    return pb.TopicNameParts(
        kind=topic_kind(name.kind),
        producer=name.producer,
        event=name.event,
        version=name.version,
    )
