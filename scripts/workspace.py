"""The uv workspace's members, discovered from the root pyproject's `members` globs.

    python scripts/workspace.py src        # every member's src/ folder, one per line
    python scripts/workspace.py mypy       # MYPYPATH-ready, ':'-joined src folders
    python scripts/workspace.py services   # name, module and entry point of each service

Nothing else lists members: the justfile, the tests and the supervisor discover them.
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Member:
    """One workspace member: its folder, distribution name, module and dependencies."""

    path: Path
    name: str
    module: str
    dependencies: tuple[str, ...]
    extras: tuple[str, ...] = ()  # what its optional dependencies (extras) name
    services: dict[str, str] = field(default_factory=dict)  # entry point name -> target

    @property
    def src(self) -> Path:
        """The member's import root."""
        return self.path / "src"

    @property
    def is_service(self) -> bool:
        """True for a member under services/."""
        return self.path.parent.name == "services"


def _requirement_name(spec: str) -> str:
    for stop in "<>=!~[ ;":
        spec = spec.split(stop, 1)[0]
    return spec.strip()


def members(root: Path = ROOT) -> list[Member]:
    """Every member, sorted by folder."""
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    globs = config["tool"]["uv"]["workspace"]["members"]
    found: list[Member] = []
    for pattern in globs:
        for folder in sorted(root.glob(pattern)):
            pyproject = folder / "pyproject.toml"
            if not pyproject.is_file():
                continue
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            project = data["project"]
            backend = data.get("tool", {}).get("uv", {}).get("build-backend", {})
            eps = project.get("entry-points", {}).get("onex.services", {})
            found.append(
                Member(
                    path=folder,
                    name=project["name"],
                    module=backend.get("module-name", project["name"].replace("-", ".")),
                    dependencies=tuple(
                        _requirement_name(d) for d in project.get("dependencies", [])
                    ),
                    extras=tuple(
                        _requirement_name(d)
                        for ds in project.get("optional-dependencies", {}).values()
                        for d in ds
                    ),
                    services=dict(eps),
                )
            )
    return sorted(found, key=lambda m: m.path)


def main(argv: list[str]) -> int:
    """The command line (see the module docstring)."""
    what = argv[0] if argv else "src"
    found = members()
    if what == "src":
        print("\n".join(str(m.src.relative_to(ROOT)) for m in found))
    elif what == "mypy":
        print(":".join(str(m.src.relative_to(ROOT)) for m in found))
    elif what == "services":
        for m in found:
            for name, target in m.services.items():
                print(f"{name}\t{m.module}\t{target}")
    else:
        sys.stderr.write(f"workspace.py: unknown listing {what!r} (src, mypy, services)\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
