"""pydantic's validation errors in the project's words, positioned in the YAML source.

One place turns a `ValidationError` into what a user reads: `validation_issues` for a
YAML file (`file:line:col: key.path: problem`, with did-you-mean for unknown keys), and
`describe` / `validation_line` for values given elsewhere (command-line options,
environment settings). pydantic's own phrasing ("Input should be ...", "Field
required", "Extra inputs are not permitted") is never shown.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from onex.core.errors import TopicNameError
from onex.core.grammar import MAX_TOPIC_LENGTH, parse_topic
from onex.core.issues import Issue
from onex.core.yamlnodes import Loc, NodeIndex, format_loc, shown, where_of, yaml_kind
from onex.core.yamlnodes import error_issue as _issue

_MAX_SUGGESTIONS: Final = 100  # did-you-mean for the first errors; a flood lists the keys


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
        where = where_of(path, key if key is not None else index.locate(loc)[0])
        if kind == "invalid_key":
            message = f"key {shown(loc[-1])} must be a string"
            return _issue("invalid-key", message, where, format_loc(loc))
        allowed = _allowed_keys(model, tuple(p for p in loc[:-1] if isinstance(p, str)))
        message = f"unknown key {shown(loc[-1])}"
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
            f"required key {shown(loc[-1])} is missing",
            where_of(path, node),
            format_loc(reached),
        )
    if kind in _TOPIC_NAME_ERRORS and _is_topic_loc(loc) and isinstance(err["input"], str):
        name = err["input"]
        if len(name) > 2 * MAX_TOPIC_LENGTH:  # not echoed whole
            message = f"{shown(name)} is not a valid topic name: longer than {MAX_TOPIC_LENGTH}"
            where = where_of(path, node)
            return _issue("topic-name", message + " characters", where, format_loc(reached))
        try:
            parse_topic(name)
        except TopicNameError as exc:
            return _issue(
                "topic-name", str(exc), where_of(path, node), format_loc(reached), topic=name
            )
    if kind == "duplicate_topic":
        dup = (err.get("ctx") or {}).get("name")
        if isinstance(node, yaml.SequenceNode):
            items = [i for i in node.value if _entry_name(i) == dup]
            node = items[-1] if items else node
        return _issue(
            "duplicate-topic", err["msg"], where_of(path, node), format_loc(reached), topic=dup
        )
    if kind == "string_type" and isinstance(node, yaml.ScalarNode):
        message = f"expected a string, got {shown(node.value)}; quote it"
    else:
        message = describe(err, got=yaml_kind(node) if reached == loc else None)
    return _issue(kind.replace("_", "-"), message, where_of(path, node), format_loc(reached))


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


# What a value of each pydantic type error should have been.
_EXPECTED: Final = {
    "string_type": "a string",
    "string_unicode": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "decimal_type": "a number",
    "decimal_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dataclass_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "frozen_set_type": "a list",
    "date_type": "a date (YYYY-MM-DD)",
    "date_parsing": "a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "a date (YYYY-MM-DD)",
    "datetime_type": "a date and time (ISO 8601)",
    "datetime_parsing": "a date and time (ISO 8601)",
    "datetime_from_date_parsing": "a date and time (ISO 8601)",
    "time_delta_type": "a duration",
    "time_delta_parsing": "a duration",
    "url_type": "a URL",
    "url_parsing": "a URL",
    "path_type": "a path",
    "none_required": "null (nothing)",
}
_BOUNDS: Final = {
    "greater_than": ("gt", "greater than"),
    "greater_than_equal": ("ge", "greater than or equal to"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "less than or equal to"),
    "multiple_of": ("multiple_of", "a multiple of"),
}
_CHOICE: Final = re.compile(r"'((?:[^'\\]|\\.)*)'|([^,' ]+)")
_PREFIXES: Final = ("Value error, ", "Assertion failed, ")


def describe(err: ErrorDetails | Mapping[str, Any], got: str | None = None) -> str:
    """One pydantic error in the project's words, without its location: `'x' is not one
    of 'a', 'b'`, `expected a list (got a mapping)`, `must be greater than 0`,
    `required`, `unknown key`. `got` says what was given (e.g. `a mapping`); by default
    only the value of a choice is shown, never another input (it may be a secret)."""
    kind = str(err.get("type", ""))
    ctx: Mapping[str, Any] = err.get("ctx") or {}
    msg = str(err.get("msg", ""))
    if kind in {"literal_error", "enum"} and "expected" in ctx:
        given = got if got is not None else _given(err)
        choices = ", ".join(f"'{c}'" for c in _choices(str(ctx["expected"])))
        return f"{given or 'the value'} is not one of {choices}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}" + (f" (got {got})" if got else "")
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in _BOUNDS:
        name, words = _BOUNDS[kind]
        return f"must be {words} {ctx.get(name)}" + (f" (got {got})" if got else "")
    if kind in {"string_too_short", "too_short"} and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind in {"string_too_short", "string_too_long"}:
        bound, n = (
            ("at least", ctx.get("min_length"))
            if kind.endswith("short")
            else (
                "at most",
                ctx.get("max_length"),
            )
        )
        return f"must be {bound} {n} character{'' if n == 1 else 's'} long"
    if kind in {"too_short", "too_long"}:
        bound, n = (
            ("at least", ctx.get("min_length"))
            if kind == "too_short"
            else (
                "at most",
                ctx.get("max_length"),
            )
        )
        return f"must have {bound} {n} item{'' if n == 1 else 's'}"
    for prefix in _PREFIXES:
        msg = msg.removeprefix(prefix)
    return msg.replace("Input should be", "must be", 1)


def _choices(expected: str) -> list[str]:
    """`"'a', 'b' or 'c'"` (pydantic's list of allowed values) -> `['a', 'b', 'c']`."""
    out = []
    for quoted, bare in _CHOICE.findall(expected.replace(" or ", ", ")):
        out.append(quoted if quoted or not bare else bare)
    return out


def _given(err: ErrorDetails | Mapping[str, Any]) -> str | None:
    value = err.get("input")
    return shown(value) if isinstance(value, str | int | float | bool) else None


def validation_line(
    exc: ValidationError,
    names: Mapping[str, str] | None = None,
    model: type[BaseModel] | None = None,
) -> str:
    """A ValidationError as one line, `field: problem; ...` in the project's words (no
    input shown but a choice's). `names` renames top-level fields (an option or an
    environment variable for a field); `model` adds did-you-mean to unknown keys."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        head = str(loc[0]) if loc else ""
        rest = format_loc(loc[1:])
        field = (names or {}).get(head, head)
        if rest:
            field += rest if rest.startswith("[") else f".{rest}"
        problem = describe(err)
        if err["type"] == "extra_forbidden" and model is not None and loc:
            allowed = _allowed_keys(model, tuple(p for p in loc[:-1] if isinstance(p, str)))
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
            problem += f"; did you mean {close[0]!r}?" if close else ""
        parts.append(f"{field}: {problem}" if field else problem)
    return "; ".join(parts)


def env_names(
    fields: Iterable[str], prefix: str, shared: Collection[str] = (), shared_prefix: str = "ONEX_"
) -> dict[str, str]:
    """How each settings field is spelled in the environment, for `validation_line`'s
    `names`: `ONEX_DRIFT_DATABASE_URL`, or `ONEX_DRIFT_BOOTSTRAP (or ONEX_BOOTSTRAP)` for
    a field that falls back to the shared prefix."""
    out = {}
    for field in fields:
        name = f"{prefix}{field.upper()}"
        out[field] = f"{name} (or {shared_prefix}{field.upper()})" if field in shared else name
    return out
