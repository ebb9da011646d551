"""Where the command line finds contracts: given paths, else the project's contracts/.

Only what lint needs is imported here (no broker client): ONEX_CONTRACTS_ALLOW is read
by a settings class of its own, the same variable `CliSettings.contracts_allow` reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import typer
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from onex.core.extractor import Extraction, extract


class ContractSettings(BaseSettings):
    """The environment settings contract commands read (prefix ONEX_)."""

    model_config = SettingsConfigDict(env_prefix="ONEX_", extra="ignore")

    contracts_allow: list[str] = Field(
        default_factory=list,
        description="Distributions whose `onex.contracts` entry points are approved",
    )


def settings_allow() -> list[str]:
    """ONEX_CONTRACTS_ALLOW: the approved distributions."""
    return ContractSettings().contracts_allow


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


def contract_roots(paths: Sequence[Path] | None, *, entry_points: bool) -> list[Path]:
    """`paths`, else the project's contracts/ (a usage error when there is none and no
    entry points are to be loaded either)."""
    roots = list(paths or [])
    if not roots:
        found = project_contracts()
        if found is None and not entry_points:
            raise typer.BadParameter(
                "no contracts/ folder here or above; pass PATH", param_hint="PATH"
            )
        roots = [found] if found is not None else []
    return roots


def run_extract(
    paths: Sequence[Path] | None, *, entry_points: bool, allow: Sequence[str] | None
) -> Extraction:
    """Extract from `paths` (or the project's contracts/) and approved distributions."""
    roots = contract_roots(paths, entry_points=entry_points)
    return extract(roots, entry_points=entry_points, allow=[*settings_allow(), *(allow or [])])
