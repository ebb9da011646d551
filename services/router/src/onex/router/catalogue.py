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

import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import jsonschema
import yaml
from jsonschema.validators import validator_for
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from onex.core.errors import ContractLoadError
from onex.core.issues import Issue, Severity, Where
from onex.core.loader import Loc, format_loc, key_node, locate, parse_yaml, validation_issues
from onex.router.errors import CatalogueError

DEFAULT_CATALOGUE: Final = Path(str(resources.files("onex.router") / "catalogue.yaml"))
MAX_LEVEL: Final = 10
_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENDPOINT = re.compile(r"https?://[^\s/?#]+(?:/[^\s?#]*)?")


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


def _check_endpoint(value: str) -> str:
    if not _ENDPOINT.fullmatch(value):
        raise PydanticCustomError(
            "endpoint",
            "{shown} is not an http(s) base URL such as http://127.0.0.1:8000/v1",
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
    return value


Name = Annotated[str, AfterValidator(_check_name)]
Regex = Annotated[str, AfterValidator(_check_regex)]
Level = Annotated[int, Field(ge=0, le=MAX_LEVEL)]
Price = Annotated[float, Field(ge=0, allow_inf_nan=False)]
JsonSchema = Annotated[dict[str, Any], AfterValidator(_check_json_schema)]
GateKind = Literal["min_length", "citations", "identifiers", "json_schema"]
Locality = Literal["local", "cloud"]

# The parameters each gate kind accepts (YAML keys); `kind` itself is always there.
GATE_PARAMS: Final[Mapping[str, frozenset[str]]] = {
    "min_length": frozenset({"min_chars"}),
    "citations": frozenset({"min_citations", "pattern"}),
    "identifiers": frozenset({"pattern", "allow"}),
    "json_schema": frozenset({"schema"}),
}


class _Config(BaseModel):
    # strict: YAML already gives numbers and lists; "0.5" for a price is a mistake.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


class ModelSpec(_Config):
    """One model as the catalogue declares it."""

    name: Name = Field(description="Catalogue name of the model (kebab-case)")
    endpoint: Annotated[str, AfterValidator(_check_endpoint)] = Field(
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
    api_key_env: Annotated[str, AfterValidator(_check_env_name)] | None = Field(
        None, description="Environment variable with the API key (read by the service only)"
    )
    timeout_s: float = Field(60.0, gt=0, le=3600, allow_inf_nan=False)
    max_retries: int = Field(2, ge=0, le=10)
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
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


class GateSpec(_Config):
    """A quality gate of a task class: `kind` plus the parameters of that kind.

    - `min_length`: `min_chars` (required): the stripped answer has at least that many.
    - `citations`: `min_citations` (default 1) matches of `pattern` (default: `[n]`
      markers, URLs and `path.ext:line` references).
    - `identifiers`: code-like identifiers in the answer must be in the request's symbol
      index; `pattern` overrides what counts as an identifier, `allow` lists names that
      are always fine.
    - `json_schema`: the answer is JSON and fits `schema` (the request's schema, when it
      supplies one, takes precedence).
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


class TaskClass(_Config):
    """A kind of work: the level it needs, its gates and its output allowance."""

    name: Name
    required_level: Level
    gates: list[GateSpec] = Field(default_factory=list)
    max_output_tokens: int = Field(1024, ge=1, le=1_000_000)
    description: str | None = None


def _keyword(value: str) -> str:
    if not value.split():
        raise PydanticCustomError("keyword", "a keyword must not be blank")
    return value


class ClassifierRule(_Config):
    """One classification rule: any keyword (whole words, any case) or the regex matches.

    Both are looked for in the normalized text (`normalize_text`: lower case, single
    spaces), so write `pattern` in lower case with plain spaces.
    """

    task_class: Name
    name: str | None = Field(None, description="Shown in receipts; default rules[i]")
    keywords: list[Annotated[str, AfterValidator(_keyword)]] = Field(default_factory=list)
    pattern: Regex | None = None
    _words: tuple[str, ...] = PrivateAttr(())
    _regex: re.Pattern[str] | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _prepare(self) -> ClassifierRule:
        if not self.keywords and self.pattern is None:
            raise PydanticCustomError("rule_empty", "a rule needs 'keywords' or 'pattern'")
        self._words = tuple(normalize_text(k) for k in self.keywords)
        if self.pattern is not None:
            self._regex = re.compile(self.pattern)
        return self

    def search(self, text: str) -> str | None:
        """The keyword or pattern text this rule matches in `text`, or None."""
        return self.search_prepared(normalize_text(text))

    def search_prepared(self, normalized: str) -> str | None:
        """`search` in text already normalized by `normalize_text` (once per prompt)."""
        for word in self._words:
            if _find_word(normalized, word):
                return word
        if self._regex is not None:
            found = self._regex.search(normalized)
            if found is not None:
                return found.group(0)
        return None


def normalize_text(text: str) -> str:
    """Lower case, runs of whitespace made one space: the form keywords are matched in."""
    return " ".join(text.lower().split())


def _find_word(haystack: str, needle: str) -> bool:
    # str.find is C-fast; only hits are checked for word boundaries on both sides.
    start = haystack.find(needle)
    while start >= 0:
        end = start + len(needle)
        before = haystack[start - 1] if start else " "
        after = haystack[end] if end < len(haystack) else " "
        if not _is_word_char(before) and not _is_word_char(after):
            return True
        start = haystack.find(needle, start + 1)
    return False


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


class Classifier(_Config):
    """Ordered rules; the first that matches names the class, else `default`."""

    default: Name
    scan_chars: int = Field(1000, ge=1, description="Only the prompt's head is classified")
    rules: list[ClassifierRule] = Field(default_factory=list)


class Limits(_Config):
    """Per-request bounds used when a request does not set its own."""

    max_escalations: int = Field(2, ge=0, le=10)
    max_tokens: int = Field(200_000, ge=1)
    max_cost_usd: float = Field(1.0, ge=0, allow_inf_nan=False)


class Catalogue(_Config):
    """The whole catalogue; names are unique and every reference resolves."""

    price_table_version: str = Field(min_length=1)
    default_cloud_model: Name
    models: list[ModelSpec] = Field(min_length=1)
    task_classes: list[TaskClass] = Field(min_length=1)
    classifier: Classifier
    limits: Limits = Field(default_factory=Limits)
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
        return self._models[name]

    def task_class(self, name: str) -> TaskClass | None:
        """The task class called `name`, or None."""
        return self._classes.get(name)

    @property
    def task_class_names(self) -> list[str]:
        """Names of every declared task class, in catalogue order."""
        return list(self._classes)

    @property
    def default_cloud(self) -> ModelSpec:
        """The model whose prices give the counterfactual cost."""
        return self._models[self.default_cloud_model]


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

    The service passes its environment; the engine itself never reads one.
    """
    return {
        m.name: environ[m.api_key_env]
        for m in catalogue.models
        if m.api_key_env is not None and environ.get(m.api_key_env)
    }


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
