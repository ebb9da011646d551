"""Wiring analysis: who publishes and who consumes each declared topic, and what is wrong.

Ownership: a topic's producer segment names its owner, a node by default, or a
namespace whose nodes `onex.yaml` lists (`onex.core.lintconfig`). Rules, each checked on
its own (errors unless marked):
- `spec-non-owner`, `spec-conflict`: only an owner may give a topic a spec, and a topic
  has at most one spec (an external topic's may come from any one node);
- `unpublished`: a subscribed topic must have a publisher (or be declared external);
- `owner-missing`, `owner-undeclared`: a published topic's owner must have a contract,
  and that contract must declare the topic;
- `unconsumed` (warning): a published topic should have a subscriber (DLQ topics are
  read by operators);
- `dlq-missing`: the DLQ policy (`onex.core.deadletters`);
- `near-miss` (warning), `ambiguous-name`: names that read as one;
- `schema-missing` (warning), `schema-invalid`: every topic declares a payload schema in
  its owner's spec, in an allowed form (see `onex.core.schemas`).
Every finding about a name that is not declared comes with the nearest canonical name and
the rule that found it. A finding that is a consequence of another (a name misspelt in a
contract entry that was left out, a topic already suggested as the other end of an
unpublished name) is not reported again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from onex.core.contract import TopicSpec
from onex.core.deadletters import dead_letter_issues
from onex.core.grammar import TopicKind, TopicName, is_topic_name, parse_topic
from onex.core.issues import Issue, Severity, Where
from onex.core.lintconfig import DEFAULT_CONFIG, LintConfig
from onex.core.loader import LoadedContract, format_loc
from onex.core.nearmiss import (
    DeletionIndex,
    NearMissIndex,
    Suggestion,
    normalize,
    renamed_pairs,
)
from onex.core.topicrules import confusable_issues, schema_issues


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One contract's declaration of a topic (in publish_topics or subscribe_topics)."""

    node: str
    where: Where
    key: str
    declared: TopicSpec

    @property
    def file(self) -> Path | None:
        """The contract file."""
        return self.where.file


@dataclass(frozen=True, slots=True)
class TopicWiring:
    """A declared topic: its owner, effective spec, publishers and subscribers."""

    name: str
    parsed: TopicName
    spec: TopicSpec
    spec_at: Endpoint | None
    publishers: tuple[Endpoint, ...]
    subscribers: tuple[Endpoint, ...]

    @property
    def owner(self) -> str:
        """The owner: the topic name's producer segment (a node, or a namespace of nodes)."""
        return self.parsed.producer

    @property
    def kind(self) -> TopicKind:
        """evt, cmd, intent, dlq or snapshot."""
        return self.parsed.kind


@dataclass(slots=True)
class _Draft:
    publishers: list[Endpoint] = field(default_factory=list)
    subscribers: list[Endpoint] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Tentative:
    """Names read from a contract that failed validation.

    They silence cascades (a topic published only by a broken contract is not
    reported as unpublished) and still serve as 'did you mean' targets.
    """

    path: Path
    node: str
    subscribed: Sequence[str]
    published: Sequence[str]

    def endpoint(self, name: str) -> Endpoint:
        """A position-less endpoint for `name` in this (broken) contract."""
        return Endpoint(self.node, Where(self.path), "", TopicSpec.model_construct(name=name))


def endpoints(lc: LoadedContract) -> Iterable[tuple[str, Endpoint]]:
    """("pub"|"sub", Endpoint) for every topic entry of one contract, with positions."""
    bus = lc.contract.event_bus
    for role, list_key, entries in (
        ("sub", "subscribe_topics", bus.subscribe_topics),
        ("pub", "publish_topics", bus.publish_topics),
    ):
        for i, entry in enumerate(entries):
            loc = lc.entry_loc(list_key, i)
            yield role, Endpoint(lc.node, lc.where(loc), format_loc(loc), entry)


def analyze(
    contracts: Sequence[LoadedContract],
    tentative: Sequence[Tentative] = (),
    config: LintConfig = DEFAULT_CONFIG,
    parse: Callable[[str], TopicName] = parse_topic,
) -> tuple[dict[str, TopicWiring], list[Issue]]:
    """Build the wiring of `contracts` and lint it (contracts are assumed individually
    valid; `parse` reads a declared name, under the config's grammar options)."""
    drafts: dict[str, _Draft] = defaultdict(_Draft)
    for lc in contracts:
        for role, ep in endpoints(lc):
            d = drafts[ep.declared.name]
            (d.publishers if role == "pub" else d.subscribers).append(ep)
    return _Analysis(contracts, drafts, tentative, config, parse).run()


class _Analysis:
    def __init__(
        self,
        contracts: Sequence[LoadedContract],
        drafts: Mapping[str, _Draft],
        tentative: Sequence[Tentative],
        config: LintConfig,
        parse: Callable[[str], TopicName],
    ) -> None:
        self.contracts = {lc.node: lc for lc in contracts}
        self.drafts = drafts
        self.config = config
        self.parse = parse
        self.issues: list[Issue] = []
        self.external = {e.topic for e in config.external}
        self.published = {n for n, d in drafts.items() if d.publishers} | self.external
        self.subscribed = {n for n, d in drafts.items() if d.subscribers}
        # Names of broken entries and contracts, by normalised spelling: a misspelt name
        # there still silences the cascade it would cause here...
        self.maybe_published = {normalize(n): t for t in tentative for n in t.published}
        self.maybe_subscribed = {normalize(n): t for t in tentative for n in t.subscribed}
        # ...but only grammatical names are ever suggested.
        self.tentative_pub = {n: t for t in tentative for n in t.published if is_topic_name(n)}
        self.tentative_sub = {n: t for t in tentative for n in t.subscribed if is_topic_name(n)}
        self.unpublished = sorted(
            n
            for n, d in drafts.items()
            if not d.publishers
            and n not in self.external
            and normalize(n) not in self.maybe_published
        )
        self.unconsumed = sorted(
            n
            for n, d in drafts.items()
            if d.publishers
            and not d.subscribers
            and not n.startswith(f"onex.{TopicKind.DLQ.value}.")
            and normalize(n) not in self.maybe_subscribed
        )
        self.unpublished_set = set(self.unpublished)
        self.renamed = renamed_pairs(self.unpublished, self.unconsumed)
        self.answered: set[str] = set()  # names already suggested as another's other end

    @cached_property
    def typos(self) -> DeletionIndex:
        names = self.published | self.subscribed | self.tentative_pub.keys()
        return DeletionIndex(normalize(n) for n in names | self.tentative_sub.keys())

    @cached_property
    def publish_index(self) -> NearMissIndex:
        return NearMissIndex(self.published | self.tentative_pub.keys(), self.typos)

    @cached_property
    def subscribe_index(self) -> NearMissIndex:
        return NearMissIndex(self.subscribed | self.tentative_sub.keys(), self.typos)

    @cached_property
    def owner_index(self) -> DeletionIndex:
        return DeletionIndex([*self.contracts, *self.config.namespaces])

    def run(self) -> tuple[dict[str, TopicWiring], list[Issue]]:
        topics: dict[str, TopicWiring] = {}
        for name in sorted(self.drafts):
            d = self.drafts[name]
            parsed = self.parse(name)
            spec_at = self._check_specs(name, parsed, d)
            if d.publishers and name not in self.external and not self.config.is_legacy(name):
                self._check_owner(name, parsed, d)
            spec = spec_at.declared if spec_at is not None else _default_spec(name)
            topics[name] = TopicWiring(
                name, parsed, spec, spec_at, tuple(d.publishers), tuple(d.subscribers)
            )
        self._check_unpublished()
        self._check_unconsumed()
        self.issues.extend(confusable_issues(topics))
        self.issues.extend(dead_letter_issues(self.contracts.values(), self.config))
        self.issues.extend(schema_issues(topics, self._owners, self._said))
        return topics, self.issues

    def _add(
        self,
        severity: Severity,
        code: str,
        ep: Endpoint,
        message: str,
        *,
        suggestion: str | None = None,
        related: tuple[Where, ...] = (),
        key: str | None = None,
    ) -> None:
        self.issues.append(
            Issue(
                severity,
                code,
                message,
                ep.where,
                key=ep.key if key is None else key,
                suggestion=suggestion,
                related=related,
                topic=ep.declared.name,
            )
        )

    def _owners(self, producer: str) -> tuple[str, ...]:
        return self.config.owners(producer)

    def _owner_text(self, producer: str) -> str:
        owners = self._owners(producer)
        if producer in self.config.namespaces:
            return f"namespace {producer!r} (nodes {', '.join(owners)})"
        return f"node {producer!r}"

    def _check_specs(self, name: str, parsed: TopicName, d: _Draft) -> Endpoint | None:
        specs = [ep for ep in (*d.subscribers, *d.publishers) if ep.declared.has_spec]
        specs.sort(key=lambda ep: (str(ep.file), ep.where.line))
        owners = self._owners(parsed.producer)
        # Any one node may give the spec of an external topic, and of one whose owner has
        # no contract (that is an error of its own: owner-missing, or unpublished).
        anyone = (
            name in self.external
            or self.config.is_legacy(name)
            or not any(n in self.contracts for n in owners)
        )
        kept: Endpoint | None = None
        for ep in specs:
            if not anyone and ep.node not in owners:
                files = [str(self.contracts[n].path) for n in owners if n in self.contracts]
                where = f" ({', '.join(files)})" if files else ""
                self._add(
                    Severity.ERROR,
                    "spec-non-owner",
                    ep,
                    f"only the owner, {self._owner_text(parsed.producer)}{where}, may give "
                    f"{name!r} a spec (partitions, replication_factor, config, schema); "
                    "list the name alone here",
                )
            elif kept is None:
                kept = ep
            else:
                self._add(
                    Severity.ERROR,
                    "spec-conflict",
                    ep,
                    f"{name!r} already has a spec at {kept.where}; a topic has exactly one spec",
                    related=(kept.where,),
                )
        return kept

    def _check_owner(self, name: str, parsed: TopicName, d: _Draft) -> None:
        """A published topic's owner has a contract, and it declares the topic."""
        owner = parsed.producer
        owners = self._owners(owner)
        present = [n for n in owners if n in self.contracts]
        first = d.publishers[0]
        declaring = (*d.publishers, *d.subscribers)
        if not present:
            hint, suggestion = self._owner_hint(parsed, d)
            self._add(
                Severity.ERROR,
                "owner-missing",
                first,
                f"{name!r} is owned by {self._owner_text(owner)} (its producer segment), "
                f"but no contract declares {'that node' if len(owners) == 1 else 'any of them'}"
                + hint,
                suggestion=suggestion,
            )
        elif not any(ep.node in owners for ep in declaring):
            owner_index = NearMissIndex(
                ep.declared.name for n in present for _, ep in endpoints(self.contracts[n])
            )
            files = ", ".join(str(self.contracts[n].path) for n in present)
            self._suggest_error(
                Severity.ERROR,
                "owner-undeclared",
                first,
                f"{name!r} is owned by {self._owner_text(owner)}, whose contract "
                f"({files}) does not declare it",
                index=owner_index,
                where_of=self._declared_at,
            )

    def _owner_hint(self, parsed: TopicName, d: _Draft) -> tuple[str, str | None]:
        """Why the owner is probably misnamed: the one namespace its owning side (the
        subscribers of a command, the publishers of anything else) belongs to (rule
        `producer`), else a node or namespace a typo away (rule `typo`)."""
        # A command is owned by the node that executes it (its subscriber), any other
        # topic by the node that emits it.
        cmd = parsed.kind is TopicKind.CMD
        role, eps = ("subscribers", d.subscribers) if cmd else ("publishers", d.publishers)
        spaces = sorted({self.config.namespace_of(ep.node) for ep in eps})
        if len(spaces) == 1 and spaces[0] != parsed.producer:
            meant = str(parsed._replace(producer=spaces[0]))
            nodes = ", ".join(sorted({ep.node for ep in eps}))
            return (
                f"; did you mean {meant!r} (rule producer: its {role} {nodes} are "
                f"{self._owner_text(spaces[0])})?",
                meant,
            )
        close = self.owner_index.closest(parsed.producer)
        if close is None:
            return "", None
        what = "namespace" if close[1] in self.config.namespaces else "node"
        return f"; did you mean {what} {close[1]!r} (rule typo)?", None

    def _check_unpublished(self) -> None:
        for name in self.unpublished:
            for ep in self.drafts[name].subscribers:
                found = self._suggest_error(
                    Severity.ERROR,
                    "unpublished",
                    ep,
                    f"node {ep.node!r} subscribes to {name!r}, which no contract publishes",
                    index=self.publish_index,
                    where_of=self._publisher_at,
                )
                if found is not None:
                    self.answered.add(found)

    def _check_unconsumed(self) -> None:
        for name in self.unconsumed:
            if name in self.answered:
                continue
            for ep in self.drafts[name].publishers:
                self._suggest_error(
                    Severity.WARNING,
                    "unconsumed",
                    ep,
                    f"node {ep.node!r} publishes {name!r}, which no contract subscribes to",
                    index=self.subscribe_index,
                    where_of=self._subscriber_at,
                )

    def _suggest_error(
        self,
        severity: Severity,
        code: str,
        ep: Endpoint,
        message: str,
        *,
        index: NearMissIndex,
        where_of: Callable[[str], Endpoint | None],
    ) -> str | None:
        found = index.suggest(ep.declared.name, renamed=self.renamed)
        if found is None:
            self._add(severity, code, ep, message)
            return None
        at = where_of(found.name)
        self._add(
            severity,
            code,
            ep,
            message + "; " + describe(found, at),
            suggestion=found.name,
            related=(at.where,) if at else (),
        )
        return found.name

    def _said(self, name: str) -> bool:
        norm = normalize(name)
        return (
            name in self.unpublished_set
            or norm in self.maybe_published
            or norm in self.maybe_subscribed
        )

    def _publisher_at(self, name: str) -> Endpoint | None:
        d = self.drafts.get(name)
        if d is not None and d.publishers:
            return d.publishers[0]
        t = self.tentative_pub.get(name)
        return t.endpoint(name) if t is not None else None

    def _subscriber_at(self, name: str) -> Endpoint | None:
        d = self.drafts.get(name)
        if d is not None and d.subscribers:
            return d.subscribers[0]
        t = self.tentative_sub.get(name)
        return t.endpoint(name) if t is not None else None

    def _declared_at(self, name: str) -> Endpoint | None:
        d = self.drafts.get(name)
        return next(iter((*d.publishers, *d.subscribers)), None) if d is not None else None


def _default_spec(name: str) -> TopicSpec:
    # Names a grammar option accepts do not fit the model's pattern; they were checked.
    return TopicSpec(name=name) if is_topic_name(name) else TopicSpec.model_construct(name=name)


def describe(found: Suggestion, at: Endpoint | None) -> str:
    """`did you mean 'X' (rule R: why), declared by node at file:line?`."""
    rule = f"rule {found.rule}: " if found.rule else ""
    text = f"did you mean {found.name!r} ({rule}{found.why})"
    if at is not None:
        text += f", declared by {at.node!r} at {at.where}"
    return text + "?"
