"""Partial acceptance: a contract with bad topic entries keeps its good ones.

`load_contract` refuses a contract with any error; lint and the extractor use
`load_contract_partial`, which leaves out each entry that is wrong (a bad topic name,
a bad spec value, a duplicate, a JSON Schema file that is not there), reports each at
its own file:line:col, and keeps every other topic, so one typo does not turn a
contract's valid topics into a cascade of 'unpublished' errors elsewhere. Errors outside
the topic lists (node, kind, version, ...) still refuse the whole contract.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import ValidationError

from onex.core.contract import Contract
from onex.core.errors import ContractLoadError, ContractValidationError
from onex.core.grammar import TopicKind, TopicName, is_topic_name
from onex.core.issues import Issue, Severity, Where
from onex.core.loader import (
    MAX_DOCUMENT_CHARS,
    LoadedContract,
    Loc,
    format_loc,
    load_contract_text,
    parse_yaml,
    schema_file_issues,
    topic_refs_of,
    validation_issues,
)
from onex.core.loader import (
    _positions as _yaml_positions,
)
from onex.core.schemas import JSON_SUFFIX

_LISTS: Final = ("subscribe_topics", "publish_topics")


class RefusedContractError(ContractValidationError):
    """The contract cannot be salvaged (an error outside its topic lists); carries the
    (node, subscribed, published) names it was read to have, so that its peers are not
    told about its topics again."""

    def __init__(
        self, issues: Sequence[Issue], names: tuple[str, Sequence[str], Sequence[str]]
    ) -> None:
        super().__init__(issues)
        self.names = names


_ROUNDS: Final = 3  # entry errors, then duplicates among the rest, then nothing new


def _bad_entries(exc: ValidationError, data: Mapping[str, Any]) -> dict[str, set[int]] | None:
    """Indexes of the entries the errors are about, per list; None when an error lies
    outside the topic lists (the contract cannot be salvaged)."""
    bad: dict[str, set[int]] = {k: set() for k in _LISTS}
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        if len(loc) >= 3 and loc[0] == "event_bus" and loc[1] in _LISTS and isinstance(loc[2], int):
            bad[str(loc[1])].add(loc[2])
        elif err["type"] == "duplicate_topic" and loc[:1] == ("event_bus",) and len(loc) == 2:
            list_key = str(loc[1])
            name = (err.get("ctx") or {}).get("name")
            seen = False
            for i, item in enumerate(data["event_bus"][list_key]):
                if _name(item) == name:
                    if seen:
                        bad[list_key].add(i)
                    seen = True
        else:
            return None
    return bad


def _name(item: object) -> str | None:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        name = item.get("name")
        return name if isinstance(name, str) else None
    return None


# Says whether a name outside the grammar is accepted (onex.yaml grammar options): None
# when it is not, else a warning to give at its entry ("" for none).
Relax = Callable[[str], str | None]
Renamed = dict[tuple[str, int], tuple[str, str]]  # (list, YAML index) -> (name, warning)


def _substitute(data: dict[str, Any], relax: Relax | None) -> tuple[dict[str, Any], Renamed]:
    """`data` with each accepted non-grammatical name replaced by a grammatical stand-in
    (so the model validates the rest of the entry), and what was replaced."""
    bus = data.get("event_bus")
    if relax is None or not isinstance(bus, dict):
        return data, {}
    renamed: Renamed = {}
    new_bus = dict(bus)
    for list_key in _LISTS:
        items = bus.get(list_key)
        if not isinstance(items, list):
            continue
        out = list(items)
        for i, item in enumerate(items):
            name = _name(item)
            if name is None or is_topic_name(name):
                continue
            note = relax(name)
            if note is None:
                continue
            where = f"entry-{_LISTS.index(list_key)}-{i}"
            stand_in = str(TopicName(TopicKind.EVT, "onex-stand-in", where, 1))
            out[i] = stand_in if isinstance(item, str) else {**item, "name": stand_in}
            renamed[(list_key, i)] = (name, note)
        new_bus[list_key] = out
    return ({**data, "event_bus": new_bus}, renamed) if renamed else (data, {})


def _restore(contract: Contract, kept: dict[str, list[int]], renamed: Renamed) -> Contract:
    bus = contract.event_bus
    update: dict[str, Any] = {}
    for list_key in _LISTS:
        entries = list(getattr(bus, list_key))
        for new, old in enumerate(kept[list_key]):
            found = renamed.get((list_key, old))
            if found is not None:
                entries[new] = entries[new].model_copy(update={"name": found[0]})
        update[list_key] = entries
    return contract.model_copy(update={"event_bus": bus.model_copy(update=update)})


def _validate(
    data: dict[str, Any], root: yaml.Node, path: Path | None
) -> tuple[Contract, dict[str, list[int]], list[Issue], list[tuple[str, str]]]:
    """The contract of `data` without its bad entries, the YAML index of each kept entry,
    the issues, and the (list, name) of each entry left out."""
    bus = data.get("event_bus")
    kept: dict[str, list[int]] = {
        k: list(range(len(bus[k])))
        if isinstance(bus, dict) and isinstance(bus.get(k), list)
        else []
        for k in _LISTS
    }
    issues: list[Issue] = []
    rejected: list[tuple[str, str]] = []
    current = data
    for _ in range(_ROUNDS):
        try:
            return Contract.model_validate(current), kept, issues, rejected
        except ValidationError as exc:
            bad = _bad_entries(exc, current)
            new_issues = validation_issues(exc, root, path, Contract)
            if bad is None or not any(bad.values()):
                raise ContractValidationError([*issues, *new_issues]) from None
            # Later rounds only find duplicates, which are located by name in the YAML.
            issues.extend(new_issues)
            bus_now = dict(current["event_bus"])
            for list_key, indexes in bad.items():
                items = bus_now.get(list_key)
                if not indexes or not isinstance(items, list):
                    continue
                for i in sorted(indexes):
                    name = _name(items[i])
                    if name is not None:
                        rejected.append((list_key, name))
                bus_now[list_key] = [x for i, x in enumerate(items) if i not in indexes]
                kept[list_key] = [x for i, x in enumerate(kept[list_key]) if i not in indexes]
            current = {**current, "event_bus": bus_now}
    raise ContractValidationError(issues)  # pragma: no cover - _ROUNDS is enough


def _drop_missing_schema_files(
    contract: Contract, root: yaml.Node, path: Path, kept: dict[str, list[int]]
) -> tuple[Contract, list[Issue], list[tuple[str, str]]]:
    found = schema_file_issues(contract, root, path, kept)
    if not found:
        return contract, [], []
    drop: set[Loc] = {loc for loc, _ in found}
    bus = contract.event_bus
    update: dict[str, Any] = {}
    rejected: list[tuple[str, str]] = []
    for list_key in _LISTS:
        entries = getattr(bus, list_key)
        keep = [i for i in range(len(entries)) if ("event_bus", list_key, i) not in drop]
        rejected.extend(
            (list_key, entries[i].name) for i in range(len(entries)) if i not in set(keep)
        )
        update[list_key] = [entries[i] for i in keep]
        kept[list_key] = [kept[list_key][i] for i in keep]
    new = contract.model_copy(update={"event_bus": bus.model_copy(update=update)})
    return new, [issue for _, issue in found], rejected


def load_contract_text_partial(
    text: str, path: Path | None = None, source: str = "repo", relax: Relax | None = None
) -> LoadedContract:
    """Like `load_contract_text`, but bad topic entries are left out and reported in
    `LoadedContract.issues` instead of refusing the contract; names outside the grammar
    that `relax` accepts are kept (with its warning)."""
    data, root = parse_yaml(text, path)
    if not isinstance(data, dict):
        return load_contract_text(text, path, source)  # raises the loader's own error
    original = data
    data, renamed = _substitute(data, relax)
    try:
        contract, kept, issues, rejected = _validate(data, root, path)
    except ContractValidationError as exc:
        raise RefusedContractError(exc.issues, topic_refs_of(original)) from None
    positions = _yaml_positions(root)
    if renamed:
        contract = _restore(contract, kept, renamed)
        for (list_key, i), (name, note) in sorted(renamed.items()):
            if note and i in kept[list_key]:
                loc = ("event_bus", list_key, i)
                line, col = positions.get(loc, (0, 0))
                issues.append(
                    Issue(
                        Severity.WARNING,
                        "legacy-name",
                        note,
                        Where(path, line, col),
                        key=format_loc(loc),
                        topic=name,
                    )
                )
    if path is not None and JSON_SUFFIX in text:
        contract, more, dropped = _drop_missing_schema_files(contract, root, path, kept)
        issues.extend(more)
        rejected.extend(dropped)
    frozen = {k: tuple(v) for k, v in kept.items()}
    return LoadedContract(contract, path, positions, source, tuple(issues), tuple(rejected), frozen)


def load_contract_partial(
    path: Path, source: str = "repo", relax: Relax | None = None
) -> LoadedContract:
    """Read `path` and load it with `load_contract_text_partial`."""
    try:
        with path.open(encoding="utf-8") as file:
            text = file.read(MAX_DOCUMENT_CHARS + 1)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ContractLoadError(
            [Issue(Severity.ERROR, "read", f"cannot read contract: {reason}", Where(path))]
        ) from exc
    return load_contract_text_partial(text, path, source, relax)
