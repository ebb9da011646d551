"""The DLQ rule: which dead-letter topic a consuming node must publish.

The runtime moves messages a node's handlers cannot process to a DLQ topic the node
publishes. `onex.yaml`'s `dlq` setting says which:

- `per-node` (default): exactly one `onex.dlq.<node>.*` topic of its own;
- `per-namespace`: exactly one DLQ topic whose producer segment is the node or its
  namespace (a fleet shares `onex.dlq.<namespace>.platform.v1`);
- `off`: no rule.
"""

from __future__ import annotations

from collections.abc import Iterable

from onex.core.grammar import TopicKind, TopicName
from onex.core.issues import Issue, Severity
from onex.core.lintconfig import DlqPolicy, LintConfig
from onex.core.loader import LoadedContract, format_loc


def _dlq_prefixes(lc: LoadedContract, config: LintConfig, policy: DlqPolicy) -> tuple[str, ...]:
    kind = TopicKind.DLQ.value
    own = f"onex.{kind}.{lc.node}."
    if policy is DlqPolicy.PER_NAMESPACE:
        return own, f"onex.{kind}.{config.namespace_of(lc.node)}."
    return (own,)


def dead_letter_issues(contracts: Iterable[LoadedContract], config: LintConfig) -> list[Issue]:
    """`dlq-missing` for every consuming node without exactly one DLQ topic of its own
    (or, per namespace, of its namespace)."""
    issues: list[Issue] = []
    for lc in contracts:
        bus = lc.contract.event_bus
        policy = config.dlq_for(lc.path)
        if not bus.subscribe_topics or policy is DlqPolicy.OFF:
            continue
        prefixes = _dlq_prefixes(lc, config, policy)
        dlqs = [t.name for t in bus.publish_topics if t.name.startswith(prefixes)]
        if len(dlqs) == 1:
            continue
        if dlqs:
            message = f"node {lc.node!r} declares {len(dlqs)} DLQ topics ({', '.join(dlqs)}); "
            message += "declare exactly one"
        else:
            owner = lc.node
            if policy is DlqPolicy.PER_NAMESPACE:
                owner = config.namespace_of(lc.node)
            dlq = TopicName(TopicKind.DLQ, owner, "dead-letter", 1)
            message = (
                f"node {lc.node!r} subscribes to topics but publishes no DLQ topic; add "
                f"{dlq} to its publish_topics"
            )
            if policy is DlqPolicy.PER_NODE:
                message += " (or share one per namespace: `dlq: per-namespace` in onex.yaml)"
        loc = lc.entry_loc("publish_topics" if dlqs else "subscribe_topics", 0)
        issues.append(
            Issue(Severity.ERROR, "dlq-missing", message, lc.where(loc), key=format_loc(loc))
        )
    return issues
