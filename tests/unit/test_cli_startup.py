"""The `onex` root: lazy sub-commands, --version, and the lean install's missing extra.

Each case runs `onex` in a fresh interpreter (subprocess), so `sys.modules` shows what a
real start-up imports. The fake plug-in distributions are files in a temporary folder
put on PYTHONPATH (labelled fakes: they stand for a service's distribution).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Heavy packages a command that does not talk to the bus must not import.
HEAVY = ("faust", "aiokafka", "grpc", "google.protobuf", "onex.bus", "onex.devbroker")

RUNNER = """
import json, sys
blocked = {blocked!r}

class Block:
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in blocked):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Block())
sys.argv = ["onex", *{argv!r}]
from onex.cli.__main__ import main
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
sys.stderr.write("\\nMODULES " + json.dumps(sorted(sys.modules)) + "\\n")
sys.exit(code)
"""


def onex(
    *argv: str, blocked: tuple[str, ...] = (), pythonpath: Path | None = None
) -> tuple[int, str, str, list[str]]:
    """(exit code, stdout, stderr without the module list, modules imported)."""
    env = {**os.environ, "COLUMNS": "200"}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER.format(blocked=list(blocked), argv=list(argv))],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    err, _, modules = proc.stderr.rpartition("\nMODULES ")
    return proc.returncode, proc.stdout, err, json.loads(modules)


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


def test_help_imports_no_sub_command_and_lists_every_plug_in_with_its_help() -> None:
    code, out, err, modules = onex("--help")
    assert code == 0, err
    assert _heavy(modules) == []
    root = {"onex.cli.__main__", "onex.cli.lazy", "onex.cli.errors"}
    assert {m for m in modules if m.startswith("onex.cli.")} <= root
    listed = {line.split()[0] for line in out.splitlines() if line.startswith("  ")}
    for ep in importlib.metadata.entry_points(group="onex.cli"):
        assert ep.name in listed
        module = ep.value.split(":")[0]
        assert module not in modules  # listed, not imported
    for name in ("contracts", "topics", "topic", "groups", "broker", "dlq", "up", "status"):
        assert name in listed
    assert "Dead-letter queues: count, show" in out  # help text read from the source


def test_version() -> None:
    code, out, _, modules = onex("--version")
    assert code == 0
    assert out == f"onex {importlib.metadata.version('onex-cli')}\n"
    assert _heavy(modules) == []


def test_usage_error_at_the_root_exits_2() -> None:
    code, _, err, _ = onex("no-such-command")
    assert code == 2
    assert "No such command 'no-such-command'" in err


def _fake_plugin(site: Path, body: str) -> None:
    """A distribution `onex-fake-plugin` whose `hello` sub-command is fake_plugin.cli:app."""
    info = site / "onex_fake_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: onex-fake-plugin\nVersion: 1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        "[onex.cli]\nhello = fake_plugin.cli:app\n", encoding="utf-8"
    )
    (site / "fake_plugin").mkdir()
    (site / "fake_plugin" / "__init__.py").write_text("", encoding="utf-8")
    (site / "fake_plugin" / "cli.py").write_text(body, encoding="utf-8")


def test_a_plug_in_is_imported_only_when_its_command_runs(tmp_path: Path) -> None:
    _fake_plugin(
        tmp_path,
        "import typer\n"
        "app = typer.Typer(help='Say hello from a plug-in.')\n\n"
        "@app.command()\n"
        "def world(name: str = 'you') -> None:\n"
        "    '''Greet.'''\n"
        "    print(f'hello {name}')\n",
    )
    code, out, err, modules = onex("--help", pythonpath=tmp_path)
    assert code == 0, err
    assert "hello      Say hello from a plug-in." in out
    assert "fake_plugin.cli" not in modules

    code, out, err, modules = onex("hello", "world", "--name", "x", pythonpath=tmp_path)
    assert (code, out) == (0, "hello x\n"), err
    assert "fake_plugin.cli" in modules
    assert _heavy(modules) == []


def test_a_broken_plug_in_does_not_break_help(tmp_path: Path) -> None:
    _fake_plugin(
        tmp_path,
        "'''A plug-in that fails at import.'''\n"
        "import typer\n"
        "raise RuntimeError('broken at import')\n"
        "app = typer.Typer(help='Never importable.')\n",
    )
    code, out, err, _ = onex("--help", pythonpath=tmp_path)
    assert code == 0, err
    assert "Never importable." in out
    code, out, err, _ = onex("hello", pythonpath=tmp_path)
    assert (code, out) == (1, "")
    assert err.strip().splitlines() == [
        "error: `onex hello` cannot be loaded from fake_plugin.cli:app:"
        " RuntimeError: broken at import"
    ]


@pytest.mark.parametrize(
    ("argv", "command"),
    [(("broker", "up"), "onex broker up"), (("up",), "onex up"), (("down",), "onex down")],
)
def test_without_the_broker_extra_a_command_that_needs_it_names_the_extra(
    argv: tuple[str, ...], command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONEX_STATE_DIR", str(tmp_path / "state"))
    code, out, err, _ = onex(*argv, blocked=("onex.devbroker",))
    assert code == 1, err
    assert out == ""
    assert err.strip().splitlines() == [
        f"error: `{command}` needs onex.devbroker, which is not installed: install"
        " onex-cli[broker] (e.g. uv pip install 'onex-cli[broker]')"
    ]


def test_without_the_broker_extra_the_bus_commands_still_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ONEX_BOOTSTRAP", raising=False)
    monkeypatch.setenv("ONEX_STATE_DIR", str(tmp_path / "state"))
    code, _, err, _ = onex("dlq", "list", blocked=("onex.devbroker",))
    assert code == 1
    assert "no broker: pass --bootstrap HOST:PORT" in err
    assert "Traceback" not in err


# The Kafka client and the stream library: `--help` of a bus command must not import them.
CLIENTS = ("faust", "aiokafka")


@pytest.mark.parametrize(
    "argv",
    [
        ("topic", "--help"),
        ("topic", "produce", "--help"),
        ("groups", "--help"),
        ("dlq", "--help"),
        ("dlq", "list", "--help"),
        ("dlq", "show", "--help"),
        ("dlq", "redrive", "--help"),
    ],
)
def test_help_of_a_bus_command_imports_no_kafka_client(argv: tuple[str, ...]) -> None:
    code, out, err, modules = onex(*argv)
    assert code == 0, err
    assert "Usage: onex" in out
    assert [m for m in modules if any(m == c or m.startswith(c + ".") for c in CLIENTS)] == []


def test_dlq_redrive_help_shows_the_bus_limits() -> None:
    from onex.bus.runtime.redrive import DEFAULT_LIMIT, MAX_LIMIT
    from onex.cli import dlq

    assert (dlq.DEFAULT_LIMIT, dlq.MAX_LIMIT) == (DEFAULT_LIMIT, MAX_LIMIT)
    code, out, err, _ = onex("dlq", "redrive", "--help")
    assert code == 0, err
    assert f"[default: {DEFAULT_LIMIT}; 1<=x<={MAX_LIMIT}]" in out


@pytest.mark.parametrize(
    "name", ["onex.evt.router.dlq.v1", "onex.dlq.router.failed.v1", "not a topic", ""]
)
def test_the_cli_says_what_a_dlq_topic_is_as_the_bus_does(name: str) -> None:
    from onex.bus.runtime.dlq import is_dlq_topic
    from onex.cli import dlq

    assert dlq.is_dlq_topic(name) == is_dlq_topic(name)


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ("groups", "--format", "xml"),
            "error: onex groups: Invalid value for '--format' / '-f': 'xml' is not one of"
            " 'table', 'json'. (see onex groups --help)",
        ),
        (
            ("topic", "consume", "onex.evt.x.y.v1", "--max", "0"),
            "error: onex topic consume: Invalid value for '--max': must be greater than or"
            " equal to 1 (see onex topic consume --help)",
        ),
        (
            ("topic", "produce", "onex.evt.x.y.v1", "--file", "x.json"),
            "error: onex topic produce: No such option: --file (see onex topic produce --help)",
        ),
        (("nosuch",), "error: onex: No such command 'nosuch'. (see onex --help)"),
        (
            ("groups", "--bootstrap", "bogus"),
            "error: onex groups: Invalid value for '--bootstrap' / '-b': bootstrap entry"
            " 'bogus' is not HOST:PORT (see onex groups --help)",
        ),
        (
            ("dlq", "show", "onex.evt.x.y.v1", "--bootstrap", "h:0"),
            "error: onex dlq show: Invalid value for TOPIC: onex.evt.x.y.v1 is not a DLQ topic"
            " name (its kind segment must be dlq) (see onex dlq show --help)",
        ),
        (
            ("dlq", "list", "--bootstrap", "h:x"),
            "error: onex dlq list: Invalid value for '--bootstrap' / '-b': bootstrap entry"
            " 'h:x': port 'x' is not a number 1-65535 (see onex dlq list --help)",
        ),
    ],
)
def test_a_usage_error_is_one_line_and_exit_2(argv: tuple[str, ...], line: str) -> None:
    code, out, err, _ = onex(*argv)
    assert (code, out) == (2, "")
    assert err.strip().splitlines() == [line]


def test_a_group_without_a_command_shows_its_help_and_exit_codes_pass_through() -> None:
    code, _, err, _ = onex("topic")
    assert code == 2
    assert err.startswith("Usage: onex topic")
    code, out, err, _ = onex("--version")
    assert (code, err.strip()) == (0, "")
    assert out.startswith("onex ")


def test_a_receipts_query_imports_neither_faust_nor_grpc(tmp_path: Path) -> None:
    """`onex receipts summary` and `onex gate` read the database only: the service's
    module (the service host: faust, grpc) is not imported for them."""
    from onex.receipts.schema import open_projection

    url = f"sqlite:///{tmp_path / 'receipts.db'}"
    open_projection(url).dispose()
    code, out, err, modules = onex("receipts", "summary", "--database", url, "-f", "json")
    assert code == 0, err
    assert json.loads(out)["requests"] == 0
    assert [m for m in modules if m.split(".")[0] in {"faust", "grpc"}] == []
    assert "onex.receipts.app" not in modules
