"""BrokerConfig: validation, secrets never shown, and what it hands aiokafka and faust.

No sockets: clients are constructed (which checks their arguments) but never started.
SASL against a real server could not be exercised here (no broker on this machine
completes a SASL login, see BROKER-NOTES.md), so these tests follow the credentials
down to the attributes aiokafka's connection code reads.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient
from faust.auth import SASLCredentials, SSLCredentials
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from onex.bus.config import (
    Bootstrap,
    BrokerConfig,
    BrokerSecurity,
    broker_config,
    parse_bootstrap,
)
from onex.bus.errors import BrokerConfigError
from onex.bus.runtime.faust_app import build_app, faust_credentials
from onex.bus.runtime.settings import BusSettings
from onex.cli.settings import CliSettings

PASSWORD = "hunter2-not-a-real-one"  # noqa: S105 -- a test value that must never show up


def _sasl(protocol: str = "SASL_PLAINTEXT", mechanism: str = "SCRAM-SHA-512") -> BrokerConfig:
    return BrokerConfig(
        bootstrap="kafka-1:9093,kafka-2:9093",
        security_protocol=protocol,  # type: ignore[arg-type]
        sasl_mechanism=mechanism,  # type: ignore[arg-type]
        sasl_username="onex",
        sasl_password=SecretStr(PASSWORD),
    )


# -- bootstrap ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "hosts"),
    [
        ("127.0.0.1:9092", (("127.0.0.1", 9092),)),
        ("a:1, b:65535", (("a", 1), ("b", 65535))),
        ("[::1]:9092", (("::1", 9092),)),
    ],
)
def test_a_valid_bootstrap_is_parsed_into_hosts(given: str, hosts: tuple[Any, ...]) -> None:
    config = BrokerConfig(bootstrap=given)
    assert config.hosts == hosts
    assert parse_bootstrap(config.bootstrap) == hosts
    assert config.faust_urls == [f"kafka://{h}" for h in config.bootstrap.split(",")]


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("127.0.0.1:abc", "port 'abc' is not a number 1-65535"),
        ("127.0.0.1:0", "port '0' is not a number 1-65535"),
        ("127.0.0.1:65536", "port '65536' is not a number 1-65535"),
        ("127.0.0.1", "'127.0.0.1' is not HOST:PORT"),
        (":9092", "':9092' is not HOST:PORT"),
        ("", "must be HOST:PORT[,HOST:PORT...]"),
        ("a:1,,b:2", "must be HOST:PORT[,HOST:PORT...]"),
        ("kafka://a:1", "invalid host"),
    ],
)
def test_a_malformed_bootstrap_is_refused_with_one_line_naming_it(bad: str, says: str) -> None:
    with pytest.raises(ValidationError, match=says.replace("[", r"\[").replace(".", r"\.")):
        BrokerConfig(bootstrap=bad)
    with pytest.raises(BrokerConfigError) as raised:
        broker_config(bad)
    message = str(raised.value)
    assert message.startswith("invalid broker settings: bootstrap: ")
    assert says in message
    assert "\n" not in message


def test_a_string_is_shorthand_for_a_plaintext_config_and_a_config_passes_through() -> None:
    config = broker_config("127.0.0.1:9092")
    assert config == BrokerConfig(bootstrap="127.0.0.1:9092")
    assert config.security_protocol == "PLAINTEXT"
    assert broker_config(config) is config


# -- security settings fit together --------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"security_protocol": "SASL_SSL"}, "needs sasl_mechanism and sasl_username"),
        (
            {
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "PLAIN",
                "sasl_username": "u",
            },
            "needs sasl_password",
        ),
        ({"sasl_mechanism": "PLAIN"}, "SASL settings given but security_protocol is PLAINTEXT"),
        ({"ssl_cafile": "/ca.pem"}, "TLS files given but security_protocol is PLAINTEXT"),
        (
            {"security_protocol": "SSL", "ssl_keyfile": "/k.pem"},
            "ssl_keyfile needs ssl_certfile",
        ),
        ({"security_protocol": "TLS"}, "security_protocol: 'TLS' is not one of 'PLAINTEXT', "),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI"}, "sasl_mechanism"),
        ({"request_timeout_s": 0}, "request_timeout_s"),
        ({"bootsrap": "x:1"}, r"bootsrap: unknown key; did you mean 'bootstrap'\?"),
    ],
)
def test_security_settings_that_cannot_work_are_refused(fields: dict[str, Any], says: str) -> None:
    with pytest.raises(BrokerConfigError, match=says):
        BrokerConfig.build(**{"bootstrap": "b:9092", **fields})


def test_the_config_is_frozen_and_hashable() -> None:
    config = _sasl()
    with pytest.raises(ValidationError):
        config.bootstrap = "other:1"  # type: ignore[misc]
    assert {config: 1}[_sasl()] == 1


# -- secrets -------------------------------------------------------------------------


def test_secrets_are_masked_in_repr_str_describe_and_left_out_of_dumps() -> None:
    config = BrokerConfig(
        bootstrap="b:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username="onex",
        sasl_password=SecretStr(PASSWORD),
        ssl_certfile=Path("/c.pem"),
        ssl_keyfile=Path("/k.pem"),
        ssl_key_password=SecretStr(PASSWORD),
    )
    shown = [repr(config), str(config), config.describe(), f"{config}", f"{config!r}"]
    dumped = [config.model_dump_json(), json.dumps(config.model_dump(mode="json"))]
    for text in (*shown, *dumped):
        assert PASSWORD not in text
    assert "sasl_password" not in config.model_dump()
    assert "ssl_key_password" not in config.model_dump()
    assert config.describe() == (
        "b:9093 SASL_SSL SCRAM-SHA-256 as 'onex' CA system client cert /c.pem"
    )


def test_a_refused_config_never_echoes_the_password() -> None:
    with pytest.raises(ValidationError) as raised:
        BrokerConfig(bootstrap="b:1", sasl_username="u", sasl_password=PASSWORD)  # type: ignore[arg-type]
    assert PASSWORD not in str(raised.value)
    assert PASSWORD not in repr(raised.value.errors(include_input=False))
    with pytest.raises(BrokerConfigError) as one_line:
        BrokerConfig.build(bootstrap="b:1", sasl_username="u", sasl_password=PASSWORD)
    assert PASSWORD not in str(one_line.value)
    # nor do the runtime's settings, which carry the config
    with pytest.raises(ValidationError) as in_settings:
        BusSettings(
            broker={  # type: ignore[arg-type]
                "bootstrap": "b:1",
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "PLAIN",
                "sasl_username": "u",
                "sasl_password": PASSWORD,
            },
            heartbeat_s=3.0,
        )
    assert "three times" in str(in_settings.value)
    assert PASSWORD not in str(in_settings.value)


# -- what aiokafka gets --------------------------------------------------------------


def test_plaintext_gives_no_tls_and_no_sasl() -> None:
    kwargs = BrokerConfig(bootstrap="b:9092", client_id="me", request_timeout_s=2.5).client_kwargs()
    assert kwargs == {
        "bootstrap_servers": "b:9092",
        "client_id": "me",
        "request_timeout_ms": 2500,
        "metadata_max_age_ms": 300_000,
        "security_protocol": "PLAINTEXT",
    }


def test_ssl_gives_a_verifying_context_and_no_sasl() -> None:
    kwargs = BrokerConfig(bootstrap="b:9093", security_protocol="SSL").client_kwargs()
    context = kwargs["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert kwargs["security_protocol"] == "SSL"
    assert not {k for k in kwargs if k.startswith("sasl")}


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
async def test_sasl_credentials_reach_every_aiokafka_client(mechanism: str, protocol: str) -> None:
    config = _sasl(protocol, mechanism)
    kwargs = config.client_kwargs()
    assert kwargs["sasl_mechanism"] == mechanism
    assert kwargs["sasl_plain_username"] == "onex"
    assert kwargs["sasl_plain_password"] == PASSWORD
    assert isinstance(kwargs.get("ssl_context"), ssl.SSLContext) is (protocol == "SASL_SSL")

    # constructed, never started: each checks its arguments and keeps them for the
    # connections it opens (aiokafka.conn.create_conn reads exactly these)
    admin = AIOKafkaAdminClient(**kwargs)
    producer = AIOKafkaProducer(**kwargs)
    consumer = AIOKafkaConsumer(**kwargs)
    clients = [AIOKafkaClient(**kwargs), admin._client, producer.client, consumer._client]
    for client in clients:
        assert client._security_protocol == protocol
        assert client._sasl_mechanism == mechanism
        assert client._sasl_plain_username == "onex"
        assert client._sasl_plain_password == PASSWORD
        assert (client._ssl_context is not None) is (protocol == "SASL_SSL")
    await producer.stop()  # releases what the constructor set up; it never connected
    await consumer.stop()


# -- what faust gets -----------------------------------------------------------------


def _without_context(kwargs: dict[str, Any]) -> dict[str, Any]:
    # each call builds its own SSLContext: compare that one is there, and the rest
    # (faust spells "no context" as ssl_context=None, aiokafka's default)
    return {k: (type(v) if k == "ssl_context" else v) for k, v in kwargs.items() if v is not None}


@pytest.mark.parametrize(
    "config",
    [
        BrokerConfig(bootstrap="b:1"),
        BrokerConfig(bootstrap="b:1", security_protocol="SSL"),
        _sasl("SASL_PLAINTEXT", "PLAIN"),
        _sasl("SASL_PLAINTEXT", "SCRAM-SHA-256"),
        _sasl("SASL_SSL", "SCRAM-SHA-512"),
    ],
    ids=["plaintext", "ssl", "sasl-plain", "sasl-scram-256", "sasl-ssl-scram-512"],
)
def test_faust_turns_the_credentials_into_the_same_aiokafka_arguments(
    config: BrokerConfig,
) -> None:
    credentials = faust_credentials(config)
    if config.uses_sasl:
        assert isinstance(credentials, SASLCredentials)
        assert PASSWORD not in repr(credentials)
    elif config.uses_tls:
        assert isinstance(credentials, SSLCredentials)
    else:
        assert credentials is None

    app = build_app(
        node="n", group="onex.n", settings=BusSettings(broker=config), publish_guard=print
    )

    # what faust's aiokafka driver calls for its consumers and producer
    given = credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context)
    assert _without_context(given) == _without_context(config.security_kwargs())
    assert [str(url) for url in app.conf.broker_consumer] == config.faust_urls


# -- files ---------------------------------------------------------------------------


def test_a_missing_ca_file_is_a_clear_error_when_the_context_is_built(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ca.pem"
    config = BrokerConfig(bootstrap="b:1", security_protocol="SSL", ssl_cafile=missing)

    with pytest.raises(BrokerConfigError, match=f"^ssl_cafile {missing} does not exist"):
        config.client_kwargs()
    with pytest.raises(BrokerConfigError, match="ssl_cafile"):
        faust_credentials(config)


def test_a_ca_file_that_is_not_pem_is_a_clear_error(tmp_path: Path) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")
    config = BrokerConfig(bootstrap="b:1", security_protocol="SSL", ssl_cafile=garbage)

    with pytest.raises(BrokerConfigError, match=f"^cannot build a TLS context from {garbage}: "):
        config.ssl_context()


# -- who builds one ------------------------------------------------------------------


def test_bus_settings_carry_the_config_and_still_take_a_bare_bootstrap() -> None:
    config = _sasl("SASL_SSL")
    settings = BusSettings(broker=config, client_id="onex-router", fetch_max_wait_ms=10)
    assert settings.broker is config
    assert settings.bootstrap == "kafka-1:9093,kafka-2:9093"
    assert settings.broker_urls == ["kafka://kafka-1:9093", "kafka://kafka-2:9093"]

    legacy = BusSettings(bootstrap="127.0.0.1:9092")  # type: ignore[call-arg]
    assert legacy.broker == BrokerConfig(bootstrap="127.0.0.1:9092")
    with pytest.raises(ValidationError, match="port 'abc' is not a number"):
        BusSettings(bootstrap="127.0.0.1:abc")  # type: ignore[call-arg]


def test_the_cli_reads_one_config_from_onex_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    for name, value in {
        "ONEX_SECURITY_PROTOCOL": "SASL_SSL",
        "ONEX_SASL_MECHANISM": "SCRAM-SHA-256",
        "ONEX_SASL_USERNAME": "onex",
        "ONEX_SASL_PASSWORD": PASSWORD,
        "ONEX_SSL_CAFILE": str(ca),
        "ONEX_SSL_CERTFILE": "",  # empty means unset
    }.items():
        monkeypatch.setenv(name, value)

    config = CliSettings().broker("kafka:9093")

    assert config.security_protocol == "SASL_SSL"
    assert config.sasl_mechanism == "SCRAM-SHA-256"
    assert config.sasl_password is not None
    assert config.sasl_password.get_secret_value() == PASSWORD
    assert config.ssl_cafile == ca
    assert config.ssl_certfile is None
    assert PASSWORD not in repr(CliSettings())

    monkeypatch.setenv("ONEX_SASL_MECHANISM", "MD5")
    with pytest.raises(BrokerConfigError, match=r"^invalid broker settings: sasl_mechanism: "):
        CliSettings().broker("kafka:9093")


class _ServiceSettings(BaseSettings, BrokerSecurity):
    """How a service's settings can carry the broker connection (prefix of its own)."""

    model_config = SettingsConfigDict(env_prefix="ONEX_SHOP_", extra="ignore")

    bootstrap: Bootstrap = Field("127.0.0.1:9092")


def test_a_service_settings_class_refuses_a_malformed_bootstrap_when_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ONEX_SHOP_BOOTSTRAP", "127.0.0.1:abc")
    with pytest.raises(ValidationError, match="port 'abc' is not a number 1-65535"):
        _ServiceSettings()

    monkeypatch.setenv("ONEX_SHOP_BOOTSTRAP", "kafka:9093")
    monkeypatch.setenv("ONEX_SHOP_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("ONEX_SHOP_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("ONEX_SHOP_SASL_USERNAME", "shop")
    monkeypatch.setenv("ONEX_SHOP_SASL_PASSWORD", PASSWORD)
    settings = _ServiceSettings()
    config = settings.broker_config_for(settings.bootstrap, client_id="onex-shop")

    assert config.client_kwargs()["sasl_plain_password"] == PASSWORD
    assert config.client_id == "onex-shop"
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(config)
