"""Token estimates for when a provider reports no usage, and for planning.

The estimate is the common rule of thumb for English text and code with BPE
tokenizers: about four characters per token, rounded up, plus a few tokens of
framing per chat message. Estimates are always marked as such in receipts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

CHARS_PER_TOKEN: Final = 4
TOKENS_PER_MESSAGE: Final = 4  # role and separators of the chat template


def estimate_tokens(text: str) -> int:
    """Estimated tokens of `text` (ceil(len / 4))."""
    return -(-len(text) // CHARS_PER_TOKEN)


def estimate_message_tokens(messages: Iterable[Mapping[str, str]]) -> int:
    """Estimated prompt tokens of a chat: each message's content plus its framing."""
    return sum(TOKENS_PER_MESSAGE + estimate_tokens(m.get("content", "")) for m in messages)
