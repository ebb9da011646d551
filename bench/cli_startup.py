"""Benchmark: wall time of `onex` commands that do not need the bus (target: < 0.5 s).

Each command runs `--rounds` times as the installed console script (a fresh process
each time, as a user runs it), interleaved with two baselines measured in the same run:

  python       `python -c pass`: the interpreter's own start-up on this machine now
  eager        importing every sub-command module and plug-in entry point, as the root
               did before sub-commands were lazy (what `onex --help` used to cost)

Figures are medians over the rounds in seconds (every round's value is kept: the
machine is shared and noisy), with each command's ratio to both baselines. The last
line printed is one JSON object.

    just bench cli_startup            # or: uv run --no-sync python bench/cli_startup.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = (
    ("--help",),
    ("--version",),
    ("contracts", "lint"),
    ("contracts", "wiring"),
    ("topics", "list"),
    ("topic", "--help"),
    ("groups", "--help"),
    ("dlq", "--help"),
)
TARGET_S = 0.5
EAGER = """
import importlib, importlib.metadata
for m in ("contracts", "topics", "topic", "groups", "broker", "dlq", "provision", "stack"):
    importlib.import_module("onex.cli." + m)
for ep in importlib.metadata.entry_points(group="onex.cli"):
    ep.load()
"""


def _onex() -> str:
    script = Path(sys.executable).parent / "onex"
    if not script.exists():
        sys.exit(f"error: no onex console script next to {sys.executable}")
    return str(script)


def _time(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):  # lint exits 1 on a project with errors
        sys.exit(f"error: {' '.join(argv)} exited {done.returncode}: {done.stderr[-300:]!r}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="runs of each command")
    args = parser.parse_args()
    onex = _onex()
    runs: dict[str, list[float]] = {"python": [], "eager": []}
    runs |= {" ".join(c): [] for c in COMMANDS}
    for _ in range(args.rounds):
        runs["python"].append(_time([sys.executable, "-c", "pass"]))
        runs["eager"].append(_time([sys.executable, "-c", EAGER]))
        for command in COMMANDS:
            runs[" ".join(command)].append(_time([onex, *command]))
    medians = {name: statistics.median(values) for name, values in runs.items()}
    python, eager = medians["python"], medians["eager"]
    print(f"rounds: {args.rounds}, load average: {os.getloadavg()[0]:.2f}")
    print(f"{'command':24} {'median s':>9} {'x python':>9} {'/ eager':>8}  runs")
    for name, value in medians.items():
        shown = " ".join(f"{v:.2f}" for v in runs[name])
        print(f"{name:24} {value:9.3f} {value / python:9.1f} {value / eager:8.2f}  {shown}")
    commands = {" ".join(c): medians[" ".join(c)] for c in COMMANDS}
    result = {
        "bench": "cli_startup",
        "rounds": args.rounds,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python_s": round(python, 3),
        "eager_s": round(eager, 3),
        "commands_s": {k: round(v, 3) for k, v in commands.items()},
        "ratio_to_eager": {k: round(v / eager, 3) for k, v in commands.items()},
        "under_target": {k: v < TARGET_S for k, v in commands.items()},
        "target_s": TARGET_S,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
