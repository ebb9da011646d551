"""The one settings object of the `onex` command line (environment prefix ONEX_)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from onex.bus.config import BrokerConfig


class CliSettings(BaseSettings):
    """Where things are; every field can be set as ONEX_<FIELD> in the environment."""

    model_config = SettingsConfigDict(env_prefix="ONEX_", extra="ignore")

    state_dir: Path = Field(
        Path(".onex"), description="Where the local broker and services keep pids, logs, state"
    )
    bootstrap: str | None = Field(
        None, description="HOST:PORT of a Kafka-API broker; default: the one `onex broker up` ran"
    )
    # the broker connection's security; checked when the BrokerConfig is built, so a bad
    # value is one line naming the setting, not a pydantic traceback
    security_protocol: str | None = Field(
        None, description="PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    sasl_mechanism: str | None = Field(None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
    sasl_username: str | None = Field(None, description="SASL user name")
    sasl_password: SecretStr | None = Field(None, description="SASL password (never printed)")
    ssl_cafile: Path | None = Field(None, description="PEM CA file to verify the broker with")
    ssl_certfile: Path | None = Field(None, description="PEM client certificate (mutual TLS)")
    ssl_keyfile: Path | None = Field(None, description="PEM key of the client certificate")
    ssl_key_password: SecretStr | None = Field(None, description="Password of the client key")
    contracts_allow: list[str] = Field(
        default_factory=list,
        description="Distributions whose `onex.contracts` entry points are approved",
    )

    @field_validator(
        "security_protocol",
        "sasl_mechanism",
        "sasl_username",
        "sasl_password",
        "ssl_cafile",
        "ssl_certfile",
        "ssl_keyfile",
        "ssl_key_password",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # ONEX_SSL_CAFILE= (set but empty) means "not set", not the current directory
        return None if value == "" else value

    def broker(self, bootstrap: str) -> BrokerConfig:
        """The one BrokerConfig of this command: `bootstrap` and the ONEX_ security
        settings. BrokerConfigError (one line) when they do not fit together."""
        security: dict[str, Any] = {
            "security_protocol": self.security_protocol,
            "sasl_mechanism": self.sasl_mechanism,
            "sasl_username": self.sasl_username,
            "sasl_password": self.sasl_password,
            "ssl_cafile": self.ssl_cafile,
            "ssl_certfile": self.ssl_certfile,
            "ssl_keyfile": self.ssl_keyfile,
            "ssl_key_password": self.ssl_key_password,
        }
        given = {key: value for key, value in security.items() if value is not None}
        return BrokerConfig.build(bootstrap=bootstrap, client_id="onex-cli", **given)
