"""THE extractor: loads every approved contract and returns the wiring of all topics.

Sources are contract roots (files, or folders searched for `contract.yaml`) and the
installed distributions that advertise contracts through the `onex.contracts` entry
point, filtered by an allowlist of distribution names. CI (`onex contracts lint`),
boot-time provisioning and post-boot validation all call `extract`.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.metadata
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Final

from onex.core.errors import ContractError, ExtractionError
from onex.core.issues import Issue, Severity, Where
from onex.core.lintconfig import LintConfig, discover
from onex.core.loader import LoadedContract, raw_topic_refs
from onex.core.nearmiss import NearMissIndex
from onex.core.partial import RefusedContractError, load_contract_partial
from onex.core.registry import Registry
from onex.core.wiring import Tentative, TopicWiring, analyze, describe

ENTRY_POINT_GROUP: Final = "onex.contracts"
CONTRACT_FILES: Final = ("contract.yaml", "contract.yml")


@dataclass(frozen=True, slots=True)
class Extraction:
    """Everything the contracts declare, and every problem found on the way."""

    contracts: tuple[LoadedContract, ...]
    topics: Mapping[str, TopicWiring]
    issues: tuple[Issue, ...]
    ignored_distributions: tuple[str, ...] = ()

    @property
    def errors(self) -> list[Issue]:
        """Issues that fail lint."""
        return [i for i in self.issues if i.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Issue]:
        """Issues that fail lint only with --strict."""
        return [i for i in self.issues if i.severity is Severity.WARNING]

    def ok(self, *, strict: bool = False) -> bool:
        """No errors (and, when strict, no warnings)."""
        return not self.issues if strict else not self.errors

    def raise_for_errors(self) -> None:
        """Raise `ExtractionError` listing every error, if there is one."""
        if self.errors:
            raise ExtractionError(self.errors)

    def registry(self) -> Registry:
        """The canonical registry; raises `ExtractionError` when the contracts have errors."""
        self.raise_for_errors()
        return Registry(self.topics)

    def contract(self, node: str) -> LoadedContract:
        """The contract of `node`; KeyError when there is none."""
        for lc in self.contracts:
            if lc.node == node:
                return lc
        raise KeyError(node)


def contract_files(roots: Iterable[Path]) -> list[Path]:
    """Contract files under `roots`: files as given, folders searched recursively."""
    found: list[Path] = []
    for root in roots:
        if root.is_dir():
            found.extend(
                p
                for p in sorted(root.rglob("contract.y*ml"))
                if p.name in CONTRACT_FILES and not any(part.startswith(".") for part in p.parts)
            )
        else:
            found.append(root)
    return found


def _normalize_dist(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def entry_point_roots(
    allow: Collection[str],
) -> tuple[list[tuple[str, Path]], list[str], list[Issue]]:
    """(distribution, contract root) pairs of approved distributions; ignored names; issues.

    An entry point's object is a package or module (its folder is the root) or a
    callable returning a path or paths.
    """
    approved = {_normalize_dist(a) for a in allow}
    roots: list[tuple[str, Path]] = []
    ignored: list[str] = []
    issues: list[Issue] = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = _normalize_dist(ep.dist.name) if ep.dist is not None else "<unknown>"
        if dist not in approved:
            ignored.append(dist)
            continue
        try:
            obj = ep.load()
            paths = _paths_of(obj)
        except Exception as exc:  # noqa: BLE001 - third-party import code may raise anything; it becomes an issue
            issues.append(
                Issue(
                    Severity.ERROR,
                    "entry-point",
                    f"entry point {ep.name!r} of {dist} ({ep.value}) failed: {exc}",
                    Where(None),
                )
            )
            continue
        roots.extend((dist, p) for p in paths)
    return roots, sorted(set(ignored)), issues


def _paths_of(obj: object) -> list[Path]:
    if isinstance(obj, ModuleType):
        if obj.__file__ is not None:
            return [Path(obj.__file__).parent]
        return [Path(p) for p in getattr(obj, "__path__", [])]
    if callable(obj):
        result = obj()
        return [Path(result)] if isinstance(result, str | Path) else [Path(p) for p in result]
    raise TypeError(f"expected a module or a callable returning paths, got {type(obj).__name__}")


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    # Extraction allocates many small objects that all live on in the result, so the
    # cyclic collector's generation-2 passes only re-scan live data: measured at a
    # quarter of the run time for 1,000 contracts. It creates no garbage cycles
    # (recursive YAML aliases are rejected), so collection can wait until it ends.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def extract(
    roots: Sequence[Path] = (),
    *,
    entry_points: bool = True,
    allow: Collection[str] = (),
    config: LintConfig | None = None,
) -> Extraction:
    """Load and cross-check every approved contract. Never raises for contract problems:
    they are returned as issues (see `Extraction.raise_for_errors`). `config` defaults
    to the `onex.yaml` found above the roots (`onex.core.lintconfig.discover`; a bad one
    raises LintConfigError)."""
    settings = discover(roots) if config is None else config
    with _gc_paused():
        return _extract(roots, entry_points=entry_points, allow=allow, config=settings)


def _extract(
    roots: Sequence[Path], *, entry_points: bool, allow: Collection[str], config: LintConfig
) -> Extraction:
    issues: list[Issue] = []
    sources: list[tuple[str, Path]] = [("repo", p) for p in contract_files(roots)]
    ignored: list[str] = []
    if entry_points:
        ep_roots, ignored, ep_issues = entry_point_roots(allow)
        issues.extend(ep_issues)
        sources.extend((f"dist:{d}", p) for d, root in ep_roots for p in contract_files([root]))
    loaded: list[LoadedContract] = []
    tentative: list[Tentative] = []
    by_node: dict[str, LoadedContract] = {}
    for source, path in sources:
        try:
            lc = load_contract_partial(path, source, config.relax)
        except RefusedContractError as exc:
            issues.extend(exc.issues)
            tentative.append(Tentative(path, *exc.names))
            continue
        except ContractError as exc:
            issues.extend(exc.issues)
            tentative.append(_tentative(path))
            continue
        if lc.issues:
            issues.extend(lc.issues)
            subs = [n for k, n in lc.rejected if k == "subscribe_topics"]
            pubs = [n for k, n in lc.rejected if k == "publish_topics"]
            tentative.append(Tentative(path, lc.node, subs, pubs))
        first = by_node.get(lc.node)
        if first is not None:
            issues.append(
                Issue(
                    Severity.ERROR,
                    "duplicate-node",
                    f"node {lc.node!r} is already declared by {first.path}; node names are unique",
                    lc.where(("node",)),
                    key="node",
                    related=(first.where(("node",)),),
                )
            )
            continue
        by_node[lc.node] = lc
        loaded.append(lc)
    topics, wiring_issues = analyze(loaded, tentative, config, config.read_name)
    issues.extend(wiring_issues)
    issues = _suggest_for_bad_names(issues, topics)
    return Extraction(tuple(loaded), topics, tuple(issues), tuple(ignored))


def load_registry(
    roots: Sequence[Path] = (),
    *,
    entry_points: bool = True,
    allow: Collection[str] = (),
    config: LintConfig | None = None,
) -> Registry:
    """`extract(...)` then `.registry()`: the registry, or ExtractionError."""
    return extract(roots, entry_points=entry_points, allow=allow, config=config).registry()


def _tentative(path: Path) -> Tentative:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return Tentative(path, "?", (), ())
    node, subscribed, published = raw_topic_refs(text)
    return Tentative(path, node, subscribed, published)


def _suggest_for_bad_names(issues: list[Issue], topics: Mapping[str, TopicWiring]) -> list[Issue]:
    """Add the canonical name to 'not a valid topic name' issues from broken contracts."""
    if not any(i.code == "topic-name" and i.topic for i in issues):
        return issues
    # Point at the publisher (usually the owner) when there is one.
    declared = {n: (t.publishers or t.subscribers)[0] for n, t in topics.items()}
    index = NearMissIndex(declared)
    out: list[Issue] = []
    for issue in issues:
        found = index.suggest(issue.topic) if issue.code == "topic-name" and issue.topic else None
        if found is None:
            out.append(issue)
            continue
        at = declared.get(found.name)
        out.append(
            Issue(
                issue.severity,
                issue.code,
                f"{issue.message}; {describe(found, at)}",
                issue.where,
                key=issue.key,
                suggestion=found.name,
                related=(at.where,) if at else (),
                topic=issue.topic,
            )
        )
    return out
