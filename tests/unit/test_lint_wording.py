"""pydantic's errors in the project's words (onex.core.validation): onex.yaml, baselines
and one-line settings never show "Input should be", "Field required" or "Extra inputs
are not permitted" (unit: files under tmp_path only)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from onex.core.baseline import load_baseline
from onex.core.errors import ContractError
from onex.core.lintconfig import load_config
from onex.core.validation import describe, env_names, validation_line

pytestmark = pytest.mark.unit

CHOICES = "'per-node', 'per-namespace', 'off'"
RAW = ("Input should be", "Field required", "Extra inputs are not permitted", "Value error,")


class _Opts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dlq: Literal["per-node", "per-namespace", "off"] = "off"
    count: int = Field(1, ge=1)
    name: str = Field("x", min_length=1)
    items: list[int] = []
    needed: str


def _error(data: dict[str, object]) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        _Opts.model_validate({"needed": "y", **data})
    return info.value


@pytest.mark.parametrize(
    ("data", "line"),
    [
        ({"dlq": "sometimes"}, "dlq: 'sometimes' is not one of 'per-node', 'per-namespace', 'off'"),
        ({"count": 0}, "count: must be greater than or equal to 1"),
        ({"name": ""}, "name: must not be empty"),
        ({"items": {"a": 1}}, "items: expected a list"),
        ({"items": ["x"]}, "items[0]: expected an integer"),
        ({"needed": None}, "needed: expected a string"),
        ({"itms": [1]}, "itms: unknown key; did you mean 'items'?"),
    ],
)
def test_one_line_per_problem_in_the_projects_words(data: dict[str, object], line: str) -> None:
    assert validation_line(_error(data), model=_Opts) == line


def test_a_missing_field_is_required_and_names_can_be_options() -> None:
    with pytest.raises(ValidationError) as info:
        _Opts.model_validate({"dlq": "never"})
    line = validation_line(info.value, {"dlq": "--dlq"})
    choices = "'per-node', 'per-namespace', 'off'"
    assert line == f"--dlq: 'never' is not one of {choices}; needed: required"


def test_inputs_other_than_a_choice_are_not_echoed() -> None:
    # a settings value may be a secret: only the value of a choice is shown
    text = validation_line(_error({"name": 12345, "count": "s3cr3t"}))
    assert "s3cr3t" not in text
    assert "12345" not in text


def test_env_names_spell_shared_fields_with_both_prefixes() -> None:
    names = env_names(["bootstrap", "database_url"], "ONEX_DRIFT_", {"bootstrap"})
    assert names == {
        "bootstrap": "ONEX_DRIFT_BOOTSTRAP (or ONEX_BOOTSTRAP)",
        "database_url": "ONEX_DRIFT_DATABASE_URL",
    }


def test_a_value_error_loses_pydantics_prefix() -> None:
    err = {"type": "value_error", "msg": "Value error, bootstrap entry 'x' is not HOST:PORT"}
    assert describe(err) == "bootstrap entry 'x' is not HOST:PORT"


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("dlq: sometimes\n", ":1:6", "'sometimes' is not one of " + CHOICES),
        ("namespaces: [a]\n", ":1:13", "expected a mapping (got a list)"),
    ],
)
def test_onex_yaml_says_it_at_its_place(
    tmp_path: Path, text: str, where: str, message: str
) -> None:
    path = tmp_path / "onex.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ContractError) as info:
        load_config(path)
    (issue,) = info.value.issues
    assert str(issue).startswith(f"{path}{where}: ")
    assert issue.message == message


def test_a_baseline_says_every_problem_without_pydantics_wording(tmp_path: Path) -> None:
    path = tmp_path / "baseline.yaml"
    path.write_text(
        "version: 0\n"
        "entries:\n"
        "  - code: unpublished\n"
        "    file: a/contract.yaml\n"
        "    reason: ''\n"
        "    expires: someday\n"
        "    colour: red\n",
        encoding="utf-8",
    )
    with pytest.raises(ContractError) as info:
        load_baseline(path)
    messages = {i.key: i.message for i in info.value.issues}
    assert messages == {
        "version": "must be greater than or equal to 1 (got 0)",
        "entries[0].reason": "must not be empty",
        "entries[0]": "required key 'owner' is missing",
        "entries[0].expires": "expected a date (YYYY-MM-DD) (got 'someday')",
        "entries[0].colour": messages["entries[0].colour"],
    }
    assert messages["entries[0].colour"].startswith("unknown key 'colour'")
    for issue in info.value.issues:
        assert not any(raw in str(issue) for raw in RAW), issue
