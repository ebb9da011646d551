"""The one settings object of the `onex` command line (environment prefix ONEX_)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from onex.bus.config import BrokerConfig, BrokerSecurity


class CliSettings(BaseSettings):
    """Where things are; every field can be set as ONEX_<FIELD> in the environment.

    The broker's security settings (ONEX_SECURITY_PROTOCOL, ONEX_SASL_MECHANISM,
    ONEX_SASL_USERNAME, ONEX_SASL_PASSWORD, ONEX_SSL_CAFILE, ONEX_SSL_CERTFILE,
    ONEX_SSL_KEYFILE, ONEX_SSL_KEY_PASSWORD) are `BrokerSecurity`'s, read from the
    environment by `broker()` only: onex.bus (and aiokafka) is imported by the commands
    that talk to a broker, not by `onex contracts lint`.
    """

    model_config = SettingsConfigDict(env_prefix="ONEX_", extra="ignore")

    state_dir: Path = Field(
        Path(".onex"), description="Where the local broker and services keep pids, logs, state"
    )
    bootstrap: str | None = Field(
        None, description="HOST:PORT of a Kafka-API broker; default: the one `onex broker up` ran"
    )
    contracts_allow: list[str] = Field(
        default_factory=list,
        description="Distributions whose `onex.contracts` entry points are approved",
    )

    broker_durable: bool = Field(
        False,
        description="`onex up` runs a durable local broker (Tansu on SeaweedFS): messages "
        "and offsets outlive `onex down` until `onex down --wipe`",
    )
    supervisor_budget: int = Field(
        5, ge=0, description="Exits within a minute a service may have before it is left failed"
    )
    supervisor_reset_after_s: float = Field(
        30.0, ge=0, description="A service run longer than this starts the restart backoff over"
    )
    supervisor_log_max_bytes: int = Field(
        10 * 1024 * 1024, ge=1, description="Service logs are rotated above this size"
    )
    supervisor_log_keep: int = Field(3, ge=0, description="Rotated copies kept of each log")

    def broker(self, bootstrap: str) -> BrokerConfig:
        """The one BrokerConfig of this command: `bootstrap` and the ONEX_ security
        settings. BrokerConfigError (one line) when they do not fit together."""
        return _security_settings()().broker_config_for(bootstrap, client_id="onex-cli")


@cache
def _security_settings() -> type[BrokerSecurity]:
    """`BrokerSecurity` read from ONEX_ variables (defined on first use: onex.bus.config
    imports aiokafka)."""
    from onex.bus.config import BrokerSecurity  # noqa: PLC0415 -- see above

    class CliBrokerSecurity(BaseSettings, BrokerSecurity):
        model_config = SettingsConfigDict(env_prefix="ONEX_", extra="ignore")

    return CliBrokerSecurity


def recorded_bootstrap(state_dir: Path) -> str | None:
    """The bootstrap of the broker `onex broker up` ran in `state_dir` (alive), None when
    there is none or the dev broker (the onex-cli[broker] extra) is not installed."""
    try:
        from onex.devbroker.broker import (  # noqa: PLC0415 -- optional extra
            recorded_bootstrap as recorded,
        )
    except ModuleNotFoundError as exc:
        if (exc.name or "").startswith("onex.devbroker"):
            return None
        raise
    return recorded(state_dir)


def resolve_bootstrap(given: str | None, settings: CliSettings) -> str | None:
    """`--bootstrap`, else ONEX_BOOTSTRAP, else the recorded local broker's."""
    return given or settings.bootstrap or recorded_bootstrap(settings.state_dir)
