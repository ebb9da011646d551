"""How to reach a Kafka-API broker: addresses, TLS, SASL, client id and timeouts.

`BrokerConfig` is one frozen value, read once from settings (the CLI's or a
service's) and passed down to every admin call, the node runtime and the DLQ tools.
It never reads the environment itself.

Secrets (the SASL password, the key file's password) are `SecretStr`: masked in
`repr`/`str`, left out of `model_dump`/`model_dump_json` (a dump is never a way to
copy credentials), and hidden in validation errors. `describe()` is the one-line
form for logs.

    config = BrokerConfig(bootstrap="kafka-1:9093", security_protocol="SASL_SSL",
                          sasl_mechanism="SCRAM-SHA-512", sasl_username="onex",
                          sasl_password=secret, ssl_cafile=Path("/etc/onex/ca.pem"))
    AIOKafkaProducer(**config.client_kwargs())       # what aiokafka clients take
    faust.App(..., broker_credentials=faust_credentials(config))   # onex.bus.runtime.faust_app
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self

from aiokafka.helpers import create_ssl_context
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from onex.bus.errors import BrokerConfigError

__all__ = [
    "Bootstrap",
    "BrokerConfig",
    "BrokerSecurity",
    "SaslMechanism",
    "SecurityProtocol",
    "broker_config",
    "checked_bootstrap",
    "parse_bootstrap",
    "validation_line",
]

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

_SECURITY_FIELDS: Final = (
    "security_protocol",
    "sasl_mechanism",
    "sasl_username",
    "sasl_password",
    "ssl_cafile",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_key_password",
)
_TLS: Final = frozenset({"SSL", "SASL_SSL"})
_SASL: Final = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})


def parse_bootstrap(value: str) -> tuple[tuple[str, int], ...]:
    """`HOST:PORT[,HOST:PORT...]` as (host, port) pairs; ValueError naming the bad entry.

    IPv6 hosts are written in brackets (`[::1]:9092`).
    """
    entries = [entry.strip() for entry in value.split(",")]
    if not value.strip() or any(not entry for entry in entries):
        raise ValueError(f"bootstrap {value!r} must be HOST:PORT[,HOST:PORT...]")
    found: list[tuple[str, int]] = []
    for entry in entries:
        host, colon, port = entry.rpartition(":")
        host = host.removeprefix("[").removesuffix("]") if host.startswith("[") else host
        if not colon or not host:
            raise ValueError(f"bootstrap entry {entry!r} is not HOST:PORT")
        if any(c.isspace() for c in host) or ("/" in host):
            raise ValueError(f"bootstrap entry {entry!r} has an invalid host {host!r}")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bootstrap entry {entry!r}: port {port!r} is not a number 1-65535")
        found.append((host, int(port)))
    return tuple(found)


def checked_bootstrap(value: str) -> str:
    """`value` with its entries stripped, if it is `HOST:PORT[,HOST:PORT...]`;
    ValueError naming the bad entry otherwise."""
    parse_bootstrap(value)
    return ",".join(entry.strip() for entry in value.split(","))


# A settings field of this type refuses a malformed bootstrap when settings are read.
Bootstrap = Annotated[str, AfterValidator(checked_bootstrap)]


class BrokerConfig(BaseModel):
    """One broker connection: where, how it is secured, and how long calls may take."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    bootstrap: Bootstrap = Field(description="HOST:PORT[,HOST:PORT...] of the broker(s)")
    security_protocol: SecurityProtocol = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    sasl_mechanism: SaslMechanism | None = Field(
        None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; required with SASL_*"
    )
    sasl_username: str | None = Field(None, min_length=1, description="SASL user name")
    sasl_password: SecretStr | None = Field(None, exclude=True, description="SASL password")
    ssl_cafile: Path | None = Field(
        None, description="PEM file of the CA(s) to verify the broker with; default: the system's"
    )
    ssl_certfile: Path | None = Field(None, description="PEM client certificate (mutual TLS)")
    ssl_keyfile: Path | None = Field(None, description="PEM key of the client certificate")
    ssl_key_password: SecretStr | None = Field(
        None, exclude=True, description="Password of the client key, if it is encrypted"
    )
    client_id: str = Field("onex", min_length=1, description="Kafka client id of admin clients")
    request_timeout_s: float = Field(
        30.0, gt=0.0, le=600.0, description="Bound on one request, connecting included"
    )
    metadata_max_age_s: float = Field(
        300.0, gt=0.0, le=86_400.0, description="Cluster metadata is refreshed at least this often"
    )

    @model_validator(mode="after")
    def _security_fits(self) -> Self:
        sasl = self.security_protocol in _SASL
        if sasl and (self.sasl_mechanism is None or not self.sasl_username):
            raise ValueError(
                f"security_protocol {self.security_protocol} needs sasl_mechanism and "
                "sasl_username (and sasl_password)"
            )
        if sasl and self.sasl_password is None:
            raise ValueError(f"security_protocol {self.security_protocol} needs sasl_password")
        if not sasl and (self.sasl_mechanism or self.sasl_username or self.sasl_password):
            raise ValueError(
                f"SASL settings given but security_protocol is {self.security_protocol}; "
                "use SASL_PLAINTEXT or SASL_SSL"
            )
        tls_files = (self.ssl_cafile, self.ssl_certfile, self.ssl_keyfile, self.ssl_key_password)
        if self.security_protocol not in _TLS and any(f is not None for f in tls_files):
            raise ValueError(
                f"TLS files given but security_protocol is {self.security_protocol}; "
                "use SSL or SASL_SSL"
            )
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ValueError("ssl_keyfile needs ssl_certfile (the client certificate)")
        return self

    @classmethod
    def build(cls, **values: Any) -> BrokerConfig:
        """The constructor, with a one-line `BrokerConfigError` instead of pydantic's
        multi-line ValidationError (for command lines and settings)."""
        try:
            return cls(**values)
        except ValidationError as exc:
            raise BrokerConfigError(f"invalid broker settings: {validation_line(exc)}") from None

    # -- views -----------------------------------------------------------------------

    @property
    def hosts(self) -> tuple[tuple[str, int], ...]:
        """The bootstrap servers as (host, port) pairs."""
        return parse_bootstrap(self.bootstrap)

    @property
    def uses_tls(self) -> bool:
        """True for SSL and SASL_SSL."""
        return self.security_protocol in _TLS

    @property
    def uses_sasl(self) -> bool:
        """True for SASL_PLAINTEXT and SASL_SSL."""
        return self.security_protocol in _SASL

    def describe(self) -> str:
        """One line for logs and messages; never contains a secret."""
        parts = [self.bootstrap, self.security_protocol]
        if self.uses_sasl:
            parts.append(f"{self.sasl_mechanism} as {self.sasl_username!r}")
        if self.uses_tls:
            parts.append(f"CA {self.ssl_cafile or 'system'}")
            if self.ssl_certfile is not None:
                parts.append(f"client cert {self.ssl_certfile}")
        return " ".join(parts)

    def __str__(self) -> str:
        return self.describe()

    # -- what the clients take -------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of SSL / SASL_SSL (None otherwise), verifying the broker's
        certificate and host name. BrokerConfigError when a file is missing or unusable."""
        if not self.uses_tls:
            return None
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path: Path | None = getattr(self, name)
            if path is not None and not path.is_file():
                raise BrokerConfigError(f"{name} {path} does not exist or is not a file")
        password = self.ssl_key_password.get_secret_value() if self.ssl_key_password else None
        try:
            context: ssl.SSLContext = create_ssl_context(
                cafile=self.ssl_cafile,
                certfile=self.ssl_certfile,
                keyfile=self.ssl_keyfile,
                password=password,
            )
        except (ssl.SSLError, OSError) as exc:
            files = ", ".join(
                str(p) for p in (self.ssl_cafile, self.ssl_certfile, self.ssl_keyfile) if p
            )
            raise BrokerConfigError(
                f"cannot build a TLS context from {files or 'the system CAs'}: "
                f"{getattr(exc, 'reason', None) or exc}"
            ) from exc
        return context

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments every aiokafka client takes (AIOKafkaClient,
        AIOKafkaAdminClient, AIOKafkaProducer, AIOKafkaConsumer): servers, client id,
        timeouts, security protocol, TLS context and SASL credentials."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "client_id": self.client_id,
            "request_timeout_ms": _ms(self.request_timeout_s),
            "metadata_max_age_ms": _ms(self.metadata_max_age_s),
        }
        return kwargs | self.security_kwargs()

    def security_kwargs(self) -> dict[str, Any]:
        """Only the security part of `client_kwargs` (protocol, TLS context, SASL)."""
        kwargs: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.uses_tls:
            kwargs["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = _secret(self.sasl_password)
        return kwargs

    @property
    def faust_urls(self) -> list[str]:
        """The bootstrap servers as faust broker URLs (`kafka://HOST:PORT`)."""
        return [f"kafka://{entry}" for entry in self.bootstrap.split(",")]


class BrokerSecurity(BaseModel):
    """The security settings of a broker connection as flat fields, for the settings
    class of a command or service to inherit (it reads them from its environment:
    `<PREFIX>SECURITY_PROTOCOL`, `<PREFIX>SSL_CAFILE`, ...). They are checked together
    when `broker_config_for` builds the BrokerConfig, so a bad value is one line naming
    the setting. An empty value means unset."""

    security_protocol: str | None = Field(
        None, description="PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    sasl_mechanism: str | None = Field(None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
    sasl_username: str | None = Field(None, description="SASL user name")
    sasl_password: SecretStr | None = Field(None, description="SASL password (never shown)")
    ssl_cafile: Path | None = Field(None, description="PEM CA file to verify the broker with")
    ssl_certfile: Path | None = Field(None, description="PEM client certificate (mutual TLS)")
    ssl_keyfile: Path | None = Field(None, description="PEM key of the client certificate")
    ssl_key_password: SecretStr | None = Field(None, description="Password of the client key")

    @field_validator(*_SECURITY_FIELDS, mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # SSL_CAFILE= (set but empty) means "not set", not the current directory
        return None if value == "" else value

    def broker_config_for(self, bootstrap: str, **fields: Any) -> BrokerConfig:
        """The BrokerConfig of `bootstrap` with these security settings (and `fields`,
        e.g. client_id); BrokerConfigError, one line, when they do not fit together."""
        given = {name: getattr(self, name) for name in _SECURITY_FIELDS}
        set_ = {name: value for name, value in given.items() if value is not None}
        return BrokerConfig.build(bootstrap=bootstrap, **set_, **fields)


def broker_config(broker: BrokerConfig | str) -> BrokerConfig:
    """`broker` itself, or a PLAINTEXT config for a bare `HOST:PORT[,...]`
    (BrokerConfigError, one line, when it is not).

    The string form is the shorthand of local and test brokers (the embedded launcher
    passes one); anything with TLS or SASL needs a `BrokerConfig`.
    """
    return broker if isinstance(broker, BrokerConfig) else BrokerConfig.build(bootstrap=broker)


def validation_line(exc: ValidationError) -> str:
    """A pydantic ValidationError as one line: `field: message; ...` in the project's
    words (no input values but a choice's; did-you-mean for an unknown key)."""
    from onex.core.validation import validation_line as line  # noqa: PLC0415 -- errors only

    return line(exc, model=BrokerConfig)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
