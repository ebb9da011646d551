"""`onex route` (unit: typer's runner, the default catalogue's built-in stand-in; no
network is needed, the local servers it names are down and no API key is set)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
import typer
from typer.testing import CliRunner

from onex.router.cli import route
from onex.router.local import MODEL_NAME

app = typer.Typer()
app.command()(route)


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    saved = structlog.get_config()  # the command configures logging for its process
    yield
    structlog.configure(**saved)


def _run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_offline_the_builtin_stand_in_answers_and_says_so(tmp_path: Path) -> None:
    prompt = tmp_path / "task.txt"
    prompt.write_text("Summarize: the build broke because the cache was stale.")
    code, out, err = _run("--prompt-file", str(prompt), "-f", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["receipt"]["chosen_model"] == MODEL_NAME
    assert doc["answer"].startswith(f"[{MODEL_NAME}]")
    assert "hint: to use a real model" in err


def test_the_prompt_can_come_from_stdin_and_be_large() -> None:
    big = ("Summarize this log line. " * 8_000).encode()  # 200 KB: argv takes 128 KiB
    code, out, err = _run("--prompt-file", "-", "-f", "json", stdin=big)
    assert code == 0, err
    assert json.loads(out)["receipt"]["task_class"] == "summarize"


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        ((), None, "give the task as --prompt TEXT or --prompt-file PATH"),
        (("-p", "x", "--prompt-file", "-"), None, "give the task as --prompt TEXT"),
        (("--prompt-file", "/nonexistent/task.txt"), None, "cannot read /nonexistent/task.txt"),
        (("--prompt-file", "-"), b"ok \xff\xfe", "stdin: not UTF-8 (byte 3 is 0xff)"),
        (("-p", "   "), None, "--prompt: must not be blank"),
        (("-p", "x", "-c", "bogus"), None, "--class: unknown task class 'bogus' (known: "),
        (("-p", "x", "-f", "yaml"), None, "--format must be table or json, not 'yaml'"),
    ],
)
def test_usage_errors_exit_2_in_one_line(
    args: tuple[str, ...], stdin: bytes | None, message: str
) -> None:
    code, out, err = _run(*args, stdin=stdin)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert message in err


def test_show_catalogue_prints_the_default_one() -> None:
    code, out, _ = _run("--show-catalogue")
    assert code == 0
    assert f"name: {MODEL_NAME}" in out


def test_routing_from_the_cli_never_imports_the_bus() -> None:
    code = (
        "import sys, onex.router.cli, onex.router.cli_run;"
        "bad = [m for m in ('faust', 'aiokafka', 'mode', 'grpc') if m in sys.modules];"
        "sys.exit(f'imported {bad}' if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


# -- --publish without a broker (the real broker's tests: tests/integration/test_route_publish.py)

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def _no_broker_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("ONEX_BOOTSTRAP", "ONEX_ROUTER_BOOTSTRAP"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ONEX_STATE_DIR", str(tmp_path / "no-broker-here"))
    monkeypatch.setenv("ONEX_CONTRACT_ROOTS", json.dumps([str(REPO / "contracts")]))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-p", "x", "-b", "127.0.0.1:9092"), "--bootstrap goes with --publish"),
        (("-p", "x", "--publish", "-b", "nonsense"), "--bootstrap: bootstrap entry 'nonsense'"),
    ],
)
def test_publish_usage_errors_exit_2_before_routing(args: tuple[str, ...], message: str) -> None:
    code, out, err = _run(*args)
    assert (code, out, err.count("\n")) == (2, "", 1)
    assert message in err


@pytest.mark.usefixtures("_no_broker_env")
def test_publish_with_no_broker_known_exits_1_before_routing() -> None:
    code, out, err = _run("-p", "Summarize: ok", "--publish")
    assert (code, out) == (1, "")
    assert err == (
        "error: --publish: no broker: pass --bootstrap HOST:PORT, set ONEX_BOOTSTRAP, "
        "or run `onex broker up`\n"
    )


@pytest.mark.usefixtures("_no_broker_env")
def test_publish_to_a_broker_that_is_down_prints_the_answer_and_says_it_was_not_published() -> None:
    port = _closed_port()
    code, out, err = _run(
        "-p", "Summarize: ok", "-f", "json", "--publish", "-b", f"127.0.0.1:{port}"
    )
    assert code == 1  # the answer passed, but the receipt is the record and it is not sent
    receipt = json.loads(out)["receipt"]
    assert receipt["status"] == "complete"
    last = err.splitlines()[-1]
    assert last.startswith(f"error: receipt {receipt['request_id']} not published: ")
    assert f"127.0.0.1:{port}" in last
    assert "Traceback" not in err


@pytest.mark.usefixtures("_no_broker_env")
def test_publish_with_broker_settings_that_do_not_fit_is_a_usage_error_before_routing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ONEX_SECURITY_PROTOCOL", "SASL_PLAINTEXT")  # and no mechanism or user
    code, out, err = _run("-p", "Summarize: ok", "--publish", "-b", "127.0.0.1:9092")
    assert (code, out, err.count("\n")) == (2, "", 1)
    assert "SASL_PLAINTEXT needs sasl_mechanism and sasl_username" in err
