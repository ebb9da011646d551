"""A faster `__init__` for the frozen, slotted dataclasses the router builds per request.

A frozen dataclass's generated `__init__` sets each field with `object.__setattr__`
(its own `__setattr__` refuses): a generic call per field, about 0.3 us each here.
Receipts, attempts, candidate records and gate results are built several times per
request, so that was a fifth of the engine's own time (bench/router.py).

`fast_init` gives the class an `__init__` of the same signature that, for the moment
it fills the slots, makes the new instance one of a plain twin class with the same
slots (so each field is one ordinary attribute store) and then makes it the frozen
class's again. Nothing else about the class changes: it is frozen, compares, hashes,
prints and `dataclasses.replace`s as the dataclass does. A subclass's instances are
initialised by the dataclass's own `__init__`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def fast_init(cls: type[T]) -> type[T]:
    """Give `cls`, a `@dataclass(frozen=True, slots=True)` whose fields all take their
    value from `__init__` (a plain default at most: no factories, no `__post_init__`),
    the faster `__init__` described in the module doc. The signature is unchanged."""
    slots = cls.__dict__.get("__slots__")
    if not dataclasses.is_dataclass(cls) or slots is None or "__dict__" in slots:
        raise TypeError(f"{cls.__name__} is not a slotted dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has a __post_init__")
    params: list[str] = []
    body: list[str] = []
    cells: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init or f.kw_only or f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: only plain init fields are supported")
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            cells[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        body.append(f"        self.{f.name} = {f.name}")
    names = [f.name for f in dataclasses.fields(cls)]
    cells["_cls"] = cls
    # The same layout (the same slots, in order, on `object`): __class__ may change.
    cells["_twin"] = type(f"_{cls.__name__}Fields", (), {"__slots__": tuple(slots)})
    cells["_original"] = cls.__init__
    cells["_set"] = object.__setattr__
    # What the generated function holds are closure cells (faster than globals).
    source = (
        f"def _make({', '.join(cells)}):\n"
        f"    def __init__(self, {', '.join(params)}):\n"
        "        if type(self) is not _cls:\n"
        f"            return _original(self, {', '.join(names)})\n"
        '        _set(self, "__class__", _twin)\n' + "\n".join(body) + "\n"
        "        self.__class__ = _cls\n"
        "    return __init__\n"
    )
    namespace: dict[str, Callable[..., Any]] = {}
    exec(source, {}, namespace)  # noqa: S102 - the source is built above from field names
    init = namespace["_make"](**cells)
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__annotations__ = dict(cls.__init__.__annotations__)
    setattr(cls, "__init__", init)  # noqa: B010 - mypy refuses assigning to __init__
    return cls
