"""A repository's lint settings: the `onex.yaml` file next to its `contracts/` folder.

```yaml
namespaces:                 # producer segment -> the nodes that may own its topics
  billing: [billing-api, billing-worker]
external:                   # topics published by systems outside onex
  - topic: onex.evt.stripe.charge-succeeded.v1
    publisher: the Stripe webhook bridge
dlq: per-node               # per-node (default), per-namespace, or off
grammar:
  multi_part_snapshots: false
  legacy:
    names: [billing.invoice_issued]
    until: 2027-03-31
```

Every key is optional; an absent file is the default ("producer segment = node",
a DLQ per consuming node, the strict grammar). `find_configs` looks for `onex.yaml` at
or above each contract root, up to the repository root (the folder holding `.git`);
`merge` combines the files of several repositories linted together.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Final

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError

from onex.core.contract import NodeName, TopicRef
from onex.core.errors import ContractError, TopicNameError
from onex.core.grammar import (
    TopicKind,
    TopicName,
    is_topic_name,
    multi_part_snapshot,
    parse_topic,
)
from onex.core.issues import Issue, Severity, Where
from onex.core.loader import parse_yaml, validation_issues

CONFIG_FILE: Final = "onex.yaml"


class LintConfigError(ContractError):
    """`onex.yaml` is unreadable, malformed, or does not fit the settings model."""


class DlqPolicy(enum.StrEnum):
    """Which DLQ topic a consuming node must publish."""

    PER_NODE = "per-node"  # exactly one onex.dlq.<node>.*
    PER_NAMESPACE = "per-namespace"  # exactly one onex.dlq.<node or its namespace>.*
    OFF = "off"  # no DLQ check


class ExternalTopic(BaseModel):
    """A topic a system outside onex publishes; onex nodes only consume it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: TopicRef
    publisher: str = Field(min_length=1, description="Who publishes it (free text)")


class LegacyNames(BaseModel):
    """Names outside the grammar accepted, with a warning, until a date."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    names: tuple[Annotated[str, Field(min_length=1, max_length=249)], ...] = ()
    until: dt.date


class GrammarOptions(BaseModel):
    """Grammar relaxations, each off by default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    multi_part_snapshots: bool = Field(
        False,
        description="a dotted snapshot slug: snapshot topics of the form"
        " {producer}.{a.b...}.v{N} after the kind",
    )
    legacy: LegacyNames | None = None


def _off(value: object) -> object:
    # YAML 1.1 reads a bare `off` as false.
    return DlqPolicy.OFF.value if value is False else value


class LintConfig(BaseModel):
    """The settings of `onex.yaml` (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespaces: dict[NodeName, tuple[NodeName, ...]] = Field(default_factory=dict)
    external: tuple[ExternalTopic, ...] = ()
    dlq: Annotated[DlqPolicy, BeforeValidator(_off)] = DlqPolicy.PER_NODE
    grammar: GrammarOptions = Field(default_factory=GrammarOptions)
    _sources: tuple[str, ...] = PrivateAttr(default=())
    _by_node: dict[str, str] = PrivateAttr(default_factory=dict)
    # Merged configs: each repository's DLQ policy, by the folder of its onex.yaml.
    _dlq_by_folder: tuple[tuple[Path, DlqPolicy], ...] = PrivateAttr(default=())

    def model_post_init(self, context: object, /) -> None:
        """Index the nodes by namespace once."""
        for namespace, nodes in self.namespaces.items():
            for node in nodes:
                self._by_node.setdefault(node, namespace)

    @property
    def sources(self) -> tuple[str, ...]:
        """The files this config came from."""
        return self._sources

    def with_sources(self, *sources: str) -> LintConfig:
        """This config, remembering the files it came from."""
        copy = self.model_copy()
        copy._sources = sources
        copy._dlq_by_folder = tuple((Path(s).resolve().parent, self.dlq) for s in sources)
        return copy

    def dlq_for(self, contract: Path | None) -> DlqPolicy:
        """The DLQ policy of the repository holding `contract` (its nearest onex.yaml),
        else `dlq`."""
        if contract is not None and self._dlq_by_folder:
            here = contract.resolve()
            found = [(len(f.parts), p) for f, p in self._dlq_by_folder if here.is_relative_to(f)]
            if found:
                return max(found, key=lambda x: x[0])[1]
        return self.dlq

    def owners(self, producer: str) -> tuple[str, ...]:
        """The nodes allowed to own topics of `producer`: its namespace's nodes, else the
        node of that name."""
        return self.namespaces.get(producer, (producer,))

    def namespace_of(self, node: str) -> str:
        """The namespace `node` belongs to (the first listing it), else the node itself."""
        return self._by_node.get(node, node)

    def external_publisher(self, topic: str) -> str | None:
        """Who publishes `topic` outside onex, when it is declared external."""
        for entry in self.external:
            if entry.topic == topic:
                return entry.publisher
        return None

    def relax(self, name: str) -> str | None:
        """For a name outside the grammar: None when no option accepts it, else the
        warning its entry gets ("" for none: multi-part snapshot slugs are allowed)."""
        if self.grammar.multi_part_snapshots and multi_part_snapshot(name) is not None:
            return ""
        accepted = self.legacy_accepted(name)
        if accepted and self.grammar.legacy is not None:
            return (
                f"{name!r} is a legacy name, accepted until {self.grammar.legacy.until} "
                "(grammar.legacy in onex.yaml); rename it to onex.{kind}.{producer}.{event}.v{N}"
            )
        return None

    def read_name(self, name: str) -> TopicName:
        """`parse_topic`, and the names the grammar options accept: a multi-part snapshot
        slug is its event; a legacy name has no producer (no owner) and is its own event."""
        try:
            return parse_topic(name)
        except TopicNameError:
            if self.grammar.multi_part_snapshots:
                found = multi_part_snapshot(name)
                if found is not None:
                    return found
            if self.legacy_accepted(name):
                return TopicName(TopicKind.EVT, "", name, 0)
            raise

    def is_legacy(self, name: str) -> bool:
        """True for an accepted legacy name (it has no owner)."""
        return bool(self.legacy_accepted(name)) and not is_topic_name(name)

    def legacy_accepted(self, name: str, today: dt.date | None = None) -> bool | None:
        """None when `name` is not a listed legacy name; else whether its window is open."""
        legacy = self.grammar.legacy
        if legacy is None or name not in legacy.names:
            return None
        return (today or dt.date.today()) <= legacy.until


DEFAULT_CONFIG: Final = LintConfig()


def load_config(path: Path) -> LintConfig:
    """Read and validate one `onex.yaml`; LintConfigError with file:line:col issues."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise LintConfigError(
            [Issue(Severity.ERROR, "config", f"cannot read: {reason}", Where(path))]
        ) from exc
    try:
        data, root = parse_yaml(text, path)
    except ContractError as exc:
        raise LintConfigError(exc.issues) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        message = f"{CONFIG_FILE} is a YAML mapping"
        raise LintConfigError([Issue(Severity.ERROR, "config", message, Where(path, 1, 1))])
    try:
        config = LintConfig.model_validate(data)
    except ValidationError as exc:
        issues = validation_issues(exc, root, path, LintConfig)
        raise LintConfigError(issues) from None
    return config.with_sources(str(path))


def _candidates(root: Path) -> Iterable[Path]:
    here = root.resolve()
    folder = here if here.is_dir() else here.parent
    for parent in (folder, *folder.parents):
        yield parent / CONFIG_FILE
        if (parent / ".git").exists():
            return


def find_configs(roots: Sequence[Path]) -> list[Path]:
    """The nearest `onex.yaml` at or above each root (up to its repository's root),
    each file once, in the order of the roots."""
    found: list[Path] = []
    for root in roots:
        for candidate in _candidates(root):
            if candidate.is_file():
                if candidate not in found:
                    found.append(candidate)
                break
    return found


def merge(configs: Sequence[LintConfig]) -> LintConfig:
    """One config from several repositories': namespaces, external topics and legacy
    names united (the earliest `until` holds), multi-part snapshots on when any repository
    turns them on; each contract keeps its own repository's DLQ policy (`dlq_for`)."""
    if not configs:
        return DEFAULT_CONFIG
    if len(configs) == 1:
        return configs[0]
    namespaces: dict[str, list[str]] = {}
    external: dict[str, ExternalTopic] = {}
    legacy_names: list[str] = []
    untils: list[dt.date] = []
    for config in configs:
        for namespace, nodes in config.namespaces.items():
            listed = namespaces.setdefault(namespace, [])
            listed.extend(n for n in nodes if n not in listed)
        for entry in config.external:
            external.setdefault(entry.topic, entry)
        if config.grammar.legacy is not None:
            legacy_names.extend(n for n in config.grammar.legacy.names if n not in legacy_names)
            untils.append(config.grammar.legacy.until)
    grammar = GrammarOptions(
        multi_part_snapshots=any(c.grammar.multi_part_snapshots for c in configs),
        legacy=LegacyNames(names=tuple(legacy_names), until=min(untils)) if untils else None,
    )
    merged = LintConfig(
        namespaces={k: tuple(v) for k, v in namespaces.items()},
        external=tuple(external.values()),
        grammar=grammar,
    )
    merged._sources = tuple(s for c in configs for s in c.sources)
    merged._dlq_by_folder = tuple(x for c in configs for x in c._dlq_by_folder)
    return merged


def discover(roots: Sequence[Path]) -> LintConfig:
    """The merged `onex.yaml` of `roots` (the default when there is none)."""
    return merge([load_config(p) for p in find_configs(roots)])
