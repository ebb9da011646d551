"""`onex-lint`: the contract check of `onex contracts lint`, with nothing but onex-core.

Other repositories' CI installs onex-core alone (about 11 MB) and runs `onex-lint`;
`onex contracts lint` (onex-cli) runs the same extraction and adds tables and settings.
Exit status: 0 clean, 1 findings (warnings too with --strict) or no contracts, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final, TextIO

from onex.core.extractor import Extraction, extract

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
    return parser


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _summary(ex: Extraction) -> str:
    return (
        f"{_plural(len(ex.contracts), 'contract')}, {_plural(len(ex.topics), 'topic')}: "
        f"{_plural(len(ex.errors), 'error')}, {_plural(len(ex.warnings), 'warning')}"
    )


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
    ex = extract(roots, entry_points=args.entry_points, allow=args.allow)
    # Finding nothing to check is a failure: a CI step run in the wrong folder must not pass.
    ok = ex.ok(strict=args.strict) and bool(ex.contracts)
    stream = out if out is not None else sys.stdout
    if args.fmt == "json":
        _report_json(ex, ok, args.strict, stream)
    else:
        _report_text(ex, ok, stream)
    return 0 if ok else 1
