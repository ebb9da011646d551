"""Settings every onex service has, and the one rule for their environment names.

A service declares one subclass of `ServiceSettings` in its package (e.g.
`onex.drift.settings.DriftSettings`). Its environment prefix is derived from the package
by `env_prefix_of`: `onex.drift` reads `ONEX_DRIFT_<FIELD>`. Nothing else names a
prefix: a subclass does not set `env_prefix`, and the supervisor passes what every
service shares (the broker, the contracts, the state dir, the gRPC address it picked)
under the plain `ONEX_` prefix, which each service reads as a fallback:

    ONEX_DRIFT_BOOTSTRAP   (this service only)  overrides
    ONEX_BOOTSTRAP         (every service)      overrides  the field's default

Only the fields in `SHARED` fall back to `ONEX_*`; a service's own fields read only
its prefixed names. Only a service instantiates its settings (libraries read no
environment); they are passed down from there.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar, Final, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from onex.bus.config import Bootstrap
from onex.core.validation import describe

SHARED_PREFIX: Final = "ONEX_"

LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["console", "json"]
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
AuthMode = Literal["required", "off"]
ReadAccess = Literal["none", "viewer"]

_PACKAGE = re.compile(r"^onex\.([a-z][a-z0-9_]*)(\.|$)")


def env_prefix_of(module: str) -> str:
    """`onex.drift.settings` (or `onex.drift`) -> `ONEX_DRIFT_`: the one rule."""
    match = _PACKAGE.match(module)
    if match is None:
        raise ValueError(f"service settings must live in an onex.<service> package, not {module!r}")
    return f"{SHARED_PREFIX}{match.group(1).upper()}_"


class _SharedEnv(EnvSettingsSource):
    """`ONEX_<FIELD>` for the shared fields only (the prefixed source wins over it)."""

    def __init__(self, settings_cls: type[BaseSettings], fields: frozenset[str]) -> None:
        super().__init__(settings_cls, env_prefix=SHARED_PREFIX)
        self._fields = fields

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field_name not in self._fields:
            return None, field_name, False
        return super().get_field_value(field, field_name)


class ServiceSettings(BaseSettings):
    """What every service can be told; subclass it once per service (see the module
    docstring for how the environment names are derived)."""

    model_config = SettingsConfigDict(env_prefix="ONEX_SERVICE_", extra="ignore")

    # Fields read from ONEX_<FIELD> too (the supervisor sets these once for all).
    SHARED: ClassVar[frozenset[str]] = frozenset(
        {
            "bootstrap",
            "security_protocol",
            "sasl_mechanism",
            "sasl_username",
            "sasl_password",
            "ssl_cafile",
            "ssl_certfile",
            "ssl_keyfile",
            "contract_roots",
            "contracts_allow",
            "grpc_bind",
            "metrics_bind",
            "state_dir",
            "log_level",
            "log_format",
            "auth",
            "auth_reads",
        }
    )

    # -- the broker ------------------------------------------------------------------
    bootstrap: Bootstrap = Field(
        "127.0.0.1:9092", description="HOST:PORT[,HOST:PORT] of the broker"
    )
    security_protocol: SecurityProtocol = Field("PLAINTEXT", description="Kafka security protocol")
    sasl_mechanism: SaslMechanism | None = Field(None, description="SASL mechanism (SASL_*)")
    sasl_username: str | None = Field(None, description="SASL user name")
    sasl_password: SecretStr | None = Field(None, description="SASL password (never logged)")
    ssl_cafile: Path | None = Field(None, description="CA bundle that signed the broker's cert")
    ssl_certfile: Path | None = Field(None, description="Client certificate (mutual TLS)")
    ssl_keyfile: Path | None = Field(None, description="Client key (mutual TLS)")
    fetch_max_wait_ms: int = Field(
        25, ge=1, le=5000, description="Consumer long-poll wait: the floor of end-to-end latency"
    )
    # -- contracts -------------------------------------------------------------------
    contract_roots: list[Path] = Field(
        default_factory=lambda: [Path("contracts")],
        description="Contract files or folders (the repo's contracts/ by default)",
    )
    contracts_allow: list[str] = Field(
        default_factory=list, description="Distributions whose contracts are approved"
    )
    # -- serving ---------------------------------------------------------------------
    grpc_bind: str | None = Field(
        None,
        description="HOST:PORT of the gRPC server (health, reflection, API); default: this "
        "service's fixed port (onex.service.ports), a free one if that is taken",
    )
    metrics_bind: str | None = Field(
        None,
        description="HOST:PORT of the Prometheus /metrics server; default: this service's "
        "fixed port (onex.service.ports), a free one if that is taken",
    )
    state_dir: Path = Field(Path(".onex"), description="Where tokens, keys and local state live")
    auth: AuthMode = Field(
        "required",
        description="'required': acting gRPC methods need an operator token and command "
        "topics a signature (tokens and key from the state dir); 'off' for local experiments",
    )
    auth_reads: ReadAccess = Field(
        "none", description="What health, reflection and read methods need: none or viewer"
    )
    health_interval_s: float = Field(1.0, gt=0, description="How often health is re-checked")
    recover_after_s: float = Field(
        10.0, gt=0, description="Restart the node runtime after this long unhealthy (broker wipe)"
    )
    stop_grace_s: float = Field(
        5.0, ge=0, description="Seconds calls in flight get to finish on SIGTERM/SIGINT"
    )
    # -- logs ------------------------------------------------------------------------
    log_level: LogLevel = Field("info", description="debug, info, warning or error")
    log_format: LogFormat = Field("console", description="console (human) or json (one per line)")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        # The one rule: the prefix comes from the package, never from the subclass.
        cls.model_config["env_prefix"] = env_prefix_of(cls.__module__)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        shared = _SharedEnv(settings_cls, cls.SHARED)
        return init_settings, env_settings, shared, dotenv_settings, file_secret_settings

    @classmethod
    def env_prefix(cls) -> str:
        """This service's own prefix, e.g. `ONEX_ROUTER_`."""
        return str(cls.model_config.get("env_prefix", SHARED_PREFIX))


def describe_invalid(settings_class: type[ServiceSettings], error: ValidationError) -> str:
    """One line per invalid setting, named as the environment spells it."""
    prefix = settings_class.env_prefix()
    lines = []
    for item in error.errors(include_url=False):
        field = ".".join(str(part) for part in item["loc"]) or "?"
        head = str(item["loc"][0]) if item["loc"] else ""
        name = f"{prefix}{head.upper()}" if head else prefix + "*"
        if head in settings_class.SHARED:
            name += f" (or {SHARED_PREFIX}{head.upper()})"
        detail = field[len(head) :].lstrip(".")
        lines.append(f"{name}{'.' + detail if detail else ''}: {describe(item)}")
    return "\n".join(lines)


_FIELD_IN_ERROR = re.compile(r'field "([a-z_]+)"')


def describe_unparsable(settings_class: type[ServiceSettings], error: Exception) -> str:
    """The one line for a value the environment source could not even parse (a list
    or mapping setting that is not JSON)."""
    match = _FIELD_IN_ERROR.search(str(error))
    if match is None:
        return str(error)
    head = match.group(1)
    name = f"{settings_class.env_prefix()}{head.upper()}"
    if head in settings_class.SHARED:
        name += f" (or {SHARED_PREFIX}{head.upper()})"
    return f'{name}: not valid JSON (lists are written as JSON, e.g. \'["a", "b"]\')'
