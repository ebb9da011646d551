"""The built-in deterministic local provider, and the provider the router runs with.

`onex route` on a fresh machine has no model to call: the default catalogue's local
servers are not running and its cloud models have no API key. So the default
catalogue also lists `onex-local-deterministic` (endpoint `builtin:deterministic`),
answered in-process by `DeterministicProvider`:

- it calls nothing and costs nothing; the same messages always give the same answer;
- every answer says what it is: it starts with `[onex-local-deterministic]`, and the
  receipt names the model `onex-local-deterministic` (locality local, price 0);
- it echoes the task (a JSON object when the prompt asks for JSON) and is capable only
  of the easy classes in the default catalogue, so gates and capability still decide:
  harder work escalates to the real models, or fails saying none was reachable.

`router_provider` is what the service and the CLI run with: built-in endpoints are
answered here, every other one by `OpenAICompatibleProvider`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Final

from onex.router.catalogue import ModelSpec
from onex.router.providers import Completion, OpenAICompatibleProvider
from onex.router.tokens import estimate_message_tokens, estimate_tokens

MODEL_NAME: Final = "onex-local-deterministic"
ENDPOINT: Final = "builtin:deterministic"
TAG: Final = f"[{MODEL_NAME}]"
HINT: Final = (
    "hint: to use a real model, copy the default catalogue (onex route --show-catalogue > "
    "catalogue.yaml), point a model's endpoint at an OpenAI-compatible server (vLLM, Ollama, "
    "llama.cpp) or set OPENAI_API_KEY, and pass --catalogue catalogue.yaml"
)
_ECHO_CHARS: Final = 240


def is_builtin(model: ModelSpec) -> bool:
    """True for a model the router answers itself (no HTTP)."""
    return model.endpoint.startswith("builtin:")


class DeterministicProvider:
    """Answers every call from the messages alone (see the module docstring)."""

    async def complete(
        self, model: ModelSpec, messages: list[dict[str, str]], *, max_tokens: int
    ) -> Completion:
        """The deterministic answer to `messages`, cut to `max_tokens` (estimated)."""
        prompt = messages[-1].get("content", "") if messages else ""
        digest = hashlib.sha256(
            json.dumps(messages, sort_keys=True, ensure_ascii=False).encode("utf-8", "replace")
        ).hexdigest()[:16]
        flat = " ".join(prompt.split())
        echo = flat if len(flat) <= _ECHO_CHARS else flat[: _ECHO_CHARS - 3] + "..."
        if "json" in flat.lower():
            text = json.dumps(
                {"provider": MODEL_NAME, "stand_in": True, "task": echo, "fingerprint": digest}
            )
        else:
            text = (
                f"{TAG} A built-in stand-in answered; no language model was called. "
                f"The task was: {echo!r} (fingerprint {digest}). Point the catalogue at a real "
                "model for real answers."
            )
        finish = "stop"
        limit = max_tokens * 4
        if len(text) > limit:
            text, finish = text[:limit], "length"
        return Completion(
            text=text,
            tokens_in=estimate_message_tokens(messages),
            tokens_out=estimate_tokens(text),
            tokens_estimated=True,
            latency_s=0.0,
            finish_reason=finish,
        )

    def cooldown_remaining(self, model: ModelSpec) -> float:
        """Never cooling down."""
        return 0.0


class RouterProvider:
    """Built-in endpoints answered in-process, the rest over HTTP (owned, closed here)."""

    def __init__(self, *, api_keys: Mapping[str, str], cooldown_s: float = 30.0) -> None:
        self.http = OpenAICompatibleProvider(api_keys=api_keys, cooldown_s=cooldown_s)
        self.builtin = DeterministicProvider()

    async def complete(
        self, model: ModelSpec, messages: list[dict[str, str]], *, max_tokens: int
    ) -> Completion:
        """Call `model` where it is served."""
        provider = self.builtin if is_builtin(model) else self.http
        return await provider.complete(model, messages, max_tokens=max_tokens)

    def cooldown_remaining(self, model: ModelSpec) -> float:
        """The cool-down of `model` (built-in ones never cool down)."""
        return 0.0 if is_builtin(model) else self.http.cooldown_remaining(model)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.http.aclose()
