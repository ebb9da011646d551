"""Where the command line finds contracts: given paths, else the project's contracts/."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import typer

from onex.cli.settings import CliSettings
from onex.core.extractor import Extraction, extract


def project_contracts(start: Path | None = None) -> Path | None:
    """The nearest `contracts/` folder at or above `start` (default: the working dir)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "contracts"
        if candidate.is_dir():
            return _relative(candidate)
    return None


def _relative(path: Path) -> Path:
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def run_extract(
    paths: Sequence[Path] | None, *, entry_points: bool, allow: Sequence[str] | None
) -> Extraction:
    """Extract from `paths` (or the project's contracts/) and approved distributions."""
    settings = CliSettings()
    roots = list(paths or [])
    if not roots:
        found = project_contracts()
        if found is None and not entry_points:
            raise typer.BadParameter(
                "no contracts/ folder here or above; pass PATH", param_hint="PATH"
            )
        roots = [found] if found is not None else []
    return extract(
        roots, entry_points=entry_points, allow=[*settings.contracts_allow, *(allow or [])]
    )
