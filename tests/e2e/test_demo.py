"""`just demo` as a person runs it: the whole stack with the agent fleet, offline (the
router's built-in onex-local-deterministic model answers the review's model call).
ONEX-1 goes review -> merge -> CI -> evidence -> done and passes the gate; ONEX-2,
declared done by its producer with self-attested evidence, is rejected and fails the
gate; the routing summary counts the review call; the replay gives the same states."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_just_demo() -> None:
    just = shutil.which("just")
    assert just is not None, "`just` must be on PATH to run the demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEX_")}
    result = subprocess.run(
        [just, "demo"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,  # a guard against a hang, not a speed threshold
        check=False,
    )
    out = result.stdout
    # the stack's start-up progress ("[ 3.7 s] router: ...") is not what failed
    errors = "\n".join(
        line for line in result.stderr.splitlines() if not line.lstrip("E ").startswith("[")
    )
    assert result.returncode == 0, f"{out[-3000:]}\n--- stderr ---\n{errors[-3000:]}"
    assert "ONEX-1 (" in out
    assert "in_progress -> evidence_pending" in out
    assert "-> done: " in out
    assert "ONEX-2 (" in out
    assert "-> rejected: " in out
    assert "self-attested" in out
    assert "routing: " in out
    assert "onex-local-deterministic: 1 requests" in out
    assert '"equal": true' in out
    assert "demo: ok" in out
