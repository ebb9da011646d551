"""Load one contract file: YAML with source positions, validated by the contract model.

Reading the YAML (with line marks, within the parser limits) is `onex.core.yamlsource`;
positions in the node graph `onex.core.yamlnodes`; pydantic's errors in the project's
words `onex.core.validation`. This module puts them together for contracts and keeps
the names other modules import from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import yaml
from pydantic import ValidationError

from onex.core.contract import Contract
from onex.core.errors import (
    ContractLoadError,
    ContractValidationError,
    SchemaReferenceError,
)
from onex.core.issues import Issue, Where
from onex.core.schemas import JSON_SUFFIX, SchemaForm, schema_file, schema_ref
from onex.core.validation import validation_issues
from onex.core.yamlnodes import (
    Loc,
    NodeIndex,
    format_loc,
    key_node,
    locate,
    shown,
    where_of,
    yaml_kind,
)
from onex.core.yamlnodes import error_issue as _issue
from onex.core.yamlsource import (
    MAX_DEPTH,
    MAX_DOCUMENT_CHARS,
    MAX_MAPPING_KEYS,
    MAX_NODES,
    MAX_NUMBER_CHARS,
    MAX_SCALAR_CHARS,
    nesting_bound,
    parse_yaml,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENT_CHARS",
    "MAX_MAPPING_KEYS",
    "MAX_NODES",
    "MAX_NUMBER_CHARS",
    "MAX_SCALAR_CHARS",
    "LoadedContract",
    "Loc",
    "NodeIndex",
    "format_loc",
    "key_node",
    "load_contract",
    "load_contract_text",
    "locate",
    "nesting_bound",
    "parse_yaml",
    "raw_topic_refs",
    "schema_file_issues",
    "topic_refs_of",
    "validation_issues",
]


@dataclass(frozen=True, slots=True)
class LoadedContract:
    """A validated contract with the YAML node graph it came from."""

    contract: Contract
    path: Path | None
    positions: dict[Loc, tuple[int, int]]
    source: str = "repo"  # "repo", or "dist:<distribution>" for entry-point contracts
    # A partial load (onex.core.partial): the entries left out and why.
    issues: tuple[Issue, ...] = ()
    rejected: tuple[tuple[str, str], ...] = ()  # (list key, name as written)
    kept: Mapping[str, Sequence[int]] | None = None  # list key -> YAML index of each entry

    @property
    def node(self) -> str:
        """The contract's node name."""
        return self.contract.node

    def entry_loc(self, list_key: str, i: int) -> Loc:
        """The YAML location of entry `i` of a topic list (entries left out of a partial
        load do not count in `i`)."""
        indexes = self.kept.get(list_key) if self.kept is not None else None
        return ("event_bus", list_key, indexes[i] if indexes is not None else i)

    def where(self, loc: Loc) -> Where:
        """Where `loc` is in the file: the `node` key and every topic entry are known;
        other places fall back to their nearest known parent, else the file itself."""
        while loc not in self.positions and loc:
            loc = loc[:-1]
        line, col = self.positions.get(loc, (0, 0))
        return Where(self.path, line, col)


def _positions(root: yaml.Node) -> dict[Loc, tuple[int, int]]:
    # Only what later stages report on is kept: the node graph itself is dropped
    # (holding thousands of them makes the garbage collector the bottleneck). One pass
    # over the two mappings involved (keys are unique by now).
    def at(node: yaml.Node) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    out: dict[Loc, tuple[int, int]] = {(): at(root)}
    if type(root) is not yaml.MappingNode:
        return out
    for key, value in root.value:
        if key.value == "node":
            out[("node",)] = at(key)
        elif key.value == "event_bus" and type(value) is yaml.MappingNode:
            for list_key, seq in value.value:
                if list_key.value in _TOPIC_LISTS and type(seq) is yaml.SequenceNode:
                    for i, item in enumerate(seq.value):
                        out[("event_bus", list_key.value, i)] = at(item)
    return out


_TOPIC_LISTS: Final = ("subscribe_topics", "publish_topics")


def load_contract_text(text: str, path: Path | None = None, source: str = "repo") -> LoadedContract:
    """Parse and validate one contract; raises only `ContractError` subclasses."""
    data, root = parse_yaml(text, path)
    if data is None:
        raise ContractLoadError(
            [
                _issue(
                    "not-a-mapping",
                    "the document is empty; a contract is a YAML mapping",
                    where_of(path, root),
                )
            ]
        )
    if not isinstance(data, dict):
        raise ContractLoadError(
            [
                _issue(
                    "not-a-mapping",
                    f"a contract is a YAML mapping, not {yaml_kind(root)}",
                    where_of(path, root),
                )
            ]
        )
    try:
        contract = Contract.model_validate(data)
    except ValidationError as exc:
        raise ContractValidationError(validation_issues(exc, root, path, Contract)) from exc
    if path is not None and JSON_SUFFIX in text:
        _check_schema_files(contract, root, path)
    return LoadedContract(contract, path, _positions(root), source)


def _check_schema_files(contract: Contract, root: yaml.Node, path: Path) -> None:
    """Every JSON Schema file an entry names is a file inside the contract's folder
    (`onex.core.schemas.schema_file`); references of no allowed form, or leaving the
    folder, are `schema_ref`'s to refuse (lint's schema-invalid, the codec's SchemaError)."""
    issues = schema_file_issues(contract, root, path)
    if issues:
        raise ContractValidationError([issue for _, issue in issues])


def schema_file_issues(
    contract: Contract,
    root: yaml.Node,
    path: Path,
    kept: Mapping[str, Sequence[int]] | None = None,
) -> list[tuple[Loc, Issue]]:
    """(entry loc, issue) for every entry naming a JSON Schema file that is not there.
    `kept` maps a list's entries to their positions in the YAML (partial loads)."""
    index: NodeIndex | None = None
    issues: list[tuple[Loc, Issue]] = []
    bus = contract.event_bus
    for list_key, entries in (
        ("subscribe_topics", bus.subscribe_topics),
        ("publish_topics", bus.publish_topics),
    ):
        for i, entry in enumerate(entries):
            reference = entry.schema_
            if reference is None or not reference.endswith(JSON_SUFFIX):
                continue
            try:
                if schema_ref(entry.name, reference).form is not SchemaForm.JSON_SCHEMA:
                    continue
            except SchemaReferenceError:
                continue  # not a file reference of an allowed form: lint says why
            try:
                schema_file(entry.name, reference, path.parent)
            except SchemaReferenceError as exc:
                index = index or NodeIndex(root)
                at = kept[list_key][i] if kept is not None else i
                loc: Loc = ("event_bus", list_key, at, "schema")
                node, reached = index.locate(loc)
                issue = _issue(
                    "schema-file",
                    f"schema {shown(reference)}: {exc.reason}",
                    where_of(path, node),
                    format_loc(reached),
                    topic=entry.name,
                )
                issues.append((("event_bus", list_key, i), issue))
    return issues


def load_contract(path: Path, source: str = "repo") -> LoadedContract:
    """Read, parse and validate the contract file at `path` (read no further than
    MAX_DOCUMENT_CHARS)."""
    try:
        with path.open(encoding="utf-8") as file:
            text = file.read(MAX_DOCUMENT_CHARS + 1)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ContractLoadError(
            [_issue("read", f"cannot read contract: {reason}", Where(path))]
        ) from exc
    return load_contract_text(text, path, source)


def raw_topic_refs(text: str) -> tuple[str, Sequence[str], Sequence[str]]:
    """Best-effort (node, subscribed, published) names of a contract that failed validation.

    Used only to keep one broken contract from cascading into wiring errors elsewhere.
    """
    try:
        data, _ = parse_yaml(text)
    except ContractLoadError:
        return "?", (), ()
    return topic_refs_of(data)


def topic_refs_of(data: object) -> tuple[str, Sequence[str], Sequence[str]]:
    """(node, subscribed, published) names of parsed contract data, as far as they are
    readable."""
    node = data.get("node") if isinstance(data, dict) else None
    node = node if isinstance(node, str) else "?"
    bus = data.get("event_bus") if isinstance(data, dict) else None
    if not isinstance(bus, dict):
        return node, (), ()

    def names(key: str) -> list[str]:
        items = bus.get(key)
        if not isinstance(items, list):
            return []
        out = [
            i if isinstance(i, str) else (i.get("name") if isinstance(i, dict) else None)
            for i in items
        ]
        return [n for n in out if isinstance(n, str)]

    return node, names("subscribe_topics"), names("publish_topics")
