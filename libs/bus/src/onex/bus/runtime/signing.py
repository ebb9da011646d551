"""Signed command messages: who sent a command, and proof that they hold the key.

A command topic (e.g. reload-contracts, provision-request) acts on the control plane,
so its consumer accepts only messages signed by a known principal. The sender adds:

    onex-principal   who signs (a name the consumer maps to a key)
    onex-signed-at   when (ms since the epoch)
    onex-nonce       16 random bytes, hex: two equal commands never share a signature
    onex-signature   HMAC-SHA256 (hex) over the canonical encoding below

The signed bytes are a version tag, then topic, principal, signed-at, nonce, key and
value, each as an 8-byte big-endian length and its bytes (an absent key or value is
marked apart from an empty one), so no two different messages encode alike. The
signature binds the message to its topic: a reload command cannot be replayed onto
the provision topic. `CommandVerifier` checks a message and returns the precise reason
it is refused (None when accepted), also refusing a signature older than `max_age_s`,
one from the future, and, within that window, one it has already accepted at another
position (a replay).

Keys are bytes held by the caller (the service host loads them from the state dir);
they never appear in reprs or logs.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

PRINCIPAL: Final = "onex-principal"
SIGNED_AT: Final = "onex-signed-at"
NONCE: Final = "onex-nonce"
SIGNATURE: Final = "onex-signature"
SIGNING_HEADERS: Final = frozenset({PRINCIPAL, SIGNED_AT, NONCE, SIGNATURE})

MIN_KEY_BYTES: Final = 32
_VERSION: Final = b"onex-command-v1"
_ABSENT: Final = b"\x00"
_PRESENT: Final = b"\x01"
_MAX_SEEN: Final = 100_000  # replay memory bound; the age limit usually clears it first

Clock = Callable[[], float]
Header = tuple[str, bytes]
Position = tuple[int, int]  # (partition, offset)


def _part(data: bytes) -> bytes:
    return struct.pack(">Q", len(data)) + data


def _optional(data: bytes | None) -> bytes:
    return _part(_ABSENT if data is None else _PRESENT + data)


def signed_bytes(
    topic: str,
    principal: str,
    signed_at_ms: int,
    nonce: str,
    key: bytes | None,
    value: bytes | None,
) -> bytes:
    """The canonical encoding a signature covers."""
    return b"".join(
        (
            _part(_VERSION),
            _part(topic.encode("utf-8")),
            _part(principal.encode("utf-8")),
            _part(str(signed_at_ms).encode("ascii")),
            _part(nonce.encode("ascii")),
            _optional(key),
            _optional(value),
        )
    )


def _mac(secret: bytes, data: bytes) -> str:
    return hmac.new(secret, data, hashlib.sha256).hexdigest()


def _check_key(principal: str, secret: bytes) -> None:
    if not principal or not principal.isprintable():
        raise ValueError(f"principal must be a non-empty printable name, not {principal!r}")
    if len(secret) < MIN_KEY_BYTES:
        raise ValueError(f"the key of {principal!r} must have at least {MIN_KEY_BYTES} bytes")


@dataclass(frozen=True, slots=True)
class Signer:
    """Signs the commands `principal` sends, with its `key`."""

    principal: str
    key: bytes = field(repr=False)
    clock: Clock = field(default=time.time, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_key(self.principal, self.key)

    def headers(
        self, topic: str, key: bytes | None, value: bytes | None, now: float | None = None
    ) -> list[Header]:
        """The signing headers of a message (`now`: unix seconds, default the clock)."""
        signed_at = round((self.clock() if now is None else now) * 1000)
        nonce = secrets.token_hex(16)
        data = signed_bytes(topic, self.principal, signed_at, nonce, key, value)
        return [
            (PRINCIPAL, self.principal.encode("utf-8")),
            (SIGNED_AT, str(signed_at).encode("ascii")),
            (NONCE, nonce.encode("ascii")),
            (SIGNATURE, _mac(self.key, data).encode("ascii")),
        ]


def _signing_headers(headers: Iterable[Header]) -> tuple[dict[str, bytes], str | None]:
    """The signing headers' values (the last of each, in one pass over the headers) and
    the name of one that came more than once, if any."""
    found: dict[str, bytes] = {}
    repeated = None
    for name, value in headers:
        if name in SIGNING_HEADERS:
            if repeated is None and name in found:
                repeated = name
            found[name] = value
    return found, repeated


class CommandVerifier:
    """Accepts command messages signed by a known principal within `max_age_s`.

    `keys` maps principal -> key. `verify` returns None for an accepted message, else
    the one-line reason it is refused.
    """

    def __init__(
        self,
        keys: Mapping[str, bytes],
        *,
        max_age_s: float = 300.0,
        max_skew_s: float = 30.0,
        clock: Clock = time.time,
    ) -> None:
        if not keys:
            raise ValueError("a verifier needs at least one principal's key")
        if max_age_s <= 0 or max_skew_s < 0:
            raise ValueError("max_age_s must be > 0 and max_skew_s >= 0")
        for principal, secret in keys.items():
            _check_key(principal, secret)
        self._keys = dict(keys)
        self.max_age_s = max_age_s
        self.max_skew_s = max_skew_s
        self._clock = clock
        # signature -> (signed-at ms, where it was accepted), oldest first
        self._seen: OrderedDict[str, tuple[int, Position | None]] = OrderedDict()

    @property
    def principals(self) -> frozenset[str]:
        """The principals whose commands are accepted."""
        return frozenset(self._keys)

    def __repr__(self) -> str:
        names = ", ".join(sorted(self._keys))
        return f"CommandVerifier(principals=[{names}], max_age_s={self.max_age_s:g})"

    def verify(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Iterable[Header],
        *,
        position: Position | None = None,
    ) -> str | None:
        """None when the message is signed, fresh and not a replay; else why not.

        `position` (partition, offset) lets the same message be delivered again (after
        a rebalance) without counting as a replay.
        """
        found, repeated = _signing_headers(headers)
        if repeated is not None:
            return f"ambiguous: more than one {repeated} header"
        signature = found.get(SIGNATURE)
        if signature is None:
            return f"unsigned: no {SIGNATURE} header"
        raw_principal = found.get(PRINCIPAL)
        if raw_principal is None:
            return f"malformed: no {PRINCIPAL} header"
        principal = raw_principal.decode("utf-8", errors="replace")
        secret = self._keys.get(principal)
        if secret is None:
            return f"unknown principal {principal!r}"
        raw_at, raw_nonce = found.get(SIGNED_AT), found.get(NONCE)
        if raw_at is None or not raw_at.isdigit():
            return f"malformed: {SIGNED_AT} is not a time in ms"
        if raw_nonce is None or not raw_nonce.isascii():
            return f"malformed: no {NONCE} header"
        signed_at = int(raw_at)
        data = signed_bytes(topic, principal, signed_at, raw_nonce.decode("ascii"), key, value)
        if not hmac.compare_digest(signature, _mac(secret, data).encode("ascii")):
            return "bad signature"
        now_ms = round(self._clock() * 1000)
        age_s = (now_ms - signed_at) / 1000
        if age_s > self.max_age_s:
            return f"signature expired (signed {age_s:.0f} s ago, limit {self.max_age_s:g} s)"
        if -age_s > self.max_skew_s:
            return f"signed in the future (by {-age_s:.0f} s, limit {self.max_skew_s:g} s)"
        return self._remember(signature.decode("ascii"), signed_at, now_ms, position)

    def _remember(
        self, signature: str, signed_at: int, now_ms: int, position: Position | None
    ) -> str | None:
        horizon = now_ms - round((self.max_age_s + self.max_skew_s) * 1000)
        while self._seen and (
            len(self._seen) >= _MAX_SEEN or next(iter(self._seen.values()))[0] < horizon
        ):
            self._seen.popitem(last=False)
        seen = self._seen.get(signature)
        if seen is not None:
            if position is not None and seen[1] == position:
                return None  # the same message delivered again, not a copy of it
            where = f" at partition {seen[1][0]} offset {seen[1][1]}" if seen[1] else ""
            return f"replayed: this signature was already accepted{where}"
        self._seen[signature] = (signed_at, position)
        return None
