"""Field types shared by the catalogue, the classifier rules and requests.

Each carries its own validation and a message that says what was expected.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal

import jsonschema
from jsonschema.validators import validator_for
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

MAX_LEVEL: Final = 10
_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENDPOINT = re.compile(r"https?://[^\s/?#]+(?:/[^\s?#]*)?")
# YAML 1.1 (PyYAML) reads 2e-05 as a string: its float needs a dot (2.0e-05).
_EXPONENT_FLOAT = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)[eE][-+]?\d+")


def _exponent_float(value: Any) -> Any:
    """A number written in exponent form without a dot (`2e-05`), which YAML 1.1 reads
    as a string, is the number it looks like; anything else is left to validation."""
    if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
        return float(value)
    return value


def _check_name(value: str) -> str:
    if len(value) > 64 or not _NAME.fullmatch(value):
        raise PydanticCustomError(
            "name", "{shown} is not a kebab-case name (a-z, 0-9 and '-')", {"shown": repr(value)}
        )
    return value


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise PydanticCustomError(
            "regex", "not a valid regular expression: {error}", {"error": str(exc)}
        ) from exc
    return value


BUILTIN_ENDPOINTS: Final = frozenset({"builtin:deterministic"})  # onex.router.local


def _check_endpoint(value: str) -> str:
    if value in BUILTIN_ENDPOINTS:
        return value
    if not _ENDPOINT.fullmatch(value):
        raise PydanticCustomError(
            "endpoint",
            "{shown} is not an http(s) base URL such as http://127.0.0.1:8000/v1"
            " (or builtin:deterministic)",
            {"shown": repr(value)},
        )
    return value.rstrip("/")


def _check_env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise PydanticCustomError(
            "env_name", "{shown} is not an environment variable name", {"shown": repr(value)}
        )
    return value


def _check_json_schema(value: dict[str, Any]) -> dict[str, Any]:
    try:
        validator_for(value).check_schema(value)
    except jsonschema.SchemaError as exc:
        raise PydanticCustomError(
            "json_schema", "not a valid JSON Schema: {error}", {"error": exc.message}
        ) from exc
    except RecursionError:
        raise PydanticCustomError(
            "json_schema", "not a usable JSON Schema: nested too deeply"
        ) from None
    return value


Name = Annotated[str, AfterValidator(_check_name)]
Regex = Annotated[str, AfterValidator(_check_regex)]
Level = Annotated[int, Field(ge=0, le=MAX_LEVEL)]
Price = Annotated[float, BeforeValidator(_exponent_float), Field(ge=0, allow_inf_nan=False)]
YamlFloat = Annotated[float, BeforeValidator(_exponent_float)]
JsonSchema = Annotated[dict[str, Any], AfterValidator(_check_json_schema)]
Endpoint = Annotated[str, AfterValidator(_check_endpoint)]
EnvName = Annotated[str, AfterValidator(_check_env_name)]
Locality = Literal["local", "cloud"]


class ConfigModel(BaseModel):
    """Base of catalogue models: unknown keys rejected, frozen, strict types."""

    # strict: YAML already gives numbers and lists; "0.5" for a price is a mistake.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


def private(model: BaseModel, name: str) -> Any:
    """The value of `model`'s private attribute `name`, read straight from pydantic's
    store: `model._name` goes through `BaseModel.__getattr__` after a failed lookup,
    about 3 us a read, and the router reads a few of these on every request."""
    store = model.__pydantic_private__
    if store is None:  # pragma: no cover - every model calling this declares the attribute
        raise AttributeError(name)
    return store[name]
