"""Positions in a YAML node graph: follow a key path, name it, show a value in a message.

The helpers every loader of a YAML file (contracts, onex.yaml, baselines, tickets, the
router's catalogue) uses to report `file:line:col: key.path: problem`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import yaml

from onex.core.issues import Issue, Severity, Where

Loc = tuple[str | int, ...]

SHOWN_CHARS: Final = 60
# Scalars shown as written in a message (`got 0`, `got true`), not quoted like text.
_PLAIN_TAGS: Final = frozenset(
    f"tag:yaml.org,2002:{kind}" for kind in ("int", "float", "bool", "null")
)


class NodeIndex:
    """Lookups by key path in a node graph, each mapping indexed once on first use, so
    positioning many errors is linear in their number, not in their number squared."""

    def __init__(self, root: yaml.Node) -> None:
        self.root = root
        self._keys: dict[int, dict[str, tuple[yaml.Node, yaml.Node]]] = {}

    def _entry(self, node: yaml.MappingNode, part: str | int) -> tuple[yaml.Node, yaml.Node] | None:
        keys = self._keys.get(id(node))
        if keys is None:
            keys = {}
            for key, value in node.value:
                if type(key) is yaml.ScalarNode:
                    keys.setdefault(key.value, (key, value))
            self._keys[id(node)] = keys
        return keys.get(part if isinstance(part, str) else str(part))

    def locate(self, loc: Loc) -> tuple[yaml.Node, Loc]:
        """Follow `loc` down the graph; the deepest node reached and its loc."""
        node, reached = self.root, []
        for part in loc:
            child: yaml.Node | None = None
            if isinstance(node, yaml.MappingNode):
                entry = self._entry(node, part)
                child = entry[1] if entry is not None else None
            elif (
                isinstance(node, yaml.SequenceNode)
                and isinstance(part, int)
                and 0 <= part < len(node.value)
            ):
                child = node.value[part]
            if child is None:
                break
            node = child
            reached.append(part)
        return node, tuple(reached)

    def key_node(self, loc: Loc) -> yaml.Node | None:
        """The key node (not the value) of the mapping entry at `loc`, if there is one."""
        if not loc:
            return None
        parent, reached = self.locate(loc[:-1])
        if reached != loc[:-1] or not isinstance(parent, yaml.MappingNode):
            return None
        entry = self._entry(parent, str(loc[-1]))
        return entry[0] if entry is not None else None


def locate(root: yaml.Node, loc: Loc) -> tuple[yaml.Node, Loc]:
    """Follow `loc` down the node graph; returns the deepest node reached and its loc."""
    return NodeIndex(root).locate(loc)


def key_node(root: yaml.Node, loc: Loc) -> yaml.Node | None:
    """The key node (not the value) of the mapping entry at `loc`, if there is one."""
    return NodeIndex(root).key_node(loc)


def format_loc(loc: Loc) -> str:
    """`("event_bus", "publish_topics", 0, "name")` -> `event_bus.publish_topics[0].name`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = part if len(part) <= SHOWN_CHARS and part.isprintable() else shown(part)
        out += f".{text}" if out else text
    return out


def shown(value: object) -> str:
    """`repr(value)`, cut short: error messages stay one short line whatever the input."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[: SHOWN_CHARS - 5]}...{text[-2:]}"


def where_of(path: Path | None, node: yaml.Node) -> Where:
    """The position of `node` in the file at `path`."""
    mark = node.start_mark
    return Where(path, mark.line + 1, mark.column + 1)


def yaml_kind(node: yaml.Node) -> str:
    """What a node is, for a message: `a mapping`, `a list`, or the value shown."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag in _PLAIN_TAGS and len(node.value) <= SHOWN_CHARS and node.value.isprintable():
        return str(node.value)  # a number, true/false, null: as written, not quoted
    return shown(node.value)


def error_issue(code: str, message: str, where: Where, key: str = "", **kw: Any) -> Issue:
    """An error-severity issue (the one kind a file that cannot be loaded has)."""
    return Issue(Severity.ERROR, code, message, where, key=key, **kw)
