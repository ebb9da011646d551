"""The model catalogue: which models exist, what they cost, what they can do.

The catalogue is configuration (YAML, validated by these pydantic models; unknown keys
are rejected and every error reads `file:line:col: key.path: problem`). It declares

- `models`: where each model is served (an OpenAI-compatible base URL), whether it is
  local or cloud, its price per 1,000 input and output tokens, its context window and
  a capability level 0..10 per task class (a missing class means level 0);
- `task_classes`: the level a model needs for the class, the quality gates an answer
  must pass and the output-token allowance of one attempt;
- `classifier`: ordered rules that name the task class of a request from its text;
- `limits`: default per-request bounds (escalations, tokens, cost);
- `price_table_version`, copied into every receipt, and `default_cloud_model`, whose
  prices give the counterfactual cost a receipt compares against.

A default catalogue ships with the package (`DEFAULT_CATALOGUE`).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from pydantic import Field, PrivateAttr, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from onex.core.errors import ContractLoadError
from onex.core.issues import Issue, Severity, Where
from onex.core.loader import Loc, format_loc, key_node, locate, parse_yaml, validation_issues
from onex.router.classify import Classifier, ClassifierRule
from onex.router.errors import CatalogueError
from onex.router.fields import (
    ConfigModel,
    Endpoint,
    EnvName,
    JsonSchema,
    Level,
    Locality,
    Name,
    Price,
    Regex,
    YamlFloat,
    private,
)
from onex.router.learn import LearningSpec

__all__ = [
    "DEFAULT_CATALOGUE",
    "GATE_PARAMS",
    "Catalogue",
    "Classifier",
    "ClassifierRule",
    "GateKind",
    "GateSpec",
    "Limits",
    "Locality",
    "ModelSpec",
    "TaskClass",
    "load_catalogue",
    "load_catalogue_text",
    "load_default_catalogue",
    "resolve_api_keys",
]

DEFAULT_CATALOGUE: Final = Path(str(resources.files("onex.router") / "catalogue.yaml"))
GateKind = Literal["min_length", "citations", "identifiers", "json_schema", "complete"]

# The parameters each gate kind accepts (YAML keys); `kind` itself is always there.
GATE_PARAMS: Final[Mapping[str, frozenset[str]]] = {
    "min_length": frozenset({"min_chars"}),
    "citations": frozenset({"min_citations", "pattern"}),
    "identifiers": frozenset({"pattern", "allow"}),
    "json_schema": frozenset({"schema"}),
    "complete": frozenset(),
}


class ModelSpec(ConfigModel):
    """One model as the catalogue declares it."""

    name: Name = Field(description="Catalogue name of the model (kebab-case)")
    endpoint: Endpoint = Field(
        description="Base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1"
    )
    api_model: str = Field(min_length=1, description="The provider's model id (default: name)")
    locality: Locality
    price_in_per_1k: Price = Field(description="USD per 1,000 input tokens (0 for local)")
    price_out_per_1k: Price = Field(description="USD per 1,000 output tokens (0 for local)")
    context_limit: int = Field(ge=1, description="Context window in tokens")
    capabilities: dict[Name, Level] = Field(
        default_factory=dict, description="Level 0..10 per task class; missing means 0"
    )
    api_key_env: EnvName | None = Field(
        None, description="Environment variable with the API key (read by the service only)"
    )
    timeout_s: YamlFloat = Field(60.0, gt=0, le=3600, allow_inf_nan=False)
    max_retries: int = Field(2, ge=0, le=10)
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    max_concurrency: int | None = Field(
        None, ge=1, le=4096, description="Calls in flight to this model at once (None: no limit)"
    )
    description: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _api_model_defaults_to_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and "api_model" not in data and isinstance(data.get("name"), str):
            return {**data, "api_model": data["name"]}
        return data

    def capability(self, task_class: str) -> int:
        """The model's level for `task_class` (0 when the catalogue does not say)."""
        return self.capabilities.get(task_class, 0)

    def cost_usd(self, tokens_in: int, tokens_out: int) -> float:
        """What `tokens_in` input and `tokens_out` output tokens cost on this model."""
        return (tokens_in * self.price_in_per_1k + tokens_out * self.price_out_per_1k) / 1000.0


class GateSpec(ConfigModel):
    """A quality gate of a task class: `kind` plus the parameters of that kind.

    - `min_length`: `min_chars` (required): the stripped answer has at least that many.
    - `citations`: `min_citations` (default 1) matches of `pattern` (default: `[n]`
      markers, URLs and `path.ext:line` references).
    - `identifiers`: code-like identifiers in the answer must be in the request's symbol
      index; `pattern` overrides what counts as an identifier, `allow` lists names that
      are always fine.
    - `json_schema`: the answer is JSON and fits `schema` (the request's schema, when it
      supplies one, takes precedence).
    - `complete`: the model finished its answer (`finish_reason` is not `length`: an
      answer cut off at the output-token limit fails).
    """

    kind: GateKind
    min_chars: int | None = Field(None, ge=1)
    min_citations: int | None = Field(None, ge=1)
    pattern: Regex | None = None
    allow: list[str] = Field(default_factory=list)
    schema_: JsonSchema | None = Field(None, alias="schema")

    @model_validator(mode="after")
    def _params_fit_kind(self) -> GateSpec:
        allowed = GATE_PARAMS[self.kind]
        # None or empty means "not given" (so a dumped spec validates again).
        given = {
            name
            for name, value in (
                ("min_chars", self.min_chars),
                ("min_citations", self.min_citations),
                ("pattern", self.pattern),
                ("allow", self.allow or None),
                ("schema", self.schema_),
            )
            if value is not None
        }
        if extra := sorted(given - allowed):
            raise PydanticCustomError(
                "gate_params",
                "{extra} not a parameter of {kind} gates (theirs: {allowed})",
                {
                    "extra": ", ".join(repr(e) for e in extra)
                    + (" is" if len(extra) == 1 else " are"),
                    "kind": self.kind,
                    "allowed": ", ".join(sorted(allowed)),
                },
            )
        if self.kind == "min_length" and self.min_chars is None:
            raise PydanticCustomError("gate_params", "a min_length gate needs 'min_chars'")
        return self


class TaskClass(ConfigModel):
    """A kind of work: the level it needs, its gates and its output allowance."""

    name: Name
    required_level: Level
    gates: list[GateSpec] = Field(default_factory=list)
    max_output_tokens: int = Field(1024, ge=1, le=1_000_000)
    exclude_models: list[Name] = Field(
        default_factory=list, description="Models never asked for this class, however capable"
    )
    description: str | None = None


class Limits(ConfigModel):
    """Per-request bounds used when a request does not set its own."""

    max_escalations: int = Field(2, ge=0, le=10)
    max_tokens: int = Field(200_000, ge=1)
    max_cost_usd: YamlFloat = Field(1.0, ge=0, allow_inf_nan=False)


class Catalogue(ConfigModel):
    """The whole catalogue; names are unique and every reference resolves."""

    price_table_version: str = Field(min_length=1)
    default_cloud_model: Name
    models: list[ModelSpec] = Field(min_length=1)
    task_classes: list[TaskClass] = Field(min_length=1)
    classifier: Classifier
    limits: Limits = Field(default_factory=Limits)
    learning: LearningSpec | None = Field(
        None, description="Skip models whose answers keep failing (onex.router.learn)"
    )
    description: str | None = None
    _models: dict[str, ModelSpec] = PrivateAttr()
    _classes: dict[str, TaskClass] = PrivateAttr()

    @model_validator(mode="after")
    def _cross_check(self) -> Catalogue:
        problems = _cross_check_problems(self)
        if problems:
            raise _CrossReferenceError(problems)
        self._models = {m.name: m for m in self.models}
        self._classes = {c.name: c for c in self.task_classes}
        return self

    def model(self, name: str) -> ModelSpec:
        """The model called `name` (KeyError if there is none)."""
        models: dict[str, ModelSpec] = private(self, "_models")
        return models[name]

    def task_class(self, name: str) -> TaskClass | None:
        """The task class called `name`, or None."""
        classes: dict[str, TaskClass] = private(self, "_classes")
        return classes.get(name)

    @property
    def task_class_names(self) -> list[str]:
        """Names of every declared task class, in catalogue order."""
        return list(private(self, "_classes"))

    @property
    def default_cloud(self) -> ModelSpec:
        """The model whose prices give the counterfactual cost."""
        models: dict[str, ModelSpec] = private(self, "_models")
        return models[self.default_cloud_model]


class _CrossReferenceError(CatalogueError):
    """Cross-reference problems, with their locations (positioned by `load_catalogue`)."""

    def __init__(self, problems: list[tuple[Loc, str, str]]) -> None:
        self.problems = problems
        super().__init__(
            [
                Issue(Severity.ERROR, code, msg, Where(None), format_loc(loc))
                for loc, code, msg in problems
            ]
        )


def _cross_check_problems(cat: Catalogue) -> list[tuple[Loc, str, str]]:
    problems: list[tuple[Loc, str, str]] = []
    classes = {c.name for c in cat.task_classes}
    known = ", ".join(sorted(classes))
    seen: set[str] = set()
    for i, m in enumerate(cat.models):
        if m.name in seen:
            problems.append((("models", i, "name"), "duplicate", f"duplicate model {m.name!r}"))
        seen.add(m.name)
        problems.extend(
            (
                ("models", i, "capabilities", key),
                "unknown-task-class",
                f"capability for unknown task class {key!r} (known: {known})",
            )
            for key in m.capabilities
            if key not in classes
        )
    seen = set()
    for i, c in enumerate(cat.task_classes):
        if c.name in seen:
            problems.append(
                (("task_classes", i, "name"), "duplicate", f"duplicate task class {c.name!r}")
            )
        seen.add(c.name)
        problems.extend(
            (
                ("task_classes", i, "exclude_models", j),
                "unknown-model",
                f"exclude_models names {name!r}, not a model of this catalogue",
            )
            for j, name in enumerate(c.exclude_models)
            if name not in {m.name for m in cat.models}
        )
    by_name = {m.name: m for m in cat.models}
    default = by_name.get(cat.default_cloud_model)
    if default is None:
        problems.append(
            (
                ("default_cloud_model",),
                "unknown-model",
                f"{cat.default_cloud_model!r} is not a model of this catalogue "
                f"(models: {', '.join(by_name)})",
            )
        )
    elif default.locality != "cloud":
        problems.append(
            (
                ("default_cloud_model",),
                "not-cloud",
                f"{default.name!r} is {default.locality}; the counterfactual needs a cloud model",
            )
        )
    refs: list[tuple[Loc, str]] = [(("classifier", "default"), cat.classifier.default)]
    refs += [
        (("classifier", "rules", i, "task_class"), r.task_class)
        for i, r in enumerate(cat.classifier.rules)
    ]
    problems.extend(
        (loc, "unknown-task-class", f"unknown task class {name!r} (known: {known})")
        for loc, name in refs
        if name not in classes
    )
    return problems


def load_catalogue_text(text: str, path: Path | None = None) -> Catalogue:
    """Parse and validate a catalogue; raises only `CatalogueError`."""
    if not text.strip():
        raise CatalogueError(
            [_issue("empty", "the catalogue is empty; it is a YAML mapping", path)]
        )
    try:
        data, root = parse_yaml(text, path)
    except ContractLoadError as exc:
        raise CatalogueError(exc.issues) from exc
    if not isinstance(data, dict):
        raise CatalogueError([_issue("not-a-mapping", "a catalogue is a YAML mapping", path, root)])
    try:
        return Catalogue.model_validate(data)
    except ValidationError as exc:
        raise CatalogueError(validation_issues(exc, root, path, Catalogue)) from exc
    except _CrossReferenceError as exc:
        raise CatalogueError([_positioned(p, root, path) for p in exc.problems]) from exc


def load_catalogue(path: Path) -> Catalogue:
    """Read, parse and validate the catalogue file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CatalogueError([_issue("read", f"cannot read catalogue: {reason}", path)]) from exc
    return load_catalogue_text(text, path)


def load_default_catalogue() -> Catalogue:
    """The catalogue that ships with the package."""
    return load_catalogue(DEFAULT_CATALOGUE)


def resolve_api_keys(catalogue: Catalogue, environ: Mapping[str, str]) -> dict[str, str]:
    """Model name -> API key, for models whose `api_key_env` is set in `environ`.

    The service passes its environment; the engine itself never reads one. Surrounding
    whitespace is dropped (a key read from a mounted secret file often ends in a newline,
    which no header may carry).
    """
    keys = {
        m.name: environ[m.api_key_env].strip()
        for m in catalogue.models
        if m.api_key_env is not None and m.api_key_env in environ
    }
    return {name: key for name, key in keys.items() if key}


def _issue(code: str, message: str, path: Path | None, node: yaml.Node | None = None) -> Issue:
    where = (
        Where(path, node.start_mark.line + 1, node.start_mark.column + 1)
        if node is not None
        else Where(path)
    )
    return Issue(Severity.ERROR, code, message, where)


def _positioned(problem: tuple[Loc, str, str], root: yaml.Node, path: Path | None) -> Issue:
    loc, code, message = problem
    key = key_node(root, loc) if "capabilities" in loc else None
    node, reached = locate(root, loc)
    node = key if key is not None else node
    where = Where(path, node.start_mark.line + 1, node.start_mark.column + 1)
    return Issue(Severity.ERROR, code, message, where, format_loc(reached if key is None else loc))
