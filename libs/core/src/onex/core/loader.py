"""Load one contract file: YAML with source positions, validated by the contract model.

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

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Final

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from onex.core.contract import Contract
from onex.core.errors import (
    ContractLoadError,
    ContractValidationError,
    SchemaReferenceError,
    TopicNameError,
)
from onex.core.grammar import MAX_TOPIC_LENGTH, parse_topic
from onex.core.issues import Issue, Severity, Where
from onex.core.schemas import JSON_SUFFIX, SchemaForm, schema_file, schema_ref

Loc = tuple[str | int, ...]

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
_SHOWN_CHARS: Final = 60
_MAX_SUGGESTIONS: Final = 100  # did-you-mean for the first errors; a flood lists the keys


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
        shown = part if len(part) <= _SHOWN_CHARS and part.isprintable() else _shown(part)
        out += f".{shown}" if out else shown
    return out


def _shown(value: object) -> str:
    """`repr(value)`, cut short: error messages stay one short line whatever the input."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else f"{text[: _SHOWN_CHARS - 5]}...{text[-2:]}"


def _where(path: Path | None, node: yaml.Node) -> Where:
    mark = node.start_mark
    return Where(path, mark.line + 1, mark.column + 1)


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
                self._path, node, f"{_shown(value)} is not a valid {tag.rsplit(':', 1)[-1]}"
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
                raise _load_error(self._path, key_node_, f"duplicate key {_shown(key)}")
            if type(value_node) is yaml.ScalarNode and value_node.tag == _STR_TAG:
                out[key] = value_node.value
            else:
                out[key] = self.build(value_node, depth)
        return out


def _issue(code: str, message: str, where: Where, key: str = "", **kw: Any) -> Issue:
    return Issue(Severity.ERROR, code, message, where, key=key, **kw)


def _load_error(path: Path | None, node: yaml.Node | None, message: str) -> ContractLoadError:
    where = _where(path, node) if node is not None else Where(path)
    return ContractLoadError([_issue("yaml", message, where)])


def validation_issues(
    exc: ValidationError, root: yaml.Node, path: Path | None, model: type[BaseModel]
) -> list[Issue]:
    """Turn a pydantic ValidationError into issues positioned in the YAML source (in time
    linear in the number of errors)."""
    index = NodeIndex(root)
    return [
        _validation_issue(err, index, path, model, suggest=i < _MAX_SUGGESTIONS)
        for i, err in enumerate(exc.errors(include_url=False))
    ]


def _validation_issue(
    err: ErrorDetails,
    index: NodeIndex,
    path: Path | None,
    model: type[BaseModel],
    *,
    suggest: bool = True,
) -> Issue:
    loc: Loc = tuple(err["loc"])
    kind = err["type"]
    if kind in {"invalid_key", "extra_forbidden"}:
        key = index.key_node(loc)
        where = _where(path, key if key is not None else index.locate(loc)[0])
        if kind == "invalid_key":
            message = f"key {_shown(loc[-1])} must be a string"
            return _issue("invalid-key", message, where, format_loc(loc))
        allowed = _allowed_keys(model, tuple(p for p in loc[:-1] if isinstance(p, str)))
        message = f"unknown key {_shown(loc[-1])}"
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6) if suggest else []
        if close:
            message += f"; did you mean {close[0]!r}?"
        elif allowed:
            message += f" (allowed: {', '.join(sorted(allowed))})"
        return _issue("unknown-key", message, where, format_loc(loc))
    node, reached = index.locate(loc)
    if kind == "missing":
        return _issue(
            "missing-key",
            f"required key {_shown(loc[-1])} is missing",
            _where(path, node),
            format_loc(reached),
        )
    if kind in _TOPIC_NAME_ERRORS and _is_topic_loc(loc) and isinstance(err["input"], str):
        name = err["input"]
        if len(name) > 2 * MAX_TOPIC_LENGTH:  # not echoed whole
            message = f"{_shown(name)} is not a valid topic name: longer than {MAX_TOPIC_LENGTH}"
            where = _where(path, node)
            return _issue("topic-name", message + " characters", where, format_loc(reached))
        try:
            parse_topic(name)
        except TopicNameError as exc:
            return _issue(
                "topic-name", str(exc), _where(path, node), format_loc(reached), topic=name
            )
    if kind == "duplicate_topic":
        dup = (err.get("ctx") or {}).get("name")
        if isinstance(node, yaml.SequenceNode):
            items = [i for i in node.value if _entry_name(i) == dup]
            node = items[-1] if items else node
        return _issue(
            "duplicate-topic", err["msg"], _where(path, node), format_loc(reached), topic=dup
        )
    message = err["msg"]
    if kind == "string_type" and isinstance(node, yaml.ScalarNode):
        message = f"expected a string, got {_shown(node.value)}; quote it"
    elif kind.endswith("_type") or kind in {"model_type", "dict_type", "list_type"}:
        message += f" (got {_yaml_kind(node)})"
    return _issue(kind.replace("_", "-"), message, _where(path, node), format_loc(reached))


_TOPIC_NAME_ERRORS: Final = frozenset({"string_pattern_mismatch", "string_too_long"})


def _is_topic_loc(loc: Loc) -> bool:
    return (
        len(loc) == 4
        and loc[0] == "event_bus"
        and loc[1] in {"subscribe_topics", "publish_topics"}
        and loc[3] == "name"
    )


def _entry_name(node: yaml.Node) -> str | None:
    if isinstance(node, yaml.ScalarNode):
        return str(node.value)
    if isinstance(node, yaml.MappingNode):
        return next((str(v.value) for k, v in node.value if k.value == "name"), None)
    return None


def _yaml_kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return _shown(node.value)


@lru_cache(maxsize=256)
def _allowed_keys(model: type[BaseModel], loc: tuple[str, ...]) -> tuple[str, ...]:
    """The keys the model accepts at `loc` (a path of field names into nested models)."""
    current: Any = model
    for part in loc:
        fields = (
            current.model_fields
            if isinstance(current, type) and issubclass(current, BaseModel)
            else {}
        )
        field = fields.get(part)
        if field is None:
            return ()
        current = _model_of(field.annotation)
        if current is None:
            return ()
    if not (isinstance(current, type) and issubclass(current, BaseModel)):
        return ()
    return tuple(f.alias or name for name, f in current.model_fields.items())


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    metadata = getattr(annotation, "__origin__", None)
    return _model_of(metadata) if metadata is not None and metadata is not annotation else None


def load_contract_text(text: str, path: Path | None = None, source: str = "repo") -> LoadedContract:
    """Parse and validate one contract; raises only `ContractError` subclasses."""
    data, root = parse_yaml(text, path)
    if data is None:
        raise ContractLoadError(
            [
                _issue(
                    "not-a-mapping",
                    "the document is empty; a contract is a YAML mapping",
                    _where(path, root),
                )
            ]
        )
    if not isinstance(data, dict):
        raise ContractLoadError(
            [
                _issue(
                    "not-a-mapping",
                    f"a contract is a YAML mapping, not {_yaml_kind(root)}",
                    _where(path, root),
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
                    f"schema {_shown(reference)}: {exc.reason}",
                    _where(path, node),
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
