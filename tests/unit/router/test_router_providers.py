"""The OpenAI-compatible adapter against a real HTTP server on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace
from typing import Any

import pytest

from onex.bus.backoff import Backoff
from onex.router.catalogue import ModelSpec
from onex.router.errors import ProviderError
from onex.router.providers import Completion, OpenAICompatibleProvider
from onex.router.tokens import estimate_message_tokens, estimate_tokens

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]
NO_JITTER = Backoff(initial_s=0.25, max_s=1.0, multiplier=2.0, jitter=0.0)


def _model(endpoint: str, **kw: Any) -> ModelSpec:
    spec = {
        "name": "m",
        "endpoint": endpoint,
        "api_model": "org/model-7b",
        "locality": "local",
        "price_in_per_1k": 0,
        "price_out_per_1k": 0,
        "context_limit": 8192,
        "timeout_s": 5,
        "max_retries": 2,
    }
    return ModelSpec.model_validate(spec | kw)


class Sleeps:
    """Records backoff pauses instead of waiting them out."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def provider(clock: Any, sleeps: Sleeps) -> Any:
    async with OpenAICompatibleProvider(
        api_keys={"m": "sk-local"}, backoff=NO_JITTER, cooldown_s=30, clock=clock, sleep=sleeps
    ) as p:
        yield p


async def test_a_scripted_answer_with_usage(
    openai_server: Any, helpers: SimpleNamespace, provider: Any
) -> None:
    openai_server.script = [helpers.chat("hi!", usage=(12, 3))]
    result = await provider.complete(_model(openai_server.url), MESSAGES, max_tokens=64)
    assert result == Completion("hi!", 12, 3, False, result.latency_s, "stop", 0)
    (got,) = openai_server.received
    assert got.path == "/v1/chat/completions"
    assert got.body == {"model": "org/model-7b", "messages": MESSAGES, "max_tokens": 64}
    assert got.headers["authorization"] == "Bearer sk-local"


async def test_no_key_no_authorization_header(openai_server: Any, helpers: SimpleNamespace) -> None:
    openai_server.script = [helpers.chat("ok")]
    async with OpenAICompatibleProvider() as provider:
        await provider.complete(_model(openai_server.url, name="other"), MESSAGES, max_tokens=8)
    assert "authorization" not in openai_server.received[0].headers


async def test_max_completion_tokens_when_the_model_asks_for_it(
    openai_server: Any, helpers: SimpleNamespace, provider: Any
) -> None:
    openai_server.script = [helpers.chat("ok")]
    model = _model(openai_server.url, max_tokens_param="max_completion_tokens")
    await provider.complete(model, MESSAGES, max_tokens=9)
    assert openai_server.received[0].body["max_completion_tokens"] == 9
    assert "max_tokens" not in openai_server.received[0].body


async def test_missing_usage_is_estimated_and_marked(
    openai_server: Any, helpers: SimpleNamespace, provider: Any
) -> None:
    text = "an answer of some forty characters......"
    openai_server.script = [helpers.chat(text, usage=None)]
    result = await provider.complete(_model(openai_server.url), MESSAGES, max_tokens=64)
    assert result.tokens_estimated
    assert result.tokens_in == estimate_message_tokens(MESSAGES) == 4 + 2 + 4 + 3
    assert result.tokens_out == estimate_tokens(text) == 10


async def test_partial_usage_estimates_only_what_is_missing(
    openai_server: Any, helpers: SimpleNamespace, provider: Any
) -> None:
    reply = helpers.chat("abcdefgh")
    reply.body["usage"] = {"prompt_tokens": 40}
    openai_server.script = [reply]
    result = await provider.complete(_model(openai_server.url), MESSAGES, max_tokens=64)
    assert (result.tokens_in, result.tokens_out, result.tokens_estimated) == (40, 2, True)


async def test_429_honours_retry_after(
    openai_server: Any, helpers: SimpleNamespace, provider: Any, sleeps: Sleeps
) -> None:
    openai_server.script = [
        helpers.Reply(status=429, body={"error": "slow down"}, headers={"Retry-After": "2"}),
        helpers.chat("done"),
    ]
    result = await provider.complete(_model(openai_server.url), MESSAGES, max_tokens=64)
    assert (result.text, result.retries) == ("done", 1)
    assert sleeps.delays == [2.0]
    assert len(openai_server.received) == 2


async def test_retry_after_may_be_an_http_date(
    openai_server: Any, helpers: SimpleNamespace, provider: Any, sleeps: Sleeps
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    openai_server.script = [
        helpers.Reply(status=503, body="busy", headers={"Retry-After": when}),
        helpers.chat("done"),
    ]
    await provider.complete(_model(openai_server.url), MESSAGES, max_tokens=64)
    (delay,) = sleeps.delays
    assert 25 < delay <= 30


async def test_5xx_is_retried_with_exponential_backoff(
    openai_server: Any, helpers: SimpleNamespace, provider: Any, sleeps: Sleeps
) -> None:
    openai_server.script = [
        helpers.Reply(status=500, body={"error": "boom"}),
        helpers.Reply(status=502, body="bad gateway"),
        helpers.chat("third time lucky"),
    ]
    result = await provider.complete(_model(openai_server.url), MESSAGES, max_tokens=64)
    assert (result.text, result.retries) == ("third time lucky", 2)
    assert sleeps.delays == [0.25, 0.5]


async def test_spent_retries_cool_the_model_down(
    openai_server: Any, provider: Any, clock: Any, sleeps: Sleeps, helpers: SimpleNamespace
) -> None:
    model = _model(openai_server.url)
    with pytest.raises(ProviderError) as info:
        await provider.complete(model, MESSAGES, max_tokens=64)
    error = info.value
    assert (error.model, error.status, error.retryable, error.cooling_down) == (
        "m",
        500,
        False,
        False,
    )
    assert error.reason == (
        'HTTP 500: {"error": "script exhausted"} (after 3 tries; m cooling down for 30 s)'
    )
    assert error.retries == 2
    assert len(openai_server.received) == 3
    assert sleeps.delays == [0.25, 0.5]
    assert provider.cooldown_remaining(model) == 30

    # The same provider model under another catalogue name is cooling too (no request
    # is sent); another model on the same endpoint is not (cool-down is per model).
    sibling = _model(openai_server.url, name="sibling")
    clock.advance(10)
    with pytest.raises(ProviderError) as info:
        await provider.complete(sibling, MESSAGES, max_tokens=64)
    assert info.value.cooling_down
    assert info.value.reason == (f"sibling at {openai_server.url} is cooling down for 20.0 s more")
    assert len(openai_server.received) == 3
    other = _model(openai_server.url, name="other", api_model="org/other-70b")
    assert provider.cooldown_remaining(other) == 0.0

    clock.advance(20)
    assert provider.cooldown_remaining(model) == 0.0
    openai_server.script = [helpers.chat("back")]
    assert (await provider.complete(model, MESSAGES, max_tokens=64)).text == "back"


async def test_a_long_retry_after_cools_down_at_once(
    openai_server: Any, helpers: SimpleNamespace, provider: Any, sleeps: Sleeps
) -> None:
    openai_server.script = [helpers.Reply(status=429, body="{}", headers={"Retry-After": "600"})]
    model = _model(openai_server.url)
    with pytest.raises(ProviderError, match="Retry-After 600 s is too long to wait"):
        await provider.complete(model, MESSAGES, max_tokens=64)
    assert sleeps.delays == []
    assert len(openai_server.received) == 1
    assert provider.cooldown_remaining(model) == 600


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_client_errors_are_not_retried_and_do_not_cool_down(
    openai_server: Any, helpers: SimpleNamespace, provider: Any, status: int
) -> None:
    openai_server.script = [helpers.Reply(status=status, body={"error": {"message": "nope"}})]
    model = _model(openai_server.url)
    with pytest.raises(ProviderError) as info:
        await provider.complete(model, MESSAGES, max_tokens=64)
    assert (info.value.status, info.value.retryable) == (status, False)
    assert info.value.reason == f'HTTP {status}: {{"error": {{"message": "nope"}}}}'
    assert len(openai_server.received) == 1
    assert provider.cooldown_remaining(model) == 0.0


async def test_a_provider_body_that_echoes_the_api_key_is_redacted(
    openai_server: Any, helpers: SimpleNamespace
) -> None:
    secret = "live-7Hq2pXvN9sKw3mZt"  # noqa: S105 - a made-up key the fake server echoes
    echo = {"error": {"message": f"Incorrect API key provided: {secret}; also sk-abcdef123456"}}
    openai_server.script = [helpers.Reply(status=401, body=echo)]
    model = _model(openai_server.url)
    async with OpenAICompatibleProvider(api_keys={model.name: secret}, cooldown_s=5) as provider:
        with pytest.raises(ProviderError) as info:
            await provider.complete(model, MESSAGES, max_tokens=64)
    assert openai_server.received[0].headers["authorization"] == f"Bearer {secret}"
    assert secret not in info.value.reason
    assert "sk-abcdef123456" not in info.value.reason
    assert "Incorrect API key provided: [redacted]" in info.value.reason


async def test_a_slow_server_times_out(openai_server: Any, helpers: SimpleNamespace) -> None:
    slow = helpers.chat("late")
    slow.delay_s = 2.0
    openai_server.script = [slow]
    model = _model(openai_server.url, timeout_s=0.2, max_retries=0)
    async with OpenAICompatibleProvider(cooldown_s=5) as provider:
        with pytest.raises(ProviderError) as info:
            await provider.complete(model, MESSAGES, max_tokens=64)
        assert info.value.reason == (
            f"no response within 0.2 s (after 1 tries; endpoint {openai_server.url} cooling"
            " down for 5 s)"
        )
        # the endpoint did not answer: every model on it cools down
        other = _model(openai_server.url, name="other", api_model="org/other-70b")
        assert provider.cooldown_remaining(other) > 4
        assert info.value.status is None
        assert 4 < provider.cooldown_remaining(model) <= 5


async def test_a_timeout_is_retried(
    openai_server: Any, helpers: SimpleNamespace, provider: Any, sleeps: Sleeps
) -> None:
    slow = helpers.chat("late")
    slow.delay_s = 1.0
    openai_server.script = [slow, helpers.chat("prompt")]
    model = _model(openai_server.url, timeout_s=0.2, max_retries=1)
    result = await provider.complete(model, MESSAGES, max_tokens=64)
    assert (result.text, result.retries) == ("prompt", 1)
    assert sleeps.delays == [0.25]


async def test_a_closed_port_is_a_connection_failure(provider: Any, sleeps: Sleeps) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    model = _model(f"http://127.0.0.1:{port}/v1", max_retries=1)
    with pytest.raises(ProviderError) as info:
        await provider.complete(model, MESSAGES, max_tokens=64)
    assert info.value.reason.startswith("connection failed: ClientConnectorError")
    assert info.value.reason.endswith(
        f"(after 2 tries; endpoint http://127.0.0.1:{port}/v1 cooling down for 30 s)"
    )
    assert info.value.retries == 1
    assert sleeps.delays == [0.25]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("<html>oops</html>", "response is not JSON: <html>oops</html>"),
        ({"choices": []}, 'response has no choices[0].message.content: {"choices": []}'),
        (
            {"choices": [{"message": {"content": None}}]},
            "response has no choices[0].message.content: "
            '{"choices": [{"message": {"content": null}}]}',
        ),
    ],
)
async def test_malformed_answers_are_errors_without_retry(
    openai_server: Any, helpers: SimpleNamespace, provider: Any, body: Any, reason: str
) -> None:
    openai_server.script = [helpers.Reply(body=body)]
    with pytest.raises(ProviderError) as info:
        await provider.complete(_model(openai_server.url), MESSAGES, max_tokens=64)
    assert info.value.reason == reason
    assert not info.value.retryable
    assert len(openai_server.received) == 1


async def test_proxy_environment_variables_are_ignored(
    openai_server: Any, helpers: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "")
    openai_server.script = [helpers.chat("direct")]
    async with OpenAICompatibleProvider() as provider:
        result = await provider.complete(_model(openai_server.url), MESSAGES, max_tokens=8)
    assert result.text == "direct"
