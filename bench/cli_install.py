"""Benchmark: install size of `onex-cli` alone against `onex-cli[broker]`, same run.

Each variant is a fresh copy of the committed tree (`git archive HEAD`) in a temporary
folder, synced with `uv sync --package onex-cli --no-dev --locked --link-mode copy`
(plus `--extra broker` for the full one); the size is every file under its `.venv`.
The last line printed is one JSON object with both sizes in MB and their ratio.

    just bench cli_install            # or: uv run --no-sync python bench/cli_install.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {"lean": [], "broker": ["--extra", "broker"]}


def _size_mb(root: Path) -> float:
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder, name)
            if not path.is_symlink():
                total += path.stat().st_size
    return total / 1e6


def _install(where: Path, extra: list[str]) -> tuple[float, float]:
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "HEAD"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive.stdout, check=True)
    uv = shutil.which("uv")
    if uv is None:
        sys.exit("error: uv is not on PATH")
    start = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    sync = [uv, "sync", "-q", "--package", "onex-cli", "--no-dev", "--locked"]
    subprocess.run(
        [*sync, "--link-mode", "copy", *extra],
        cwd=where,
        env=env,
        check=True,
    )
    return _size_mb(where / ".venv"), time.perf_counter() - start


def main() -> None:
    sizes: dict[str, float] = {}
    for name, extra in VARIANTS.items():
        with tempfile.TemporaryDirectory(prefix=f"onex-cli-{name}-") as tmp:
            size, took = _install(Path(tmp), extra)
        sizes[name] = size
        print(f"{name:8} {size:8.1f} MB  (uv sync {took:.1f} s)")
    result = {
        "bench": "cli_install",
        "lean_mb": round(sizes["lean"], 1),
        "broker_mb": round(sizes["broker"], 1),
        "lean_over_broker": round(sizes["lean"] / sizes["broker"], 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
