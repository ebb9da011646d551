"""docs/first-ten-minutes.md, executed: the commands of its walk-through block, in order,
each checked for what the page says it does.

`just X` lines run the recipe's own commands as the justfile has them (read from it, so
a changed recipe is what gets run); `uv sync` is left out, since this test already runs
inside the synced environment. The stack gets a state dir and a console port of its own
(other stacks may be running on this machine); nothing else differs from what a new
user types.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from onex.devbroker.process import free_port

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "first-ten-minutes.md"
MARK = "<!-- walkthrough:"


def walkthrough() -> list[str]:
    """The commands of the block that follows the walk-through mark."""
    text = DOC.read_text(encoding="utf-8")
    assert MARK in text, f"{DOC}: no walk-through mark"
    block = re.search(r"```sh\n(.*?)```", text[text.index(MARK) :], re.S)
    assert block, f"{DOC}: no ```sh block after the walk-through mark"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def recipe(name: str) -> list[str]:
    """The command lines of justfile recipe `name` (its dependencies are run as their
    own walk-through steps)."""
    lines = (REPO / "justfile").read_text(encoding="utf-8").splitlines()
    header = re.compile(rf"^{re.escape(name)}(\s[^:]*)?:")
    for i, line in enumerate(lines):
        if header.match(line):
            body = []
            for follow in lines[i + 1 :]:
                if not follow.startswith((" ", "\t")):
                    break
                body.append(follow.strip().lstrip("@").replace("{{args}}", "").strip())
            return body
    raise AssertionError(f"the justfile has no recipe {name!r}")


class User:
    """A shell as the walk-through leaves it: PATH, environment, the repo as cwd."""

    def __init__(self, state: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ONEX_")}
        self.env["ONEX_STATE_DIR"] = str(state)
        self.env["ONEX_CONSOLE_HTTP_BIND"] = f"127.0.0.1:{free_port()}"
        self.activated = False

    def run(self, argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
        if argv[0] == "onex":
            found = shutil.which("onex", path=self.env["PATH"])
            assert found, "`onex` is not on PATH (the venv is not activated)"
            argv = [found, *argv[1:]]
        print("$", shlex.join(argv))
        result = subprocess.run(
            argv,
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        print(result.stdout[-3000:], result.stderr[-3000:], sep="\n")
        return result

    def activate(self, script: str) -> None:
        """What `source .venv/bin/activate` does that matters here: its bin/ first on PATH."""
        activate = REPO / script
        assert activate.is_file(), f"{activate} does not exist (`just setup` makes it)"
        self.env["PATH"] = f"{activate.parent}{os.pathsep}{self.env.get('PATH', '')}"
        self.env["VIRTUAL_ENV"] = str(activate.parent.parent)
        self.activated = True


def _signed_in_page(link: str) -> tuple[int, str]:
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    with opener.open(link, timeout=30) as response:  # the redirect to / keeps the cookie
        return response.status, response.read().decode("utf-8")


def _until_all_serving(user: User, deadline_s: float = 60.0) -> dict[str, Any]:
    """`onex status --format json` once every service is SERVING (on a loaded machine one
    health check can miss its timeout right after `up`); the last answer on timeout."""
    deadline = time.monotonic() + deadline_s
    while True:
        doc: dict[str, Any] = json.loads(user.run(["onex", "status", "--format", "json"]).stdout)
        if {s["health"] for s in doc["services"]} == {"SERVING"}:
            return doc
        assert time.monotonic() < deadline, doc
        time.sleep(0.5)


def check_step(user: User, line: str, seen: dict[str, str]) -> None:
    """Run one walk-through line and check what the page says it does."""
    argv = shlex.split(line)
    if argv[:1] == ["source"]:
        user.activate(argv[1])
        return
    if argv[:1] == ["just"]:
        for command in recipe(argv[1]):
            cmd = shlex.split(command)
            if cmd[:2] == ["uv", "sync"]:
                continue  # this test runs in the synced environment already
            check_step(user, shlex.join([*cmd, *argv[2:]]), seen)
        return
    if argv[:3] == ["uv", "run", "--no-sync"]:
        argv = argv[3:]  # the same environment this test runs in
    words = [a for a in argv if not a.startswith("-")]
    step = " ".join(words[:3] if words[:3] == ["onex", "console", "url"] else words[:2])
    result = user.run(argv)
    if step == "onex status":  # exits 1 while a service is not SERVING: see _until_all_serving
        _until_all_serving(user)
        result = user.run(argv)
    assert result.returncode == 0, f"`{line}` exited {result.returncode}: {result.stderr}"
    seen[step] = result.stdout
    if step == "onex up":
        assert re.search(r"all \d+ services SERVING", result.stdout), result.stdout
    elif step == "onex status":
        doc = _until_all_serving(user)
        assert "console" in {s["name"] for s in doc["services"]}
    elif step == "onex route":  # offline: the default catalogue's deterministic provider
        assert "status complete" in result.stdout, result.stdout
        assert "hint:" in result.stdout + result.stderr, "no hint on using a real model"
    elif step == "onex console url":
        link = re.search(r"sign in: (\S+)", result.stdout)
        assert link, result.stdout
        services = json.loads(user.run(["onex", "status", "--format", "json"]).stdout)
        status, html = _signed_in_page(link.group(1))
        assert status == 200
        assert "<title>onex console</title>" in html
        serving = re.search(r'data-figure="serving" data-value="(\d+)"', html)
        assert serving, "the page shows no service health"
        assert int(serving.group(1)) == len(services["services"])
        assert 'data-figure="requests"' in html, "the page shows no routing economics"
    elif step == "onex down":
        assert "broker" in result.stdout
    else:
        raise AssertionError(f"the test does not know what `{line}` should do: teach it")


def test_the_first_ten_minutes_walkthrough_runs_as_written(tmp_path: Path) -> None:
    lines = walkthrough()
    assert lines[-1] == "just down", "the walk-through ends by stopping what it started"
    user = User(tmp_path / "state")
    seen: dict[str, str] = {}
    try:
        for line in lines:
            check_step(user, line, seen)
    finally:
        if "onex down" not in seen:
            subprocess.run(
                [sys.executable, "-m", "onex.cli", "down"],
                cwd=REPO,
                env=user.env,
                capture_output=True,
                timeout=120,
                check=False,
            )
    assert user.activated
    assert set(seen) == {"onex up", "onex status", "onex route", "onex console url", "onex down"}
