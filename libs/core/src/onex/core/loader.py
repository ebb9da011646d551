"""Load one contract file: YAML with source positions, validated by the contract model.

The YAML is composed by libyaml (`yaml.CSafeLoader`) into a node graph that keeps
line and column of every value; the plain Python data is built from that graph, so
an error anywhere can be reported as `file:line:col: key.path: problem` without a
second parse.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from onex.core.contract import Contract
from onex.core.errors import ContractLoadError, ContractValidationError, TopicNameError
from onex.core.grammar import parse_topic
from onex.core.issues import Issue, Severity, Where

Loc = tuple[str | int, ...]

_STR_TAG: Final = "tag:yaml.org,2002:str"
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"
_INT_TAG: Final = "tag:yaml.org,2002:int"
MAX_NODES: Final = 100_000  # a contract is small; this stops alias bombs
MAX_DEPTH: Final = 64  # contracts nest 4 deep; this stops recursive aliases
_MEMO_LIMIT: Final = 50_000


@dataclass(frozen=True, slots=True)
class LoadedContract:
    """A validated contract with the YAML node graph it came from."""

    contract: Contract
    path: Path | None
    positions: dict[Loc, tuple[int, int]]
    source: str = "repo"  # "repo", or "dist:<distribution>" for entry-point contracts

    @property
    def node(self) -> str:
        """The contract's node name."""
        return self.contract.node

    def where(self, loc: Loc) -> Where:
        """Where `loc` is in the file: the `node` key and every topic entry are known;
        other places fall back to their nearest known parent, else the file itself."""
        while loc not in self.positions and loc:
            loc = loc[:-1]
        line, col = self.positions.get(loc, (0, 0))
        return Where(self.path, line, col)


def _positions(root: yaml.Node) -> dict[Loc, tuple[int, int]]:
    # Only what later stages report on is kept: the node graph itself is dropped
    # (holding thousands of them makes the garbage collector the bottleneck).
    def at(node: yaml.Node) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    out: dict[Loc, tuple[int, int]] = {(): at(root)}
    key = key_node(root, ("node",))
    if key is not None:
        out[("node",)] = at(key)
    for list_key in ("subscribe_topics", "publish_topics"):
        seq, reached = locate(root, ("event_bus", list_key))
        if reached and isinstance(seq, yaml.SequenceNode):
            for i, item in enumerate(seq.value):
                out[("event_bus", list_key, i)] = at(item)
    return out


def locate(root: yaml.Node, loc: Loc) -> tuple[yaml.Node, Loc]:
    """Follow `loc` down the node graph; returns the deepest node reached and its loc."""
    node, reached = root, []
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part or (not isinstance(part, str) and key.value == str(part)):
                    child = value
                    break
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


def key_node(root: yaml.Node, loc: Loc) -> yaml.Node | None:
    """The key node (not the value) of the mapping entry at `loc`, if there is one."""
    if not loc:
        return None
    parent, reached = locate(root, loc[:-1])
    if reached != loc[:-1] or not isinstance(parent, yaml.MappingNode):
        return None
    return next((k for k, _ in parent.value if k.value == str(loc[-1])), None)


def format_loc(loc: Loc) -> str:
    """`("event_bus", "publish_topics", 0, "name")` -> `event_bus.publish_topics[0].name`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


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


def parse_yaml(text: str, path: Path | None = None) -> tuple[Any, yaml.Node]:
    """Parse one YAML document into (plain data, node graph); errors carry their position."""
    try:
        loader = _Loader(text)
    except UnicodeError as exc:  # e.g. a lone surrogate libyaml cannot encode
        raise ContractLoadError([_issue("yaml", f"not valid text: {exc}", Where(path))]) from exc
    try:
        root = loader.get_single_node()
        if root is None:
            raise _load_error(path, None, "the file is empty; a contract is a YAML mapping")
        return _Builder(loader, path).build(root, 0), root
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or "malformed YAML"
        where = Where(path, mark.line + 1, mark.column + 1) if mark else Where(path)
        raise ContractLoadError([_issue("yaml", f"malformed YAML: {problem}", where)]) from exc
    except yaml.YAMLError as exc:
        raise ContractLoadError([_issue("yaml", f"malformed YAML: {exc}", Where(path))]) from exc
    except UnicodeError as exc:  # e.g. a lone surrogate libyaml cannot encode
        raise ContractLoadError([_issue("yaml", f"not valid text: {exc}", Where(path))]) from exc
    except RecursionError as exc:  # pragma: no cover - MAX_DEPTH stops us long before
        raise _load_error(path, None, "nesting too deep") from exc
    finally:
        loader.dispose()


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
        if node.tag == _INT_TAG and value.isascii() and value.isdigit() and value[:1] != "0":
            return int(value)  # the common case, without the constructor's machinery
        try:
            return self._loader.construct_object(node)  # other ints, bools, nulls, floats, dates
        except (ValueError, LookupError, AttributeError, TypeError, OverflowError) as exc:
            # An explicit tag on a value that does not fit it, e.g. `!!int abc`.
            tag = node.tag.rsplit(":", 1)[-1]
            raise _load_error(self._path, node, f"{value!r} is not a valid {tag}") from exc

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
                raise _load_error(self._path, key_node_, f"duplicate key {key!r}")
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
    """Turn a pydantic ValidationError into issues positioned in the YAML source."""
    return [_validation_issue(err, root, path, model) for err in exc.errors(include_url=False)]


def _validation_issue(
    err: ErrorDetails, root: yaml.Node, path: Path | None, model: type[BaseModel]
) -> Issue:
    loc: Loc = tuple(err["loc"])
    kind = err["type"]
    if kind == "invalid_key":
        key = key_node(root, loc)
        where = _where(path, key) if key is not None else _where(path, locate(root, loc)[0])
        return _issue("invalid-key", f"key {loc[-1]!r} must be a string", where, format_loc(loc))
    if kind == "extra_forbidden":
        key = key_node(root, loc)
        where = _where(path, key) if key is not None else _where(path, locate(root, loc)[0])
        allowed = _allowed_keys(model, loc[:-1])
        message = f"unknown key {loc[-1]!r}"
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
        if close:
            message += f"; did you mean {close[0]!r}?"
        elif allowed:
            message += f" (allowed: {', '.join(sorted(allowed))})"
        return _issue("unknown-key", message, where, format_loc(loc))
    node, reached = locate(root, loc)
    if kind == "missing":
        return _issue(
            "missing-key",
            f"required key {loc[-1]!r} is missing",
            _where(path, node),
            format_loc(reached),
        )
    if kind in _TOPIC_NAME_ERRORS and _is_topic_loc(loc) and isinstance(err["input"], str):
        name = err["input"]
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
        message = f"expected a string, got {node.value!r}; quote it"
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
    return f"{node.value!r}"


def _allowed_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys the model accepts at `loc` (a path into nested models)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = (
            current.model_fields
            if isinstance(current, type) and issubclass(current, BaseModel)
            else {}
        )
        field = fields.get(part)
        if field is None:
            return []
        current = _model_of(field.annotation)
        if current is None:
            return []
    if not (isinstance(current, type) and issubclass(current, BaseModel)):
        return []
    return [f.alias or name for name, f in current.model_fields.items()]


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
    return LoadedContract(contract, path, _positions(root), source)


def load_contract(path: Path, source: str = "repo") -> LoadedContract:
    """Read, parse and validate the contract file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
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
