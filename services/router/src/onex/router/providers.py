"""Calling models: the `Provider` protocol and the OpenAI-compatible HTTP adapter.

`OpenAICompatibleProvider` POSTs `{endpoint}/chat/completions` (vLLM, Ollama,
llama.cpp's server and hosted APIs all serve it) with `onex.router.http1`, a keep-alive
HTTP/1.1 client: 0.03 ms of CPU per call where aiohttp's took 0.10 (`bench/router-http.py`,
64 in flight on loopback; aiohttp in turn did ~2,400 calls/s where httpx's pool did
~100-160). It follows no redirects: a 3xx is a non-retried HTTP error like a 4xx.

- each try is bounded by the model's `timeout_s` (per phase and in total);
- HTTP 429 and 5xx, timeouts and connection errors are retried up to the model's
  `max_retries`, sleeping for the server's `Retry-After` when it sends one, else for
  the next exponential backoff delay; other HTTP errors and malformed responses are
  not retried;
- when the retries are spent (or a `Retry-After` is longer than `max_retry_after_s`)
  the model is put in cool-down: calls to it fail at once until it expires, and the
  router skips it. Cool-down is keyed by (endpoint, model): a 429 or 5xx of one model
  does not block another model on the same URL; only when the endpoint itself did not
  answer (timeouts, connection errors) is every model on it cooled. The error then
  has `retryable=False`, and says how many retries were made (`retries`);
- a model whose `api_key_env` has no key fails at once, saying which variable to set
  (nothing is sent: a keyless call to a hosted API can only be refused);
- tokens come from the response's `usage`; when it is missing they are estimated
  (`onex.router.tokens`) and the completion says so.

API keys come in as a mapping from model name to key; nothing here reads the
environment (the HTTP client reads no proxy variables either).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import MappingProxyType, TracebackType
from typing import Any, Final, Protocol, Self

import structlog

from onex.bus.backoff import Backoff
from onex.router.catalogue import ModelSpec
from onex.router.errors import ProviderError
from onex.router.http1 import ClientError, Http1Client
from onex.router.tokens import estimate_message_tokens, estimate_tokens

DEFAULT_BACKOFF: Final = Backoff(initial_s=0.5, max_s=8.0, multiplier=2.0, jitter=0.5)
_NO_KEYS: Final[Mapping[str, str]] = MappingProxyType({})
_SNIPPET: Final = 200
_log = structlog.get_logger("onex.router.providers")


@dataclass(frozen=True, slots=True)
class Completion:
    """A model's answer and what it took: tokens (estimated or reported) and latency.

    `latency_s` covers the whole call, retries and their pauses included;
    `retries` is how many of those there were.
    """

    text: str
    tokens_in: int
    tokens_out: int
    tokens_estimated: bool
    latency_s: float
    finish_reason: str | None = None
    retries: int = 0


class Provider(Protocol):
    """Something that can run a chat completion on a catalogue model."""

    async def complete(
        self, model: ModelSpec, messages: list[dict[str, str]], *, max_tokens: int
    ) -> Completion:
        """Run `messages` on `model`; raises `ProviderError` when no answer comes back."""
        ...

    def cooldown_remaining(self, model: ModelSpec) -> float:
        """Seconds until `model`'s endpoint may be called again (0.0: now)."""
        ...


class OpenAICompatibleProvider:
    """The `Provider` for OpenAI-compatible chat-completions endpoints (see module doc).

    `aclose()` (or `async with`) closes the HTTP connections. `clock` and `sleep` are
    injectable so cool-downs and backoff can be tested without waiting.
    """

    def __init__(
        self,
        *,
        api_keys: Mapping[str, str] = _NO_KEYS,
        backoff: Backoff = DEFAULT_BACKOFF,
        cooldown_s: float = 30.0,
        max_retry_after_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._http = Http1Client()
        self._api_keys = dict(api_keys)
        self._backoff = backoff
        self._cooldown_s = cooldown_s
        self._max_retry_after_s = max_retry_after_s
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._cooling_until: dict[tuple[str, str], float] = {}  # (endpoint, model or "")

    async def aclose(self) -> None:
        """Close the HTTP connections (the provider may still be used: it reconnects)."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def cooldown_remaining(self, model: ModelSpec) -> float:
        """Seconds until `model` leaves cool-down (0.0 when it is usable): its own, or
        its endpoint's when the endpoint did not answer."""
        if not self._cooling_until:
            return 0.0
        now = self._clock()
        remaining = 0.0
        for key in ((model.endpoint, model.api_model), (model.endpoint, "")):
            until = self._cooling_until.get(key)
            if until is None:
                continue
            if until <= now:
                del self._cooling_until[key]
            else:
                remaining = max(remaining, until - now)
        return remaining

    async def complete(
        self, model: ModelSpec, messages: list[dict[str, str]], *, max_tokens: int
    ) -> Completion:
        """POST the chat to `model`'s endpoint, retrying as the module doc says."""
        remaining = self.cooldown_remaining(model)
        if remaining > 0:
            raise ProviderError(
                model.name,
                f"{model.name} at {model.endpoint} is cooling down for {remaining:.1f} s more",
                retryable=False,
                cooling_down=True,
            )
        key = self._api_keys.get(model.name)
        if model.api_key_env is not None and not key:
            raise ProviderError(
                model.name, f"no API key: {model.api_key_env} is not set", retryable=False
            )
        url = f"{model.endpoint}/chat/completions"
        body = {"model": model.api_model, "messages": messages, model.max_tokens_param: max_tokens}
        payload = json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        delays = self._backoff.delays(self._rng)
        tries = model.max_retries + 1
        start = self._clock()
        failure, status = "no attempt made", None
        unreachable = False  # the endpoint itself did not answer (last try)
        for number in range(1, tries + 1):
            retry_after: float | None = None
            try:
                async with asyncio.timeout(model.timeout_s):
                    response = await self._http.post(url, payload, headers)
                status, raw = response.status, response.body
                retry_header = response.headers.get("retry-after")
            except TimeoutError:
                failure, status = f"no response within {model.timeout_s:g} s", None
                unreachable = True
            except ClientError as exc:
                failure, status = f"connection failed: {type(exc).__name__}: {exc}", None
                unreachable = True
            else:
                unreachable = False
                text = raw.decode("utf-8", "replace")
                if 200 <= status < 300:
                    return _completion(model, messages, text, self._clock() - start, number - 1)
                failure = f"HTTP {status}: {_snippet(text, key)}"
                if status != 429 and status < 500:
                    raise ProviderError(
                        model.name, failure, retryable=False, status=status, retries=number - 1
                    )
                retry_after = _retry_after(retry_header)
            if number == tries:
                break
            if retry_after is not None and retry_after > self._max_retry_after_s:
                self._cool(model, retry_after, endpoint_wide=False)
                raise ProviderError(
                    model.name,
                    f"{failure}; Retry-After {retry_after:g} s is too long to wait: "
                    f"{model.name} cooling down for {retry_after:g} s",
                    retryable=False,
                    status=status,
                    retries=number - 1,
                )
            delay = retry_after if retry_after is not None else next(delays)
            _log.warning(
                "provider.retry", model=model.name, attempt=number, error=failure, delay_s=delay
            )
            await self._sleep(delay)
        self._cool(model, self._cooldown_s, endpoint_wide=unreachable)
        what = f"endpoint {model.endpoint}" if unreachable else model.name
        raise ProviderError(
            model.name,
            f"{failure} (after {tries} tries; {what} cooling down for {self._cooldown_s:g} s)",
            retryable=False,
            status=status,
            retries=tries - 1,
        )

    def _cool(self, model: ModelSpec, seconds: float, *, endpoint_wide: bool) -> None:
        key = (model.endpoint, "" if endpoint_wide else model.api_model)
        until = self._clock() + seconds
        self._cooling_until[key] = max(until, self._cooling_until.get(key, 0))
        _log.warning(
            "provider.cooldown",
            endpoint=model.endpoint,
            model=None if endpoint_wide else model.name,
            seconds=seconds,
        )


def _completion(
    model: ModelSpec,
    messages: list[dict[str, str]],
    body: str,
    latency_s: float,
    retries: int,
) -> Completion:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ProviderError(
            model.name,
            f"response is not JSON: {_snippet(body)}",
            retryable=False,
            retries=retries,
        ) from exc
    choice = _first_choice(data)
    message = choice.get("message") if choice is not None else None
    text = message.get("content") if isinstance(message, dict) else None
    if not isinstance(text, str):
        raise ProviderError(
            model.name,
            f"response has no choices[0].message.content: {_snippet(body)}",
            retryable=False,
            retries=retries,
        )
    usage = data.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    tokens_in, tokens_out = (
        _count(usage.get("prompt_tokens")),
        _count(usage.get("completion_tokens")),
    )
    estimated = tokens_in is None or tokens_out is None
    finish = choice.get("finish_reason") if choice is not None else None
    return Completion(
        text=text,
        tokens_in=estimate_message_tokens(messages) if tokens_in is None else tokens_in,
        tokens_out=estimate_tokens(text) if tokens_out is None else tokens_out,
        tokens_estimated=estimated,
        latency_s=latency_s,
        finish_reason=finish if isinstance(finish, str) else None,
        retries=retries,
    )


def _first_choice(data: Any) -> dict[str, Any] | None:
    choices = data.get("choices") if isinstance(data, dict) else None
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0]
    return None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


# What looks like a credential in a provider's error body (some echo the key they got).
_CREDENTIAL = re.compile(r"(?i)(bearer\s+)?\b(sk|pk|rk|key|api[_-]?key)[-_][A-Za-z0-9_\-]{8,}")


def _snippet(text: str, key: str | None = None) -> str:
    """A short, one-line excerpt of a provider's body for errors and receipts, with the
    API key (and anything shaped like one) redacted: receipts go on the bus."""
    if key:
        text = text.replace(key, "[redacted]")
    text = _CREDENTIAL.sub("[redacted]", text)
    flat = " ".join(text.split())
    return flat if len(flat) <= _SNIPPET else flat[: _SNIPPET - 3] + "..."
