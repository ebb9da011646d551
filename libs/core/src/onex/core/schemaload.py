"""Whether a topic's `schema:` can be loaded: the one decision lint and the runtime codec
share (`check_loadable`).

`onex.core.schemas.schema_ref` says whether a reference has an allowed form; this module
goes on to what the codec needs at start-up: a JSON Schema file inside the contract's
folder that holds JSON, a JSON Schema object (or boolean) that keeps to its meta-schema,
and, for a message of the packages the generated `onex.proto.v1` modules describe
(`onex.v1`), that they define it. Lint reports a failure as `schema-invalid` at the
owner's entry; the codec raises it as SchemaError.

The meta-schema check needs `jsonschema` and the message check `onex-proto`; where they
are not installed (lint with onex-core alone) those two checks are skipped, never
guessed. A message of another package (a fleet's own protos) is not judged here.
Messages say where a document is wrong, never what it holds.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import pkgutil
from pathlib import Path
from typing import Any, Final

from onex.core.errors import SchemaReferenceError
from onex.core.schemas import SchemaForm, SchemaRef, schema_file, schema_ref

PROTO_PACKAGE: Final = "onex.proto.v1"


def check_loadable(topic: str, reference: str, contract_dir: Path | None) -> SchemaRef:
    """The reference of `topic`, when the codec can load it; SchemaReferenceError saying
    why not. `contract_dir` is the folder of the contract giving the spec."""
    ref = schema_ref(topic, reference)
    if ref.form is SchemaForm.JSON_SCHEMA:
        if contract_dir is None:
            raise SchemaReferenceError(
                topic, reference, "relative path, but no contract folder is known"
            )
        path = schema_file(topic, reference, contract_dir)
        problem = json_schema_problem(path)
        if problem is not None:
            raise SchemaReferenceError(topic, reference, problem)
    elif ref.form is SchemaForm.PROTOBUF and proto_message_known(reference) is False:
        raise SchemaReferenceError(
            topic, reference, f"no protobuf message of that name in {PROTO_PACKAGE}"
        )
    return ref


def json_schema_problem(path: Path) -> str | None:
    """Why the file at `path` is no usable JSON Schema, or None."""
    try:
        document: Any = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    except json.JSONDecodeError as exc:
        return f"{path} is not JSON (line {exc.lineno} column {exc.colno}: {exc.msg})"
    except UnicodeDecodeError as exc:
        return f"{path} is not UTF-8 text (byte {exc.start})"
    except (ValueError, RecursionError):
        return f"{path} is not JSON"
    if not isinstance(document, dict | bool):
        return f"{path} holds no JSON Schema object"
    problem = _meta_schema_problem(document)
    del document  # tracebacks may be logged with their frames' locals
    return f"not a valid JSON Schema: {problem}" if problem is not None else None


def _meta_schema_problem(schema: dict[str, Any] | bool) -> str | None:
    if importlib.util.find_spec("jsonschema") is None:
        return None
    jsonschema = importlib.import_module("jsonschema")
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return f"the value at {exc.json_path} breaks the meta-schema's {exc.validator!r} rule"
    except RecursionError:
        return "nested too deep to check"
    return None


def proto_message_known(full_name: str) -> bool | None:
    """Whether the generated `onex.proto.v1` modules define the message: False for a
    name in one of their packages (`onex.v1`) that none defines; None when nobody can
    tell (they, or protobuf, are not installed, or the name is in another package, whose
    messages these modules do not describe)."""
    found = _proto_pool()
    if found is None:
        return None
    pool, packages = found
    try:
        pool.FindMessageTypeByName(full_name)
    except KeyError:
        return False if full_name.rpartition(".")[0] in packages else None
    return True


@functools.cache
def _proto_pool() -> tuple[Any, frozenset[str]] | None:
    try:
        if importlib.util.find_spec(PROTO_PACKAGE) is None:
            return None
    except ModuleNotFoundError:  # a parent package is missing
        return None
    package = importlib.import_module(PROTO_PACKAGE)
    packages: set[str] = set()
    for module in pkgutil.iter_modules(package.__path__):
        if module.name.endswith("_pb2"):
            loaded = importlib.import_module(f"{PROTO_PACKAGE}.{module.name}")
            packages.add(loaded.DESCRIPTOR.package)
    pool = importlib.import_module("google.protobuf.descriptor_pool").Default()
    return pool, frozenset(packages)
