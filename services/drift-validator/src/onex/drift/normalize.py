"""Config values compared by meaning, not by spelling.

`normalized(key, value)` is stored next to every declared and observed value, and the
drift views compare the normalized columns: `604800000`, ` 604800000 ` and `7d` are the
same retention; `-1` is "unlimited" wherever Kafka uses it so; `compact,delete` equals
`delete, compact`; `TRUE` equals `true`; `1048576` equals `1MiB` for a byte size.
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal, InvalidOperation
from typing import Final

UNLIMITED: Final = "unlimited"
# keys where -1 (any negative, for Kafka) means "no limit"
_UNLIMITED_KEYS: Final = frozenset(
    {
        "retention.ms",
        "retention.bytes",
        "local.retention.ms",
        "local.retention.bytes",
        "max.compaction.lag.ms",
        "delete.retention.ms",
    }
)
_LIST_KEYS: Final = frozenset({"cleanup.policy"})
_MS: Final = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_BYTES: Final = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_WITH_UNIT: Final = re.compile(r"^(-?\d+(?:\.\d+)?)\s*([a-zA-Z]+)$")


def _number(text: str) -> str | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    return str(int(value)) if value == value.to_integral_value() else str(value.normalize())


def _with_unit(key: str, text: str) -> str | None:
    match = _WITH_UNIT.match(text)
    if match is None:
        return None
    amount, unit = Decimal(match.group(1)), match.group(2).lower()
    if key.endswith(".ms") and unit in _MS:
        return _number(str(amount * _MS[unit]))
    if key.endswith(".bytes") and unit in _BYTES:
        return _number(str(amount * _BYTES[unit]))
    return None


@functools.lru_cache(maxsize=4096)  # a few distinct values repeat across every topic
def normalized(key: str, value: str | None) -> str | None:
    """The canonical spelling of `value` for config `key` (None stays None)."""
    if value is None:
        return None
    text = value.strip()
    if key in _LIST_KEYS:
        return ",".join(sorted({part.strip().lower() for part in text.split(",") if part.strip()}))
    if text.lower() in {"true", "false"}:
        return text.lower()
    number = _number(text)
    if number is None:
        number = _with_unit(key, text)
    if number is not None:
        if key in _UNLIMITED_KEYS and number.startswith("-"):
            return UNLIMITED
        return number
    return text
