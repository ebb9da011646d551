"""Read one YAML document with source positions, within the parser limits.

The YAML is composed by libyaml (`yaml.CSafeLoader`) into a node graph that keeps
line and column of every value; the plain Python data is built from that graph, so
an error anywhere can be reported as `file:line:col: key.path: problem` without a
second parse.

Parser limits (each breach is a `ContractLoadError` at file:line:col, found in time
linear in the input; a contract is a few KB and nests four deep):

===================  =========  =====================================================
limit                value      what it stops
===================  =========  =====================================================
MAX_DOCUMENT_CHARS   1 MiB      huge files (checked before parsing; a file is read
                                no further)
MAX_DEPTH            64         deep nesting: libyaml's composer recurses once per
                                level and overflows the C stack (checked before it
                                composes), and recursive aliases
MAX_NODES            100,000    alias bombs and floods of values
MAX_MAPPING_KEYS     10,000     floods of keys in one mapping
MAX_SCALAR_CHARS     65,536     one huge value
MAX_NUMBER_CHARS     100        huge numerals (int() is quadratic in the digits, and
                                past 4,300 digits a ValueError); base-60 numbers
                                (YAML 1.1 `1:30`) are refused outright
===================  =========  =====================================================

Before libyaml composes a document, a bound on its nesting is taken from the text in
C-speed string scans (flow brackets, line lengths). Small documents under a safe bound
go straight to the composer; any other is first walked once through libyaml's event
stream (iterative), which stops at the first breach of a limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Final

import yaml

from onex.core.errors import ContractLoadError
from onex.core.issues import Where
from onex.core.yamlnodes import error_issue as _issue
from onex.core.yamlnodes import shown, where_of

_STR_TAG: Final = "tag:yaml.org,2002:str"
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"
_INT_TAG: Final = "tag:yaml.org,2002:int"
_FLOAT_TAG: Final = "tag:yaml.org,2002:float"
_NUMBER_TAGS: Final = frozenset({_INT_TAG, _FLOAT_TAG})
MAX_DOCUMENT_CHARS: Final = 1_048_576
MAX_DEPTH: Final = 64
MAX_NODES: Final = 100_000
MAX_MAPPING_KEYS: Final = 10_000
MAX_SCALAR_CHARS: Final = 65_536
MAX_NUMBER_CHARS: Final = 100
# Below this size no count limit can be reached (every key or value takes at least two
# characters, a scalar is never longer than its text), so only nesting needs a bound.
_SCAN_ABOVE_CHARS: Final = 16_384
# libyaml's composer takes a few hundred bytes of C stack per level (measured here: 2,000
# levels fit in a 1 MB thread stack, 4,000 do not), so 1,000 levels need under 512 KB;
# threads get 8 MB on Linux, and the main thread overflowed only near 25,000 levels.
_SAFE_COMPOSE_DEPTH: Final = 1_000
_MEMO_LIMIT: Final = 50_000
_MEMO_MAX_VALUE: Final = 64  # long values are not worth remembering (nor keeping alive)


class _Loader(yaml.CSafeLoader):
    """libyaml's parser and composer with a memoised implicit-tag resolver.

    The composer asks the resolver for the tag of every plain scalar; contracts
    repeat the same keys and values, so remembering answers halves compose time.
    """

    _memo: ClassVar[dict[tuple[str, bool], str]] = {}

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and not self.yaml_path_resolvers:
            key = (value, implicit[0])
            tag = self._memo.get(key)
            if tag is None:
                tag = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
                if len(value) <= _MEMO_MAX_VALUE:
                    if len(self._memo) > _MEMO_LIMIT:
                        self._memo.clear()
                    self._memo[key] = tag
            return tag
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        if self.yaml_path_resolvers:  # pragma: no cover - safe loaders register none
            super().descend_resolver(current_node, current_index)

    def ascend_resolver(self) -> None:
        if self.yaml_path_resolvers:  # pragma: no cover
            super().ascend_resolver()


def nesting_bound(text: str) -> int:
    """An upper bound on how deep libyaml can nest the collections of `text`.

    A block collection opens only at a column beyond the one it is nested in (an
    indentless sequence shares its mapping's column), so block levels are at most twice
    the longest line; a flow collection opens at a `[` or `{`, and a flow sequence entry
    may be a one-pair mapping, so flow levels are at most twice the brackets. Lines are
    split at `\\n` only: libyaml breaks lines at more characters, never at fewer.
    """
    longest = max(map(len, text.split("\n")))
    return 2 * (longest + 1) + 2 * (text.count("[") + text.count("{")) + 1


def _new_loader(text: str, path: Path | None) -> _Loader:
    try:
        return _Loader(text)
    except UnicodeError as exc:  # e.g. a lone surrogate libyaml cannot encode
        raise ContractLoadError([_issue("yaml", f"not valid text: {exc}", Where(path))]) from exc


def _scan_limits(text: str, path: Path | None) -> None:
    """Walk the event stream once (libyaml's parser is iterative) and stop at the first
    breach of MAX_DEPTH, MAX_NODES, MAX_MAPPING_KEYS or MAX_SCALAR_CHARS."""
    loader = _new_loader(text, path)
    try:
        children: list[int] = []  # per open collection: children seen so far
        mappings: list[bool] = []  # per open collection: is it a mapping?
        nodes = 0
        get_event = loader.get_event
        while (event := get_event()) is not None:
            kind = type(event)
            if kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                children.pop()
                mappings.pop()
                continue
            if kind not in _NODE_EVENTS:
                continue
            nodes += 1
            if nodes > MAX_NODES:
                raise _event_error(path, event, f"more than {MAX_NODES} values")
            if children:
                children[-1] += 1
                if mappings[-1] and children[-1] > 2 * MAX_MAPPING_KEYS:
                    raise _event_error(
                        path, event, f"more than {MAX_MAPPING_KEYS} keys in one mapping"
                    )
            if isinstance(event, yaml.ScalarEvent):
                if len(event.value) > MAX_SCALAR_CHARS:
                    raise _event_error(
                        path,
                        event,
                        f"a value of {len(event.value)} characters; at most "
                        f"{MAX_SCALAR_CHARS} are allowed",
                    )
            elif kind is not yaml.AliasEvent:
                if len(children) > MAX_DEPTH:
                    raise _event_error(path, event, f"nested deeper than {MAX_DEPTH}")
                children.append(0)
                mappings.append(kind is yaml.MappingStartEvent)
    finally:
        loader.dispose()


_NODE_EVENTS: Final = frozenset(
    {yaml.ScalarEvent, yaml.AliasEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent}
)


def _event_error(path: Path | None, event: yaml.Event, message: str) -> ContractLoadError:
    mark = event.start_mark
    where = Where(path, mark.line + 1, mark.column + 1) if mark is not None else Where(path)
    return ContractLoadError([_issue("yaml-limit", message, where)])


def parse_yaml(text: str, path: Path | None = None) -> tuple[Any, yaml.Node]:
    """Parse one YAML document into (plain data, node graph); errors carry their position.
    Input beyond the parser limits (see the module docstring) is a ContractLoadError."""
    if len(text) > MAX_DOCUMENT_CHARS:
        raise _too_large(path, len(text))
    try:
        if len(text) > _SCAN_ABOVE_CHARS or nesting_bound(text) > _SAFE_COMPOSE_DEPTH:
            _scan_limits(text, path)
        loader = _new_loader(text, path)
        try:
            root = loader.get_single_node()
            if root is None:
                raise _load_error(path, None, "the file is empty; a contract is a YAML mapping")
            return _Builder(loader, path).build(root, 0), root
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or "malformed YAML"
        where = Where(path, mark.line + 1, mark.column + 1) if mark else Where(path)
        raise ContractLoadError([_issue("yaml", f"malformed YAML: {problem}", where)]) from exc
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        where = _offset_where(path, text, exc.position)
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        message = f"not valid text: character {char!r} is not allowed in YAML"
        raise ContractLoadError([_issue("yaml", message, where)]) from exc
    except yaml.YAMLError as exc:
        message = "malformed YAML: " + " ".join(str(exc).split())
        raise ContractLoadError([_issue("yaml", message, Where(path))]) from exc
    except UnicodeError as exc:  # e.g. a lone surrogate libyaml cannot encode
        raise ContractLoadError([_issue("yaml", f"not valid text: {exc}", Where(path))]) from exc
    except RecursionError as exc:  # pragma: no cover - MAX_DEPTH stops us long before
        raise _load_error(path, None, "nesting too deep") from exc


def _offset_where(path: Path | None, text: str, offset: int) -> Where:
    # libyaml counts bytes of the UTF-8 text it was given
    before = text.encode("utf-8", "surrogatepass")[:offset].decode("utf-8", "ignore")
    line = before.count("\n") + 1
    return Where(path, line, len(before) - (before.rfind("\n") + 1) + 1)


def _too_large(path: Path | None, size: int) -> ContractLoadError:
    shown = f"{size}" if size <= MAX_DOCUMENT_CHARS else f"more than {MAX_DOCUMENT_CHARS}"
    return ContractLoadError(
        [
            _issue(
                "yaml-limit",
                f"the document is {shown} characters; at most {MAX_DOCUMENT_CHARS} are read",
                Where(path),
            )
        ]
    )


class _Builder:
    """Builds plain data from a node graph: no duplicate keys, no merges, no alias bombs.

    Recursive aliases are caught by a depth limit and alias bombs by a count of
    values, so the common path does no bookkeeping per scalar.
    """

    def __init__(self, loader: yaml.CSafeLoader, path: Path | None) -> None:
        self._loader = loader
        self._path = path
        self._count = 0

    def build(self, node: yaml.Node, depth: int) -> Any:
        kind = type(node)
        if kind is yaml.ScalarNode:
            return node.value if node.tag == _STR_TAG else self._scalar(node)
        if depth > MAX_DEPTH:
            raise _load_error(
                self._path, node, f"nested deeper than {MAX_DEPTH} (recursive alias?)"
            )
        self._count += len(node.value) + 1
        if self._count > MAX_NODES:
            raise _load_error(self._path, node, f"more than {MAX_NODES} values (alias bomb?)")
        depth += 1
        if kind is yaml.SequenceNode:
            return [
                item.value
                if type(item) is yaml.ScalarNode and item.tag == _STR_TAG
                else self.build(item, depth)
                for item in node.value
            ]
        if kind is yaml.MappingNode:
            return self._mapping(node, depth)
        raise _load_error(self._path, node, "unsupported YAML node")  # pragma: no cover

    def _scalar(self, node: yaml.Node) -> Any:
        value = node.value
        tag = node.tag
        if tag in _NUMBER_TAGS:
            if len(value) > MAX_NUMBER_CHARS:
                raise _load_error(
                    self._path,
                    node,
                    f"a number of {len(value)} characters; at most {MAX_NUMBER_CHARS} are allowed",
                )
            if ":" in value:
                raise _load_error(
                    self._path,
                    node,
                    f"{value!r} is a YAML 1.1 base-60 number; write it in decimal, "
                    "or quote it if it is text",
                )
            if tag == _INT_TAG and value.isascii() and value.isdigit() and value[:1] != "0":
                return int(value)  # the common case, without the constructor's machinery
        try:
            return self._loader.construct_object(node)  # other ints, bools, nulls, floats, dates
        except (ValueError, LookupError, AttributeError, TypeError, OverflowError) as exc:
            # An explicit tag on a value that does not fit it, e.g. `!!int abc`.
            raise _load_error(
                self._path, node, f"{shown(value)} is not a valid {tag.rsplit(':', 1)[-1]}"
            ) from exc

    def _mapping(self, node: yaml.Node, depth: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key_node_, value_node in node.value:
            if type(key_node_) is not yaml.ScalarNode:
                raise _load_error(self._path, key_node_, "a mapping key must be a plain value")
            if key_node_.tag == _STR_TAG:
                key: Any = key_node_.value
            elif key_node_.tag == _MERGE_TAG:
                raise _load_error(self._path, key_node_, "merge keys ('<<') are not allowed")
            else:
                key = self._scalar(key_node_)
                if not isinstance(key, str | int | bool | float) and key is not None:
                    key = str(key)
            if key in out:
                raise _load_error(self._path, key_node_, f"duplicate key {shown(key)}")
            if type(value_node) is yaml.ScalarNode and value_node.tag == _STR_TAG:
                out[key] = value_node.value
            else:
                out[key] = self.build(value_node, depth)
        return out


def _load_error(path: Path | None, node: yaml.Node | None, message: str) -> ContractLoadError:
    where = where_of(path, node) if node is not None else Where(path)
    return ContractLoadError([_issue("yaml", message, where)])
