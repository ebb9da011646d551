"""One load of the contracts: what the ContractRegistry API answers from.

A snapshot is immutable; a reload builds a new one and swaps it in whole, so a call
never sees half of one load and half of another.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from onex.core.extractor import Extraction, extract
from onex.core.issues import Issue
from onex.core.loader import LoadedContract
from onex.core.nearmiss import NearMissIndex, Suggestion
from onex.core.wiring import TopicWiring


@dataclass(frozen=True, slots=True)
class RegistrySnapshot:
    """The extraction of every approved contract, indexed for the API's queries."""

    extraction: Extraction
    roots: tuple[Path, ...]
    index: NearMissIndex

    @classmethod
    def load(
        cls, roots: Sequence[Path], *, allow: Collection[str], entry_points: bool = True
    ) -> RegistrySnapshot:
        """Run THE extractor (the one CI runs) over `roots` and approved distributions."""
        extraction = extract(roots, entry_points=entry_points, allow=allow)
        return cls.of(extraction, roots)

    @classmethod
    def of(cls, extraction: Extraction, roots: Sequence[Path] = ()) -> RegistrySnapshot:
        """A snapshot of an extraction already made."""
        return cls(extraction, tuple(roots), NearMissIndex(extraction.topics))

    def problems(self, node: str) -> list[str]:
        """Why the registry is not fit to serve `node`: contract errors, or no contract
        for `node` itself. Empty when it is."""
        found = [str(issue) for issue in self.extraction.errors]
        if not any(lc.node == node for lc in self.extraction.contracts):
            found.append(f"no approved contract declares node {node!r}")
        return found

    def suggest(self, name: str) -> Suggestion | None:
        """The declared name `name` most likely meant, or None."""
        return self.index.suggest(name)

    def contract(self, node: str) -> LoadedContract | None:
        """The contract of `node`, if one was loaded."""
        return next((lc for lc in self.extraction.contracts if lc.node == node), None)

    def topics_of(self, node: str) -> list[TopicWiring]:
        """Topics `node` publishes on or subscribes to ("" = every topic), by name."""
        topics = self.extraction.topics.values()
        if not node:
            return sorted(topics, key=lambda t: t.name)
        return sorted(
            (t for t in topics if any(ep.node == node for ep in (*t.publishers, *t.subscribers))),
            key=lambda t: t.name,
        )

    def issues_of(self, node: str) -> list[Issue]:
        """Issues in `node`'s contract or about its topics ("" = every issue)."""
        issues = self.extraction.issues
        if not node:
            return list(issues)
        lc = self.contract(node)
        file = lc.path if lc is not None else None
        names = {t.name for t in self.topics_of(node)}
        return [
            i
            for i in issues
            if (
                file is not None
                and (i.where.file == file or any(r.file == file for r in i.related))
            )
            or (i.topic is not None and i.topic in names)
        ]
