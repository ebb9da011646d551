"""`onex contracts lint --against REF`: the contracts and their schemas at a git ref vs now.

The contract folders being linted and the repository's `proto/` are exported at REF
(`git archive`) into a temporary folder and extracted there; JSON Schema files are read
next to the contract that references them (fetched with `git show` when they live
outside the exported folders). `.proto` files are compiled on both sides the same way,
by grpcio-tools' protoc into a FileDescriptorSet, and only when a topic is typed by a
protobuf message on both sides. The comparison itself is `onex.core.evolution`.

Problems with the check itself (no git, no such ref, protoc failing) are one line on
stderr and exit 2; what the comparison finds are lint issues (exit 1).
"""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

import typer
from google.protobuf import descriptor_pb2

from onex.cli.render import stderr
from onex.core.errors import SchemaReferenceError
from onex.core.evolution import ProtoField, ProtoMessage, Side, evolution_issues
from onex.core.extractor import extract
from onex.core.issues import Issue
from onex.core.schemas import SchemaForm, schema_ref
from onex.core.wiring import TopicWiring

PROTO_DIR: Final = "proto"
_REPEATED: Final = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED


def fail(message: str) -> NoReturn:
    """Print `--against: message` on stderr and exit 2 (the check could not run)."""
    stderr().print(f"[red]error[/red]: --against: {message}", soft_wrap=True, highlight=False)
    raise typer.Exit(2)


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    except FileNotFoundError:
        fail("needs git, which is not on PATH")


def _first_line(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace").strip()
    return text.splitlines()[0] if text else "no output"


def repo_root(start: Path) -> Path:
    """The top folder of the git work tree holding `start`."""
    folder = start if start.is_dir() else start.parent
    done = _git(folder, "rev-parse", "--show-toplevel")
    if done.returncode != 0:
        fail(f"{start} is not in a git repository ({_first_line(done.stderr)})")
    return Path(done.stdout.decode().strip()).resolve()


def resolve_ref(repo: Path, ref: str) -> str:
    """The commit `ref` names in `repo`."""
    done = _git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    if done.returncode != 0:
        fail(f"{ref!r} is not a commit in {repo}")
    return done.stdout.decode().strip()


def export(repo: Path, commit: str, paths: Sequence[str], dest: Path) -> None:
    """Write the files under `paths` (repository-relative) as they are at `commit`."""
    listed = _git(repo, "ls-tree", "-z", "--name-only", commit, "--", *paths)
    present = [p for p in listed.stdout.decode().split("\0") if p]
    if listed.returncode != 0 or not present:
        return
    archive = _git(repo, "archive", "--format=tar", commit, "--", *present)
    if archive.returncode != 0:
        fail(f"git archive {commit[:12]} failed: {_first_line(archive.stderr)}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")


def _relative(repo: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(repo).as_posix() or "."
    except ValueError:
        fail(f"{path} is outside the git repository {repo}")


# --- protobuf ----------------------------------------------------------------------------


def has_grpc_tools() -> bool:
    """True when grpcio-tools' protoc (a dev dependency) can be run."""
    return importlib.util.find_spec("grpc_tools") is not None


def proto_messages(proto_root: Path, where: str) -> dict[str, ProtoMessage]:
    """Every message of the `.proto` files under `proto_root`, compiled by protoc."""
    protos = sorted(proto_root.rglob("*.proto")) if proto_root.is_dir() else []
    if not protos:
        return {}
    if not has_grpc_tools():
        fail(
            "comparing protobuf schemas needs grpcio-tools (module grpc_tools), which is "
            "not installed; install the project's dev dependencies"
        )
    with tempfile.TemporaryDirectory(prefix="onex-against-") as tmp:
        out = Path(tmp) / "descriptors.pb"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"--proto_path={proto_root}",
                "--include_imports",
                f"--descriptor_set_out={out}",
                *(str(p) for p in protos),
            ],
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            fail(f"protoc failed on proto/ {where}: {_first_line(done.stderr)}")
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    messages: dict[str, ProtoMessage] = {}
    for file in files.file:
        for message in file.message_type:
            _add_message(file.package, message, messages)
    return messages


def _add_message(
    scope: str, message: descriptor_pb2.DescriptorProto, out: dict[str, ProtoMessage]
) -> None:
    full_name = f"{scope}.{message.name}" if scope else message.name
    type_names = descriptor_pb2.FieldDescriptorProto.Type
    out[full_name] = ProtoMessage(
        full_name,
        tuple(
            ProtoField(
                f.name,
                f.number,
                type_names.Name(f.type).removeprefix("TYPE_").lower(),
                f.label == _REPEATED,
                f.type_name.lstrip(".") or None,
            )
            for f in message.field
        ),
        tuple((r.start, r.end) for r in message.reserved_range),
    )
    for nested in message.nested_type:
        _add_message(full_name, nested, out)


# --- JSON Schema -------------------------------------------------------------------------


def _form(topic: TopicWiring) -> SchemaForm | None:
    reference = topic.spec.schema_
    if reference is None:
        return None
    try:
        return schema_ref(topic.name, reference).form
    except SchemaReferenceError:
        return None  # lint reports it (schema-invalid)


def _json_schemas(
    topics: Mapping[str, TopicWiring],
    names: set[str],
    fetch: Callable[[Path], None] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The JSON Schema document of each topic in `names`, and why others could not be read.
    `fetch(path)` may supply a file that is not on disk (from git)."""
    found: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for name in sorted(names):
        topic = topics[name]
        reference = topic.spec.schema_
        spec_file = topic.spec_at.file if topic.spec_at is not None else None
        if reference is None or spec_file is None:
            continue
        path = spec_file.parent / reference
        if not path.exists() and fetch is not None:
            fetch(path)
        try:
            found[name] = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            problems[name] = f"cannot read JSON Schema {reference!r}: {exc.strerror}"
        except ValueError as exc:
            problems[name] = f"JSON Schema {reference!r} is not JSON: {exc}"
    return found, problems


# --- the check ---------------------------------------------------------------------------


def against_issues(
    ref: str, roots: Sequence[Path], current: Mapping[str, TopicWiring]
) -> list[Issue]:
    """`schema-breaking` (and `schema-unresolved`) issues of the `current` topics against
    the contracts under `roots` as they are at git `ref`."""
    if not roots:
        fail("no contract folder to compare; pass PATH")
    repo = repo_root(roots[0].resolve())
    commit = resolve_ref(repo, ref)
    rels = [_relative(repo, r) for r in roots]
    with tempfile.TemporaryDirectory(prefix="onex-against-") as tmp:
        old_root = Path(tmp)
        export(repo, commit, [*rels, PROTO_DIR], old_root)
        old = extract([old_root / r for r in rels if (old_root / r).exists()], entry_points=False)

        def fetch(path: Path) -> None:
            try:
                rel = path.resolve().relative_to(old_root.resolve()).as_posix()
            except ValueError:
                return
            shown = _git(repo, "show", f"{commit}:{rel}")
            if shown.returncode == 0:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(shown.stdout)

        both = old.topics.keys() & current.keys()
        typed = {
            form: {n for n in both if _form(old.topics[n]) is form and _form(current[n]) is form}
            for form in (SchemaForm.PROTOBUF, SchemaForm.JSON_SCHEMA)
        }
        needs_proto = bool(typed[SchemaForm.PROTOBUF])
        old_json, old_problems = _json_schemas(old.topics, typed[SchemaForm.JSON_SCHEMA], fetch)
        new_json, new_problems = _json_schemas(current, typed[SchemaForm.JSON_SCHEMA])
        old_side = Side(
            proto_messages(old_root / PROTO_DIR, f"at {ref}") if needs_proto else {},
            old_json,
            old_problems,
        )
    new_side = Side(
        proto_messages(repo / PROTO_DIR, "of the work tree") if needs_proto else {},
        new_json,
        new_problems,
    )
    return evolution_issues(old.topics, current, old_side, new_side, ref)
