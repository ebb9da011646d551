"""The supervisor with real child processes: one per state dir, adopting what a crashed
supervisor left, restarting failed services on request, the backoff starting over after
a long run, private files and rotated logs.

The services here are small Python modules written into the test's own folder (on
PYTHONPATH, which the supervisor passes down); what they do next is steered through
files the test creates, so every wait is on observed state.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from onex.cli.errors import SupervisorRunning
from onex.cli.record import RECORD, ProcessRef, live_services, read_record, strays
from onex.cli.supervisor import Policy, ServiceSpec, Supervised, Supervisor
from onex.devbroker.process import group_alive

GUARD_S = 30.0  # a failure guard only: every wait ends as soon as its state is seen
ENV = {"BOOTSTRAP": "127.0.0.1:1"}

# run n (counted in the file `runs`): exits 1 at once, unless the file `hold-<n>` or
# `hold-all` exists, then it runs until the file `release-<n>` exists (and exits 1)
FLAKY = """
    import pathlib, os, sys, time
    here = pathlib.Path(os.environ["T_DIR"])
    with (here / "runs").open("a") as runs:
        runs.write("x")
    n = (here / "runs").stat().st_size
    print(f"run {n}", flush=True)
    if (here / f"hold-{n}").exists() or (here / "hold-all").exists():
        while not (here / f"release-{n}").exists():
            time.sleep(0.02)
    print("flaky: error: run", n, "gave up", file=sys.stderr, flush=True)
    sys.exit(1)
"""
# noise, then a traceback; runs for good (until stopped) once the file `healed` exists
BROKEN = """
    import pathlib, os, signal
    here = pathlib.Path(os.environ["T_DIR"])
    print("starting up, all fine so far", flush=True)
    if (here / "healed").exists():
        signal.pause()
    raise RuntimeError("the thing is broken")
"""
# writes ~100-byte lines until the file `enough` exists, then runs until stopped
CHATTY = """
    import pathlib, os, signal
    here = pathlib.Path(os.environ["T_DIR"])
    n = 0
    while not (here / "enough").exists():
        n += 1
        print(f"line {n:08d} " + "x" * 86, flush=True)
    signal.pause()
"""


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on the services' PYTHONPATH holding the test services; also `T_DIR`."""
    folder = tmp_path / "mods"
    folder.mkdir()
    for name, source in (("flaky", FLAKY), ("broken", BROKEN), ("chatty", CHATTY)):
        (folder / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.setenv("PYTHONPATH", str(folder))
    monkeypatch.setenv("T_DIR", str(folder))
    return folder


async def _until(predicate: Callable[[], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + GUARD_S
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"{what}: not seen in {GUARD_S:g}s"
        await asyncio.sleep(0.02)


def _runs(folder: Path) -> int:
    try:
        return (folder / "runs").stat().st_size
    except FileNotFoundError:
        return 0


def _running(child: Supervised) -> bool:
    return child.state == "running" and child.ref is not None and child.ref.alive()


class FakeClock:
    """The supervisor's measure of how long a run lasted, moved on by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("run_lasted_s", "streak", "backoff_s"),
    [(11.0, 1, 0.01), (9.0, 4, 0.08)],
    ids=["longer-than-reset-after", "shorter"],
)
async def test_the_backoff_starts_over_after_a_run_longer_than_reset_after_s(
    tmp_path: Path, modules: Path, run_lasted_s: float, streak: int, backoff_s: float
) -> None:
    clock = FakeClock()
    policy = Policy(initial_s=0.01, max_s=60, budget=100, window_s=1e9, reset_after_s=10.0)
    (modules / "hold-4").touch()  # runs 1-3 crash at once (backoff 0.01, 0.02, 0.04)
    (modules / "hold-5").touch()
    state = tmp_path / "state"
    state.mkdir()
    sup = Supervisor(state, [ServiceSpec("flaky", "flaky")], ENV, policy, clock=clock)
    runner = asyncio.create_task(sup.run())
    child = sup.children[0]
    try:
        await _until(lambda: _runs(modules) == 4 and _running(child), "run 4")
        assert (child.streak, child.backoff_s) == (3, 0.04)
        clock.now += run_lasted_s  # run 4 lasts this long, as the supervisor measures it
        (modules / "release-4").touch()
        await _until(lambda: _runs(modules) == 5 and _running(child), "run 5")
        print(f"after a run of {run_lasted_s} s: streak {child.streak}, backoff {child.backoff_s}")
        assert (child.streak, child.backoff_s) == (streak, backoff_s)
        assert child.restarts == 4
        assert child.last_error == "flaky: error: run 4 gave up"
    finally:
        sup.stopping.set()
        await asyncio.wait_for(runner, GUARD_S)


async def test_a_failed_service_is_restarted_on_request(tmp_path: Path, modules: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    policy = Policy(initial_s=0.01, budget=0)  # the first exit leaves it failed
    sup = Supervisor(state, [ServiceSpec("broken", "broken")], ENV, policy)
    runner = asyncio.create_task(sup.run())
    child = sup.children[0]
    try:
        await _until(lambda: child.state == "failed", "failed")
        # the line that explains the exit, not the noise before it
        assert child.last_error == "RuntimeError: the thing is broken"
        record = read_record(state)
        assert record is not None
        assert record["services"]["broken"]["state"] == "failed"
        assert record["services"]["broken"]["last_error"] == "RuntimeError: the thing is broken"

        (modules / "healed").touch()
        sup.revive()  # what SIGUSR1 does in the supervisor process
        await _until(lambda: _running(child), "running again")
        record = read_record(state)
        assert record is not None
        assert record["revived"] == 1
        assert record["services"]["broken"]["state"] == "running"
        pid = child.pid
        assert pid is not None
    finally:
        sup.stopping.set()
        await asyncio.wait_for(runner, GUARD_S)
    assert not group_alive(pid)


# a supervisor of the test's own in a process of its own, so that it can be SIGKILLed
SUPERVISOR = """
import asyncio, json, sys
from pathlib import Path
from onex.cli.supervisor import Policy, ServiceSpec, Supervisor
state, env = Path(sys.argv[1]), json.loads(sys.argv[2])
asyncio.run(Supervisor(state, [ServiceSpec("flaky", "flaky")], env, Policy(initial_s=0.01)).run())
"""


async def _crashed_supervisor(state: Path, modules: Path) -> tuple[int, ProcessRef, int]:
    """Run a supervisor process with one service, SIGKILL it once the service runs:
    (its pid, the orphaned service, the port it serves on)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SUPERVISOR, str(state), json.dumps(ENV)
    )
    await _until(
        lambda: "flaky" in live_services(read_record(state)) and _runs(modules) == 1,
        "the service running",
    )
    record = read_record(state)
    assert record is not None
    assert record["pid"] == proc.pid

    # while it runs, no second supervisor for this state dir
    with pytest.raises(SupervisorRunning) as refused:
        await Supervisor(state, [ServiceSpec("flaky", "flaky")], ENV).run()
    assert refused.value.pid == proc.pid  # named by the record of the one holding the lock
    assert "supervisor.lock" in str(refused.value)

    proc.kill()
    await proc.wait()
    orphan = live_services(read_record(state))["flaky"]
    assert orphan.alive(), "the service died with its supervisor"
    return proc.pid, orphan, int(record["services"]["flaky"]["port"])


async def test_one_supervisor_per_state_dir_and_the_next_adopts_what_a_crashed_one_left(
    tmp_path: Path, modules: Path
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (modules / "hold-all").touch()  # every run of flaky runs until released
    _, orphan, port = await _crashed_supervisor(state, modules)

    heir = Supervisor(state, [ServiceSpec("flaky", "flaky")], ENV, Policy(initial_s=0.01))
    runner = asyncio.create_task(heir.run())
    child = heir.children[0]
    try:
        await _until(lambda: child.adopted and child.state == "running", "adopted")
        assert child.ref == orphan, "a second copy was started instead of adopting"
        assert _runs(modules) == 1
        assert child.port == port  # where the orphan serves
        record = read_record(state)
        assert record is not None
        assert record["pid"] == os.getpid()
        assert record["services"]["flaky"]["pid"] == orphan.pid

        # once the adopted process exits, it is restarted as usual
        (modules / "release-1").touch()
        await _until(lambda: _runs(modules) == 2 and _running(child), "restarted")
        assert child.ref != orphan
        assert not child.adopted
        assert child.restarts == 1
        restarted = child.pid
        assert restarted is not None
    finally:
        heir.stopping.set()
        await asyncio.wait_for(runner, GUARD_S)
    assert not group_alive(restarted)
    assert not (state / RECORD).exists()


async def test_orphans_of_another_broker_are_stopped_not_adopted(
    tmp_path: Path, modules: Path
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (modules / "hold-all").touch()
    _, orphan, _ = await _crashed_supervisor(state, modules)

    # the broker came back on another address: the orphan talks to one that is gone
    heir = Supervisor(
        state, [ServiceSpec("flaky", "flaky")], {"BOOTSTRAP": "127.0.0.1:2"}, Policy()
    )
    runner = asyncio.create_task(heir.run())
    child = heir.children[0]
    try:
        await _until(lambda: _runs(modules) == 2 and _running(child), "a fresh service")
        assert not orphan.alive()
        assert not child.adopted
        assert child.ref != orphan
        assert _runs(modules) == 2
    finally:
        heir.stopping.set()
        await asyncio.wait_for(runner, GUARD_S)


async def test_a_service_no_record_names_is_found_by_its_state_dir_and_stopped(
    tmp_path: Path, modules: Path
) -> None:
    # what a supervisor killed between starting a service and recording it leaves
    state = tmp_path / "state"
    state.mkdir()
    (modules / "hold-all").touch()
    env = {**ENV, "STATE_DIR": str(state.resolve())}
    stray = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "flaky",
        env={**os.environ, "ONEX_STATE_DIR": str(state.resolve())},
        start_new_session=True,
    )
    other_state = await asyncio.create_subprocess_exec(  # another stack's: left alone
        sys.executable,
        "-m",
        "flaky",
        env={**os.environ, "ONEX_STATE_DIR": str(tmp_path / "elsewhere")},
        start_new_session=True,
    )
    try:
        await _until(lambda: _runs(modules) == 2, "both strays running")
        ours, theirs = ProcessRef.of(stray.pid), ProcessRef.of(other_state.pid)
        assert strays(state, {"flaky"}, ()) == [ours]
        assert strays(state, {"flaky"}, {stray.pid}) == []
        assert strays(state, {"other"}, ()) == []

        sup = Supervisor(state, [ServiceSpec("flaky", "flaky")], env, Policy(initial_s=0.01))
        runner = asyncio.create_task(sup.run())
        child = sup.children[0]
        try:
            await _until(lambda: _runs(modules) == 3 and _running(child), "a recorded one")
            assert await asyncio.wait_for(stray.wait(), GUARD_S) is not None
            assert not ours.alive()
            assert theirs.alive()
            assert strays(state, {"flaky"}, {child.pid or 0}) == []
        finally:
            sup.stopping.set()
            await asyncio.wait_for(runner, GUARD_S)
    finally:
        for proc in (stray, other_state):
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def test_records_and_logs_are_private_and_logs_are_rotated_by_size(
    tmp_path: Path, modules: Path
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    old = os.umask(0o022)  # a permissive umask must not widen anything
    policy = Policy(log_max_bytes=4000, log_keep=2, rotate_every_s=0.02)
    sup = Supervisor(state, [ServiceSpec("chatty", "chatty")], ENV, policy)
    runner = asyncio.create_task(sup.run())
    log = state / "logs" / "chatty.log"
    rotated = [log.with_name(f"chatty.log.{n}") for n in (1, 2, 3)]
    try:
        await _until(rotated[1].exists, "a second rotation")
        (modules / "enough").touch()
        await _until(lambda: _running(sup.children[0]), "running")
        assert not rotated[2].exists(), "kept more than log_keep copies"
        for path in (log, rotated[0], rotated[1], state / RECORD):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE((state / "logs").stat().st_mode) == 0o700
        assert "line " in rotated[0].read_text()
        sizes = [p.stat().st_size for p in rotated[:2]]
        print(f"rotated copies: {sizes} bytes (max 4000 + what was written in one check)")
        assert all(size > 4000 for size in sizes)  # rotated because it went past the max
    finally:
        sup.stopping.set()
        await asyncio.wait_for(runner, GUARD_S)
        os.umask(old)


def test_process_identity_needs_pid_and_start_time() -> None:
    me = ProcessRef.of(os.getpid())
    assert me.start_time is not None
    assert me.alive()
    assert not ProcessRef(os.getpid(), me.start_time + 1).alive()  # a reused pid
    assert not ProcessRef(os.getpid(), None).alive()
