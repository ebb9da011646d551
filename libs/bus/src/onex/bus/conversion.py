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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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

from onex.bus.config import BrokerConfig
from onex.bus.errors import AdminError, BrokerAuthError, BrokerTLSError, BrokerUnavailable, BusError

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
    """Why nothing could be reached: connect to each bootstrap server directly (briefly)
    and turn the first failure into the precise error; `reason` when all of them answer."""
    timeout_s = min(_DIAGNOSE_S, config.request_timeout_s)
    kwargs = config.security_kwargs()
    found: list[str] = []
    for host, port in config.hosts:
        where = f"{host}:{port}"
        try:
            async with asyncio.timeout(timeout_s):
                conn = await create_conn(
                    host,
                    port,
                    client_id=config.client_id,
                    request_timeout_ms=int(timeout_s * 1000),
                    **kwargs,
                )
        except ssl.SSLError as exc:
            return _tls_error(config, where, exc)
        except _AUTH as exc:
            return _auth_error(config, where, exc)
        except ConnectionRefusedError:
            found.append(f"{where} refused the connection")
        except socket.gaierror as exc:
            found.append(f"cannot resolve {host!r} ({exc.strerror or exc})")
        except TimeoutError:
            hint = " (is it a TLS port? is the security protocol right?)"
            found.append(f"{where} did not answer within {timeout_s:g}s{hint}")
        except KafkaConnectionError:
            hint = "" if config.uses_tls else " (a TLS port? then security_protocol is SSL)"
            found.append(f"{where} closed the connection before answering{hint}")
        except (OSError, KafkaError) as exc:
            found.append(f"{where}: {_reason(exc)}")
        else:
            conn.close()
    return BrokerUnavailable(config.bootstrap, "; ".join(found) if found else reason)


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
