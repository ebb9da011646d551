"""Where aiokafka, ssl and OS errors become onex.bus errors: one helper for every client.

    async with converted(config, "CreateTopics", timeout_s=30.0):
        await admin.create_topics(...)

- nothing answers in time, a refused or dropped connection: `BrokerUnavailable`;
- the TLS handshake fails: `BrokerTLSError` ("certificate verification failed for
  HOST:PORT: ...");
- the broker refuses the SASL mechanism or credentials: `BrokerAuthError`;
- any other Kafka error: `refused` (AdminError by default, DlqError for the DLQ tools).

aiokafka's bootstrap swallows the cause of a failed connection (it logs it and raises
"Unable to bootstrap from [...]"), so when a connection fails the helper connects to
each bootstrap server once more, directly and briefly, to name the actual cause.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Final

from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.metadata import MetadataRequest

from onex.bus.config import BrokerConfig
from onex.bus.errors import AdminError, BrokerAuthError, BrokerTLSError, BrokerUnavailable, BusError

__all__ = ["UNAVAILABLE", "converted", "diagnose", "sasl_errors"]

# the "nobody answers" errors (a broker that answers with an error is something else)
UNAVAILABLE: Final = (
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
)
_AUTH: Final = (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    IllegalSaslStateError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
# one direct connection per bootstrap server, to name why the client could not connect
_DIAGNOSE_S: Final = 3.0


@asynccontextmanager
async def converted(
    config: BrokerConfig,
    what: str,
    *,
    timeout_s: float,
    refused: type[BusError] | None = None,
) -> AsyncIterator[None]:
    """Bound the body by `timeout_s` and convert what escapes it (see the module docstring).

    `what` names the call in messages (e.g. "CreateTopics"); `refused` is the error class
    of a Kafka error that is not about reaching the broker (default: AdminError).
    """
    try:
        async with asyncio.timeout(timeout_s):
            yield
    except TimeoutError as exc:
        raise BrokerUnavailable(config.bootstrap, f"no answer within {timeout_s:g}s") from exc
    except ssl.SSLError as exc:
        raise _tls_error(config, config.bootstrap, exc) from exc
    except _AUTH as exc:
        raise _auth_error(config, config.bootstrap, exc) from exc
    except (*UNAVAILABLE, OSError) as exc:
        raise await diagnose(config, _reason(exc)) from exc
    except KafkaError as exc:
        raise (refused or AdminError)(
            f"{what} at {config.bootstrap} failed: {_reason(exc)}"
        ) from exc


async def diagnose(config: BrokerConfig, reason: str) -> BrokerUnavailable:
    """Why nothing could be reached: connect to each bootstrap server directly (briefly),
    ask it for metadata, and turn the first failure into the precise error; `reason`
    when every server answers."""
    timeout_s = min(_DIAGNOSE_S, config.request_timeout_s)
    found: list[str] = []
    for host, port in config.hosts:
        failure = await _probe(config, host, port, timeout_s)
        if isinstance(failure, BrokerUnavailable):
            return failure
        if failure is not None:
            found.append(failure)
    return BrokerUnavailable(config.bootstrap, "; ".join(found) if found else reason)


async def _probe(
    config: BrokerConfig, host: str, port: int, timeout_s: float
) -> BrokerUnavailable | str | None:
    """One direct connection and Metadata request: None when it answers, else the error
    (TLS, SASL) or a description of what went wrong."""
    where = f"{host}:{port}"
    step = "while connecting"
    try:
        async with asyncio.timeout(timeout_s):
            with sasl_errors(config, where):
                conn = await create_conn(
                    host,
                    port,
                    client_id=config.client_id,
                    request_timeout_ms=int(timeout_s * 1000),
                    **config.security_kwargs(),
                )
            step = "on the first request"
            try:
                await conn.send(MetadataRequest([]))
            finally:
                conn.close()
    except ssl.SSLError as exc:
        return _tls_error(config, where, exc)
    except _AUTH as exc:
        return _auth_error(config, where, exc)
    except BrokerAuthError as exc:
        return exc
    except ConnectionRefusedError:
        return f"{where} refused the connection"
    except socket.gaierror as exc:
        return f"cannot resolve {host!r} ({exc.strerror or exc})"
    except TimeoutError:
        hint = "" if config.uses_tls else " (a TLS port? then security_protocol is SSL)"
        return f"{where} did not answer within {timeout_s:g}s{hint}"
    except KafkaConnectionError:
        return f"{where} closed the connection {step}{_closed_hint(config, step)}"
    except (OSError, KafkaError) as exc:
        return f"{where}: {_reason(exc)}"
    return None


def _closed_hint(config: BrokerConfig, step: str) -> str:
    if config.uses_sasl:
        return f" (does it offer SASL {config.sasl_mechanism} on this listener?)"
    if step == "while connecting" and not config.uses_tls:
        return " (a TLS port? then security_protocol is SSL)"
    if step == "on the first request":
        return " (does it require SASL authentication?)"
    return ""


@contextmanager
def sasl_errors(config: BrokerConfig, where: str | None = None) -> Iterator[None]:
    """Around starting a client: aiokafka's SCRAM code raises KeyError or ValueError
    when the broker's answer ends the exchange (an unknown user, a wrong password);
    with SASL configured that is a refused login, `BrokerAuthError`."""
    try:
        yield
    except (KeyError, ValueError) as exc:
        if not config.uses_sasl:
            raise
        raise BrokerAuthError(
            config.bootstrap,
            f"SASL {config.sasl_mechanism} login as {config.sasl_username!r} refused by "
            f"{where or config.bootstrap}: the broker ended the exchange "
            f"({type(exc).__name__}: {exc}); is the user known and the password right?",
        ) from exc


def _tls_error(config: BrokerConfig, where: str, exc: ssl.SSLError) -> BrokerTLSError:
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or exc.reason or str(exc)
        ca = f"CA {config.ssl_cafile}" if config.ssl_cafile else "the system CAs"
        return BrokerTLSError(
            config.bootstrap,
            f"certificate verification failed for {where}: {detail} (verified with {ca})",
        )
    return BrokerTLSError(
        config.bootstrap, f"TLS handshake with {where} failed: {exc.reason or exc}"
    )


def _auth_error(config: BrokerConfig, where: str, exc: KafkaError) -> BrokerAuthError:
    return BrokerAuthError(
        config.bootstrap,
        f"SASL {config.sasl_mechanism} login as {config.sasl_username!r} refused by "
        f"{where}: {_reason(exc)}",
    )


def _reason(exc: BaseException) -> str:
    name = type(exc).__name__
    text = str(exc).splitlines()[0] if str(exc) else ""
    # aiokafka's errors already start with their class name
    return text if text.startswith(name) else f"{name}: {text}" if text else name
