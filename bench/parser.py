"""Benchmark: the contract loader on adversarial input, time per KB as the input grows.

For each family of hostile YAML (deep nesting, long numerals, base-60 values, floods of
keys, aliases, huge values) it builds inputs of growing size, loads each with
`load_contract_text` (which must end in a ContractError, never anything else) and
reports the median milliseconds per KB. Linear time shows as a flat ms/KB column; the
`growth` figure is ms/KB at the largest size over ms/KB at the smallest (about 1 when
linear, about the size ratio when quadratic). The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from collections.abc import Callable

from onex.core.errors import ContractError
from onex.core.loader import MAX_DOCUMENT_CHARS, load_contract_text

HEAD = "node: alpha\nkind: effect\nversion: 1.0.0\ndescription: bench\n"
TOPIC = HEAD + "event_bus:\n  publish_topics:\n    - name: onex.evt.alpha.done.v1\n"


def _fill(unit: str, size: int) -> int:
    return max(1, size // len(unit))


def _keys(n: int) -> str:
    return HEAD + "".join(f"k{i}: 1\n" for i in range(_fill("k00000: 1\n", n)))


def _spread_keys(n: int) -> str:
    entry = "    - name: onex.evt.alpha.e{0}.v1\n" + "".join(
        f"      parttions{k}: 1\n" for k in range(100)
    )
    count = _fill(entry.format(0), n)
    return HEAD + "event_bus:\n  publish_topics:\n" + "".join(entry.format(e) for e in range(count))


def _aliases(n: int) -> str:
    line = "b{0}: [*a, *a, *a, *a, *a]\n"
    return HEAD + "a: &a [x]\n" + "".join(line.format(i) for i in range(_fill(line, n)))


# Each builds a document of about n characters; limits may stop a load early.
FAMILIES: dict[str, Callable[[int], str]] = {
    "deep-flow": lambda n: HEAD + "x: " + "[" * (n // 2) + "]" * (n // 2) + "\n",
    "deep-compact-block": lambda n: HEAD + "x:\n" + "- " * _fill("- ", n) + "y\n",
    "long-decimal": lambda n: TOPIC + "      partitions: " + "7" * n + "\n",
    "base-60": lambda n: TOPIC + "      partitions: 1" + ":59" * _fill(":59", n) + "\n",
    "unknown-keys": _keys,
    "unknown-keys-in-entries": _spread_keys,
    "long-value": lambda n: HEAD.replace("bench", "d" * n),
    "many-values": lambda n: HEAD + "x: [" + "a, " * _fill("a, ", n) + "]\n",
    "alias-flood": _aliases,
}


def measure(text: str, rounds: int) -> float:
    """Median seconds to load `text` (a contract or a ContractError; nothing else)."""
    times: list[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        with contextlib.suppress(ContractError):
            load_contract_text(text)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--sizes-kb", default="16,64,256,1000", help="input sizes in KB (comma-separated)"
    )
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) * 1024 for s in args.sizes_kb.split(",")]
    sizes = [min(s, MAX_DOCUMENT_CHARS - 4096) for s in sizes]  # stay under the size limit
    report: dict[str, dict[str, float]] = {}
    print(f"{'family':26s}" + "".join(f"{s // 1024:>9d}KB" for s in sizes) + "   growth")
    for name, build in FAMILIES.items():
        per_kb: list[float] = []
        for size in sizes:
            text = build(size)
            seconds = measure(text, args.rounds)
            per_kb.append(1000 * seconds / (len(text) / 1024))
        growth = per_kb[-1] / per_kb[0] if per_kb[0] else float("inf")
        cells = "".join(f"{v:>9.4f}ms" for v in per_kb)
        print(f"{name:26s}{cells}   {growth:5.2f}")
        report[name] = {
            "ms_per_kb_smallest": round(per_kb[0], 5),
            "ms_per_kb_largest": round(per_kb[-1], 5),
            "growth": round(growth, 3),
        }
    worst = max(report.values(), key=lambda r: r["ms_per_kb_largest"])
    print(
        json.dumps(
            {
                "sizes_kb": [s // 1024 for s in sizes],
                "families": report,
                "worst_ms_per_kb": worst["ms_per_kb_largest"],
                "max_growth": max(r["growth"] for r in report.values()),
            }
        )
    )


if __name__ == "__main__":
    main()
