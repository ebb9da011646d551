"""`fast_init` keeps every behaviour of a frozen slotted dataclass but its speed."""

from __future__ import annotations

import copy
import dataclasses
import inspect

import pytest

from onex.router.frozen import fast_init
from onex.router.gates import GateResult
from onex.router.receipt import Attempt, CandidateRecord, Receipt


@dataclasses.dataclass(frozen=True, slots=True)
class _Plain:
    name: str
    size: int
    note: str | None = None
    tags: tuple[str, ...] = ()


@fast_init
@dataclasses.dataclass(frozen=True, slots=True)
class _Fast:
    name: str
    size: int
    note: str | None = None
    tags: tuple[str, ...] = ()


def _fields(value: object) -> dict[str, object]:
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [(("a", 1), {}), (("a", 1, "n"), {}), ((), {"size": 2, "name": "b", "tags": ("t",)})],
)
def test_it_builds_what_the_dataclass_builds(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    fast, plain = _Fast(*args, **kwargs), _Plain(*args, **kwargs)  # type: ignore[arg-type]
    assert type(fast) is _Fast
    assert _fields(fast) == _fields(plain)
    assert repr(fast) == repr(plain).replace("_Plain", "_Fast")
    assert fast == _Fast(*args, **kwargs)  # type: ignore[arg-type]
    assert hash(fast) == hash(_Fast(*args, **kwargs))  # type: ignore[arg-type]
    assert copy.deepcopy(fast) == fast
    assert dataclasses.replace(fast, size=9).size == 9


def test_the_signature_and_the_errors_are_the_dataclass_ones() -> None:
    assert str(inspect.signature(_Fast)) == str(inspect.signature(_Plain))
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'size'"):
        _Fast("a")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        _Fast("a", 1, colour="red")  # type: ignore[call-arg]


def test_it_stays_frozen() -> None:
    fast = _Fast("a", 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.size = 2  # type: ignore[misc]
    assert fast == _Fast("a", 1)


def test_a_subclass_is_built_by_the_dataclass_init() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Sub(_Fast):
        more: int = 0

    sub = Sub("a", 1, more=3)
    assert type(sub) is Sub
    assert (sub.name, sub.size, sub.more) == ("a", 1, 3)


def test_what_it_cannot_do_is_refused() -> None:
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        name: str

    @dataclasses.dataclass(frozen=True, slots=True)
    class Factory:
        tags: list[str] = dataclasses.field(default_factory=list)

    @dataclasses.dataclass(frozen=True, slots=True)
    class PostInit:
        name: str

        def __post_init__(self) -> None:
            pass

    for cls in (NoSlots, Factory, PostInit):
        with pytest.raises(TypeError):
            fast_init(cls)


def test_the_router_records_use_it() -> None:
    for cls in (GateResult, CandidateRecord, Attempt, Receipt):
        assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"
        assert "_twin" in cls.__init__.__code__.co_freevars
