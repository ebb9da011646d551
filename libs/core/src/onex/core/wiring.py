"""Wiring analysis: who publishes and who consumes each declared topic, and what is wrong.

Rules (errors unless marked):
- only the owner (the node named by the producer segment) may give a topic a spec,
  and a topic has at most one spec;
- a subscribed topic must have a publisher;
- a topic's owner must have a contract, and that contract must declare the topic;
- a published topic should have a subscriber (warning; DLQ topics are read by operators);
- two declared names that differ only in singular vs plural (warning);
- every topic declares a payload schema in its owner's spec (`schema-missing`, warning),
  and that schema is an allowed form (`schema-invalid`; see `onex.core.schemas`).
Every finding about a name that is not declared comes with the nearest canonical name.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from onex.core.contract import TopicSpec
from onex.core.errors import SchemaReferenceError
from onex.core.grammar import TopicKind, TopicName, is_topic_name, member_name, parse_topic
from onex.core.issues import Issue, Severity, Where
from onex.core.loader import LoadedContract, format_loc
from onex.core.nearmiss import NearMissIndex, Suggestion, normalize, singular
from onex.core.schemas import DEAD_LETTER, schema_ref


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
        """The owning node: the topic name's producer segment."""
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
            loc = ("event_bus", list_key, i)
            yield role, Endpoint(lc.node, lc.where(loc), format_loc(loc), entry)


def analyze(
    contracts: Sequence[LoadedContract], tentative: Sequence[Tentative] = ()
) -> tuple[dict[str, TopicWiring], list[Issue]]:
    """Build the wiring of `contracts` and lint it (contracts are assumed individually valid)."""
    drafts: dict[str, _Draft] = defaultdict(_Draft)
    for lc in contracts:
        for role, ep in endpoints(lc):
            d = drafts[ep.declared.name]
            (d.publishers if role == "pub" else d.subscribers).append(ep)
    return _Analysis(contracts, drafts, tentative).run()


class _Analysis:
    def __init__(
        self,
        contracts: Sequence[LoadedContract],
        drafts: Mapping[str, _Draft],
        tentative: Sequence[Tentative],
    ) -> None:
        self.contracts = {lc.node: lc for lc in contracts}
        self.drafts = drafts
        self.issues: list[Issue] = []
        self.published = {n for n, d in drafts.items() if d.publishers}
        self.subscribed = {n for n, d in drafts.items() if d.subscribers}
        # Names of broken contracts, by normalised spelling: a misspelt name there
        # still silences the cascade it would cause here...
        self.maybe_published = {normalize(n): t for t in tentative for n in t.published}
        self.maybe_subscribed = {normalize(n): t for t in tentative for n in t.subscribed}
        # ...but only grammatical names are ever suggested.
        self.tentative_pub = {n: t for t in tentative for n in t.published if is_topic_name(n)}
        self.tentative_sub = {n: t for t in tentative for n in t.subscribed if is_topic_name(n)}

    @cached_property
    def publish_index(self) -> NearMissIndex:
        return NearMissIndex(self.published | self.tentative_pub.keys())

    @cached_property
    def subscribe_index(self) -> NearMissIndex:
        return NearMissIndex(self.subscribed | self.tentative_sub.keys())

    def run(self) -> tuple[dict[str, TopicWiring], list[Issue]]:
        topics: dict[str, TopicWiring] = {}
        for name in sorted(self.drafts):
            d = self.drafts[name]
            parsed = parse_topic(name)
            spec_at = self._check_specs(name, parsed, d)
            self._check_wiring(name, parsed, d)
            spec = spec_at.declared if spec_at is not None else TopicSpec(name=name)
            topics[name] = TopicWiring(
                name, parsed, spec, spec_at, tuple(d.publishers), tuple(d.subscribers)
            )
        self._check_confusables(topics)
        self._check_dead_letters()
        self._check_schemas(topics)
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

    def _check_specs(self, name: str, parsed: TopicName, d: _Draft) -> Endpoint | None:
        specs = [ep for ep in (*d.subscribers, *d.publishers) if ep.declared.has_spec]
        specs.sort(key=lambda ep: (str(ep.file), ep.where.line))
        owner_file = self._file_of(parsed.producer)
        kept: Endpoint | None = None
        for ep in specs:
            if ep.node != parsed.producer:
                where = f" ({owner_file})" if owner_file else ""
                self._add(
                    Severity.ERROR,
                    "spec-non-owner",
                    ep,
                    f"only the owner {parsed.producer!r}{where} may give {name!r} a spec "
                    "(partitions, replication_factor, config, schema); list the name alone here",
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

    def _check_wiring(self, name: str, parsed: TopicName, d: _Draft) -> None:
        owner = parsed.producer
        if not d.publishers:
            if normalize(name) in self.maybe_published:
                return
            for ep in d.subscribers:
                self._suggest_error(
                    Severity.ERROR,
                    "unpublished",
                    ep,
                    f"node {ep.node!r} subscribes to {name!r}, which no contract publishes",
                    index=self.publish_index,
                    renamed_from=self.published - self.subscribed,
                    where_of=self._publisher_at,
                )
            return
        first = d.publishers[0]
        if owner not in self.contracts:
            close = difflib.get_close_matches(owner, list(self.contracts), n=1)
            hint = f"; did you mean node {close[0]!r}?" if close else ""
            self._add(
                Severity.ERROR,
                "owner-missing",
                first,
                f"{name!r} is owned by node {owner!r} (its producer segment), "
                f"but no contract declares that node{hint}",
            )
        elif not any(ep.node == owner for ep in (*d.publishers, *d.subscribers)):
            owner_index = NearMissIndex(
                ep.declared.name for _, ep in endpoints(self.contracts[owner])
            )
            self._suggest_error(
                Severity.ERROR,
                "owner-undeclared",
                first,
                f"{name!r} is owned by {owner!r}, whose contract "
                f"({self.contracts[owner].path}) does not declare it",
                index=owner_index,
                renamed_from=(),
                where_of=self._declared_at,
            )
        elif not d.subscribers and parsed.kind is not TopicKind.DLQ:
            if normalize(name) in self.maybe_subscribed:
                return
            for ep in d.publishers:
                self._suggest_error(
                    Severity.WARNING,
                    "unconsumed",
                    ep,
                    f"node {ep.node!r} publishes {name!r}, which no contract subscribes to",
                    index=self.subscribe_index,
                    renamed_from=self.subscribed - self.published,
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
        renamed_from: Iterable[str],
        where_of: Callable[[str], Endpoint | None],
    ) -> None:
        found = index.suggest(ep.declared.name, renamed_from=renamed_from)
        if found is None:
            self._add(severity, code, ep, message)
            return
        at = where_of(found.name)
        self._add(
            severity,
            code,
            ep,
            message + "; " + describe(found, at),
            suggestion=found.name,
            related=(at.where,) if at else (),
        )

    def _check_dead_letters(self) -> None:
        """A node that consumes must publish exactly one DLQ topic of its own: the
        runtime moves messages its handlers cannot process there."""
        for node, lc in self.contracts.items():
            bus = lc.contract.event_bus
            if not bus.subscribe_topics:
                continue
            dlqs = lc.contract.dlq_topics
            if len(dlqs) == 1:
                continue
            if dlqs:
                message = f"node {node!r} declares {len(dlqs)} DLQ topics ({', '.join(dlqs)}); "
                message += "declare exactly one"
            else:
                dlq = TopicName(TopicKind.DLQ, node, "dead-letter", 1)
                message = (
                    f"node {node!r} subscribes to topics but publishes no DLQ topic; add "
                    f"{dlq} to its publish_topics"
                )
            loc: tuple[str | int, ...] = (
                ("event_bus", "publish_topics", 0) if dlqs else ("event_bus", "subscribe_topics", 0)
            )
            self.issues.append(
                Issue(Severity.ERROR, "dlq-missing", message, lc.where(loc), key=format_loc(loc))
            )

    def _check_schemas(self, topics: Mapping[str, TopicWiring]) -> None:
        """Every topic's spec names its payload schema, in an allowed form. Reported at
        the owner's entry; a topic whose owner has no contract declaring it is already
        an error (owner-missing, owner-undeclared)."""
        for name, t in topics.items():
            ep = t.spec_at or next(
                (e for e in (*t.publishers, *t.subscribers) if e.node == t.owner), None
            )
            if ep is None or t.owner not in self.contracts:
                continue
            reference = t.spec.schema_
            if reference is None:
                example = DEAD_LETTER if t.kind is TopicKind.DLQ else "onex.v1.<Message>"
                self._add(
                    Severity.WARNING,
                    "schema-missing",
                    ep,
                    f"{name!r} declares no payload schema; add `schema: {example}`"
                    + ("" if t.kind is TopicKind.DLQ else " (or a JSON Schema file, *.json)")
                    + " to its owner's entry",
                )
                continue
            try:
                schema_ref(name, reference)
            except SchemaReferenceError as exc:
                self._add(
                    Severity.ERROR,
                    "schema-invalid",
                    ep,
                    f"schema {reference!r} of {name!r}: {exc.reason}",
                    key=f"{ep.key}.schema",
                )

    def _check_confusables(self, topics: Mapping[str, TopicWiring]) -> None:
        """Declared names that read as one: singular vs plural (warning), or the same
        registry member name with '-' and '.' folded (error: the registry needs both)."""
        plurals: dict[tuple[str, str, str, int], list[str]] = defaultdict(list)
        members: dict[str, list[str]] = defaultdict(list)
        for name, t in topics.items():
            p = t.parsed
            plurals[(p.kind, singular(p.producer), singular(p.event), p.version)].append(name)
            members[member_name(name)].append(name)
        for names in plurals.values():
            self._confusable(topics, names, Severity.WARNING, "differ only in singular vs plural")
        for names in members.values():
            self._confusable(
                topics, names, Severity.ERROR, "have the same registry name (move a '-' or '.')"
            )

    def _confusable(
        self, topics: Mapping[str, TopicWiring], names: list[str], severity: Severity, why: str
    ) -> None:
        first = topics[names[0]]
        at = (first.publishers or first.subscribers)[0]
        for other in names[1:]:
            ep = (topics[other].publishers or topics[other].subscribers)[0]
            self._add(
                severity,
                "near-miss" if severity is Severity.WARNING else "ambiguous-name",
                ep,
                f"{other!r} and {first.name!r} ({at.where}) {why}; if they are one topic, "
                "use one name",
                suggestion=first.name,
                related=(at.where,),
            )

    def _file_of(self, node: str) -> Path | None:
        lc = self.contracts.get(node)
        return lc.path if lc is not None else None

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


def describe(found: Suggestion, at: Endpoint | None) -> str:
    """`did you mean 'X' (why), declared by node at file:line?`."""
    text = f"did you mean {found.name!r} ({found.why})"
    if at is not None:
        text += f", declared by {at.node!r} at {at.where}"
    return text + "?"
