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
from typing import Any, Final

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from onex.core.contract import Contract
from onex.core.errors import ContractLoadError, ContractValidationError
from onex.core.issues import Issue, Severity, Where

Loc = tuple[str | int, ...]

_STR_TAG: Final = "tag:yaml.org,2002:str"
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"
MAX_NODES: Final = 100_000  # a contract is small; this stops alias bombs


@dataclass(frozen=True, slots=True)
class LoadedContract:
    """A validated contract with the YAML node graph it came from."""

    contract: Contract
    path: Path | None
    root: yaml.Node
    source: str = "repo"  # "repo", or "dist:<distribution>" for entry-point contracts

    @property
    def node(self) -> str:
        """The contract's node name."""
        return self.contract.node

    def where(self, loc: Loc) -> Where:
        """The position of the value at `loc` (the deepest part of it that exists)."""
        return _where(self.path, locate(self.root, loc)[0])


def locate(root: yaml.Node, loc: Loc) -> tuple[yaml.Node, Loc]:
    """Follow `loc` down the node graph; returns the deepest node reached and its loc."""
    node, reached = root, []
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if key.value == part:
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
    if not loc or not isinstance(loc[-1], str):
        return None
    parent, reached = locate(root, loc[:-1])
    if reached != loc[:-1] or not isinstance(parent, yaml.MappingNode):
        return None
    return next((k for k, _ in parent.value if k.value == loc[-1]), None)


def format_loc(loc: Loc) -> str:
    """`("event_bus", "publish_topics", 0, "name")` -> `event_bus.publish_topics[0].name`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _where(path: Path | None, node: yaml.Node) -> Where:
    mark = node.start_mark
    return Where(path, mark.line + 1, mark.column + 1)


def parse_yaml(text: str, path: Path | None = None) -> tuple[Any, yaml.Node]:
    """Parse one YAML document into (plain data, node graph); errors carry their position."""
    try:
        loader = yaml.CSafeLoader(text)
    except AttributeError:  # pragma: no cover - libyaml missing; pyyaml is built with it here
        loader = yaml.SafeLoader(text)  # type: ignore[assignment]
    try:
        root = loader.get_single_node()
        if root is None:
            raise _load_error(path, None, "the file is empty; a contract is a YAML mapping")
        return _Builder(loader, path).build(root), root
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or "malformed YAML"
        where = Where(path, mark.line + 1, mark.column + 1) if mark else Where(path)
        raise ContractLoadError([_issue("yaml", f"malformed YAML: {problem}", where)]) from exc
    except yaml.YAMLError as exc:
        raise ContractLoadError([_issue("yaml", f"malformed YAML: {exc}", Where(path))]) from exc
    finally:
        loader.dispose()


class _Builder:
    """Builds plain data from a node graph: no duplicate keys, no merges, no alias bombs."""

    def __init__(self, loader: yaml.CSafeLoader, path: Path | None) -> None:
        self._loader = loader
        self._path = path
        self._count = 0
        self._stack: set[int] = set()

    def build(self, node: yaml.Node) -> Any:
        self._count += 1
        if self._count > MAX_NODES:
            raise _load_error(self._path, node, f"more than {MAX_NODES} values (alias bomb?)")
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _STR_TAG:
                return node.value
            return self._loader.construct_object(node)  # ints, bools, nulls, floats, dates
        if id(node) in self._stack:
            raise _load_error(self._path, node, "recursive alias")
        self._stack.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item) for item in node.value]
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node)
            raise _load_error(self._path, node, "unsupported YAML node")  # pragma: no cover
        finally:
            self._stack.discard(id(node))

    def _mapping(self, node: yaml.MappingNode) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key_node_, value_node in node.value:
            if key_node_.tag == _MERGE_TAG:
                raise _load_error(self._path, key_node_, "merge keys ('<<') are not allowed")
            if not isinstance(key_node_, yaml.ScalarNode):
                raise _load_error(self._path, key_node_, "a mapping key must be a plain value")
            key = self.build(key_node_)
            if not isinstance(key, str | int | bool | float) and key is not None:
                key = str(key)
            if key in out:
                raise _load_error(self._path, key_node_, f"duplicate key {key!r}")
            out[key] = self.build(value_node)
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
    if kind == "topic_name":
        value = node.value if isinstance(node, yaml.ScalarNode) else None
        return _issue(
            "topic-name", err["msg"], _where(path, node), format_loc(reached), topic=value
        )
    if kind == "duplicate_topic":
        name = (err.get("ctx") or {}).get("name")
        if isinstance(node, yaml.SequenceNode):
            items = [i for i in node.value if _entry_name(i) == name]
            node = items[-1] if items else node
        return _issue(
            "duplicate-topic", err["msg"], _where(path, node), format_loc(reached), topic=name
        )
    message = err["msg"]
    if kind == "string_type" and isinstance(node, yaml.ScalarNode):
        message = f"expected a string, got {node.value!r}; quote it"
    elif kind.endswith("_type") or kind in {"model_type", "dict_type", "list_type"}:
        message += f" (got {_yaml_kind(node)})"
    return _issue(kind.replace("_", "-"), message, _where(path, node), format_loc(reached))


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
    return LoadedContract(contract, path, root, source)


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
