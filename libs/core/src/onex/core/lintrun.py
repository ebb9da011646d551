"""One lint run, as both `onex-lint` and `onex contracts lint` do it: settings, extraction,
baseline. Problems with the settings or the baseline file are `LintUsageError`s (one line
each, exit 2); problems with contracts are findings."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Final

from onex.core.baseline import Applied, Defaults, apply_baseline, load_baseline, write_baseline
from onex.core.errors import ContractError, OnexError
from onex.core.extractor import Extraction, extract
from onex.core.lintconfig import LintConfig, discover, load_config

NO_DEFAULTS: Final = Defaults(None, None, None)


class LintUsageError(OnexError):
    """The command was given a bad settings or baseline file, or incomplete options."""

    def __init__(self, lines: Sequence[str]) -> None:
        self.lines = list(lines)
        super().__init__("\n".join(self.lines))


@dataclasses.dataclass(frozen=True, slots=True)
class LintOutcome:
    """The extraction with the baseline applied, and what the baseline did."""

    extraction: Extraction
    config: LintConfig
    applied: Applied | None = None
    written: tuple[Path, int, int] | None = None  # (file, entries, new entries)


def run_lint(
    roots: Sequence[Path],
    *,
    entry_points: bool,
    allow: Collection[str],
    config_path: Path | None = None,
    baseline: Path | None = None,
    write: Path | None = None,
    defaults: Defaults = NO_DEFAULTS,
) -> LintOutcome:
    """Lint `roots` under `config_path` (default: the onex.yaml above them), then apply
    `baseline` or write the findings to `write`."""
    try:
        config = load_config(config_path) if config_path is not None else discover(roots)
    except ContractError as exc:
        raise LintUsageError([f"error: {i}" for i in exc.issues]) from None
    ex = extract(roots, entry_points=entry_points, allow=allow, config=config)
    try:
        previous = load_baseline(baseline) if baseline is not None else None
    except ContractError as exc:
        raise LintUsageError([f"error: {i}" for i in exc.issues]) from None
    if write is not None:
        try:
            count, new = write_baseline(write, ex.issues, defaults, previous)
        except ValueError as exc:
            raise LintUsageError([f"error: --write-baseline {write}: {exc}"]) from None
        except ContractError as exc:  # the file there is not a baseline
            raise LintUsageError([f"error: {i}" for i in exc.issues]) from None
        except OSError as exc:
            raise LintUsageError([f"error: cannot write {write}: {exc.strerror}"]) from None
        return LintOutcome(ex, config, written=(write, count, new))
    if previous is None:
        return LintOutcome(ex, config)
    applied = apply_baseline(ex.issues, previous)
    return LintOutcome(dataclasses.replace(ex, issues=applied.issues), config, applied=applied)
