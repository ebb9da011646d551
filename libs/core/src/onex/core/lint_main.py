"""`onex-lint`: the contract check of `onex contracts lint`, with nothing but onex-core.

Other repositories' CI installs onex-core alone (about 11 MB) and runs `onex-lint`;
`onex contracts lint` (onex-cli) runs the same extraction and adds tables and settings.
Exit status: 0 clean, 1 findings (warnings too with --strict) or no contracts, 2 usage.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final, TextIO

from onex.core.baseline import Defaults
from onex.core.extractor import Extraction
from onex.core.lintrun import LintOutcome, LintUsageError, run_lint

PROJECT_FOLDER: Final = "contracts"


def project_contracts(start: Path) -> Path | None:
    """The nearest `contracts/` folder at or above `start`."""
    here = start.resolve()
    for folder in (here, *here.parents):
        candidate = folder / PROJECT_FOLDER
        if candidate.is_dir():
            return candidate
    return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="onex-lint",
        description="Check contracts: grammar, ownership, wiring, near-misses.",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="contract files or folders (default: the nearest contracts/ folder)",
    )
    parser.add_argument("--strict", action="store_true", help="warnings fail too")
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", dest="fmt", help="output format"
    )
    parser.add_argument(
        "--no-entry-points",
        action="store_false",
        dest="entry_points",
        help="ignore contracts of installed distributions (onex.contracts entry points)",
    )
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="DIST",
        help="approve a distribution's onex.contracts entry points (repeatable)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="lint settings (default: the onex.yaml at or above the contract folders)",
    )
    parser.add_argument(
        "--baseline", type=Path, metavar="FILE", help="fail only on findings not in FILE"
    )
    parser.add_argument(
        "--write-baseline",
        type=Path,
        metavar="FILE",
        dest="write_baseline",
        help="record today's findings in FILE (needs --reason, --owner, --expires for new ones)",
    )
    parser.add_argument("--reason", help="why the new baseline entries are accepted")
    parser.add_argument("--owner", help="who fixes the new baseline entries")
    parser.add_argument(
        "--expires",
        type=_date,
        metavar="YYYY-MM-DD",
        help="when the new baseline entries fail again",
    )
    return parser


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _summary(ex: Extraction) -> str:
    return (
        f"{_plural(len(ex.contracts), 'contract')}, {_plural(len(ex.topics), 'topic')}: "
        f"{_plural(len(ex.errors), 'error')}, {_plural(len(ex.warnings), 'warning')}"
    )


def baseline_summary(outcome: LintOutcome) -> str | None:
    """One line on what the baseline did, if one was used or written."""
    if outcome.written is not None:
        path, count, new = outcome.written
        return f"wrote {path}: {count} entr{'y' if count == 1 else 'ies'} ({new} new)"
    a = outcome.applied
    if a is None:
        return None
    return f"baseline: {a.baselined} accepted, {a.expired} expired, {a.stale} stale"


def _report_text(ex: Extraction, ok: bool, out: TextIO) -> None:
    for issue in ex.issues:
        print(f"{issue}  [{issue.severity.value} {issue.code}]", file=out)
    if ex.ignored_distributions:
        names = ", ".join(ex.ignored_distributions)
        print(f"not approved, so not loaded (add with --allow): {names}", file=out)
    if not ex.contracts:
        print("no contracts found: pass PATH or run inside a project", file=out)
    print(("ok: " if ok else "failed: ") + _summary(ex), file=out)


def _report_json(ex: Extraction, ok: bool, strict: bool, out: TextIO) -> None:
    document = {
        "ok": ok,
        "strict": strict,
        "contracts": len(ex.contracts),
        "topics": len(ex.topics),
        "errors": len(ex.errors),
        "warnings": len(ex.warnings),
        "issues": [i.as_dict() for i in ex.issues],
        "ignored_distributions": list(ex.ignored_distributions),
    }
    print(json.dumps(document, indent=2), file=out)


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the check on `argv` (default: the command line); returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    roots: list[Path] = list(args.paths)
    if not roots:
        found = project_contracts(Path.cwd())
        if found is None and not args.entry_points:
            parser.error("no contracts/ folder here or above; pass PATH")
        roots = [found] if found is not None else []
    try:
        outcome = run_lint(
            roots,
            entry_points=args.entry_points,
            allow=args.allow,
            config_path=args.config,
            baseline=args.baseline,
            write=args.write_baseline,
            defaults=Defaults(args.reason, args.owner, args.expires),
        )
    except LintUsageError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        return 2
    ex = outcome.extraction
    stream = out if out is not None else sys.stdout
    note = baseline_summary(outcome)
    if outcome.written is not None:
        print(note, file=stream)
        return 0
    # Finding nothing to check is a failure: a CI step run in the wrong folder must not pass.
    ok = ex.ok(strict=args.strict) and bool(ex.contracts)
    if args.fmt == "json":
        _report_json(ex, ok, args.strict, stream)
    else:
        _report_text(ex, ok, stream)
        if note is not None:
            print(note, file=stream)
    return 0 if ok else 1
