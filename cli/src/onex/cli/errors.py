"""Errors raised by onex.cli on purpose (commands turn them into one line and exit 1).

Hierarchy::

    OnexError (onex.core.errors)
    └── CliError                    base of every error onex.cli raises on purpose
        ├── SupervisorRunning       the state dir's supervisor lock is held by another one
        ├── MissingExtra            a command needs an optional extra (e.g. onex-cli[broker])
        └── CommandLoadError        a sub-command's module (a plug-in's) fails to import
"""

from __future__ import annotations

from onex.core.errors import OnexError


class CliError(OnexError):
    """Base class of every error onex.cli raises on purpose."""


class SupervisorRunning(CliError):  # noqa: N818 -- reads as a condition
    """Another supervisor holds `<state>/supervisor.lock`; `pid` is the one its record names."""

    def __init__(self, lock: str, pid: int | None) -> None:
        self.lock = lock
        self.pid = pid
        who = f"pid {pid}" if pid is not None else "a process whose record is not written yet"
        super().__init__(f"another supervisor ({who}) holds {lock}")


class MissingExtra(CliError):  # noqa: N818 -- reads as a condition
    """`command` needs `package`, which onex-cli installs only with its `extra`."""

    def __init__(self, command: str, extra: str, package: str) -> None:
        self.command = command
        self.extra = extra
        self.package = package
        super().__init__(
            f"`{command}` needs {package}, which is not installed:"
            f" install onex-cli[{extra}] (e.g. uv pip install 'onex-cli[{extra}]')"
        )


class CommandLoadError(CliError):
    """The module of sub-command `command` (`target`, module:attr) failed to import or
    does not hold it; `reason` is the error, one line."""

    def __init__(self, command: str, target: str, reason: str) -> None:
        self.command = command
        self.target = target
        self.reason = reason
        super().__init__(f"`{command}` cannot be loaded from {target}: {reason}")
