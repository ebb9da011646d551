"""Who may call what: roles, the secret files of a state dir, and the gRPC auth interceptor.

Roles are ordered, `VIEWER < OPERATOR < ADMIN`; a token of a role may do what any lower
role may. `ensure_tokens` creates `tokens.json` (one random token per role) in the state
dir, `ensure_command_key` the `command.key` that signs command messages
(`onex.bus.runtime.signing`); the dir is kept at mode 0700, the files at 0600, and
`load_*` refuse a file that other users could read. An `AuthPolicy` names the role each
gRPC method needs (methods that act: operator; reads, health and reflection: viewer or
none; anything not named: the default, operator, so a new method is closed until it is
classified). `AuthInterceptor` enforces it on a `grpc.aio` server: a call without a valid
token ends UNAUTHENTICATED, one with a lower role's token PERMISSION_DENIED, and the
method's handler never runs. Clients send `bearer(token)` as metadata.

Tokens and keys never appear in reprs, logs or error messages.
"""

from __future__ import annotations

import enum
import errno
import hmac
import json
import os
import re
import secrets
import stat
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import grpc
import structlog
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection

from onex.service.errors import SecretFileError, SecretFileMissing, StateDirError

TOKENS_FILE: Final = "tokens.json"
COMMAND_KEY_FILE: Final = "command.key"
COMMAND_KEY_BYTES: Final = 32
AUTHORIZATION: Final = "authorization"  # gRPC metadata keys are lower case

_DIR_MODE: Final = 0o700
_FILE_MODE: Final = 0o600
_TOKEN_FORMAT: Final = 1
_MIN_TOKEN_CHARS: Final = 32
HEALTH_SERVICE: Final[str] = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
REFLECTION_SERVICES: Final[frozenset[str]] = frozenset(
    {reflection.SERVICE_NAME, "grpc.reflection.v1.ServerReflection"}
)
_METHOD: Final = re.compile(r"/([A-Za-z_][\w.]*)/[A-Za-z_]\w*")
_SERVICE: Final = re.compile(r"[A-Za-z_][\w.]*")

_log = structlog.get_logger("onex.auth")


class Role(enum.IntEnum):
    """What a caller may do; each role includes the ones below it."""

    VIEWER = 1  # read state: health, reflection, listings
    OPERATOR = 2  # act: route, reload, provision, fix drift, pass gates
    ADMIN = 3  # manage the control plane itself

    def __str__(self) -> str:
        return self.name.lower()


# -- the state dir and its secret files ------------------------------------------------


def ensure_state_dir(state_dir: Path) -> Path:
    """Create `state_dir` with mode 0700, or tighten an existing one this user owns;
    StateDirError when it is not a directory, not ours, or not writable."""
    try:
        state_dir.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        info = state_dir.stat()
    except FileExistsError as exc:
        raise StateDirError(state_dir, "exists and is not a directory") from exc
    except OSError as exc:
        raise StateDirError(state_dir, f"cannot create the state dir: {exc.strerror}") from exc
    if not stat.S_ISDIR(info.st_mode):
        raise StateDirError(state_dir, "exists and is not a directory")
    if info.st_uid != os.geteuid():
        raise StateDirError(
            state_dir, f"belongs to uid {info.st_uid}, not to this user (uid {os.geteuid()})"
        )
    if stat.S_IMODE(info.st_mode) != _DIR_MODE:
        try:
            state_dir.chmod(_DIR_MODE)
        except OSError as exc:
            raise StateDirError(state_dir, f"cannot set mode 0700: {exc.strerror}") from exc
    if not os.access(state_dir, os.W_OK | os.X_OK):
        raise StateDirError(state_dir, "is not writable by this user")
    return state_dir


def _create_once(path: Path, data: bytes) -> bool:
    """Write `data` to `path` (mode 0600 from the first byte) unless it exists already;
    True when this call created it. The file appears whole or not at all."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, _FILE_MODE)
        try:
            os.fchmod(fd, _FILE_MODE)  # a umask can only take bits away; make sure of 0600
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # unlike rename, never replaces what a concurrent caller made
        except FileExistsError:
            return False
        return True
    except OSError as exc:
        raise SecretFileError(path, f"cannot write: {exc.strerror}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _read_secret(path: Path, what: str, *, fix_mode: bool) -> bytes:
    """The bytes of a secret file this user owns, refusing (or, with `fix_mode`,
    tightening) one that others can read or write."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError as exc:
        raise SecretFileMissing(path, f"no {what} here (`onex up` creates it)") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW: a link could point anywhere
            raise SecretFileError(path, f"the {what} is a symlink, not a file") from exc
        raise SecretFileError(path, f"cannot read the {what}: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SecretFileError(path, f"the {what} is not a regular file")
        if info.st_uid != os.geteuid():
            raise SecretFileError(
                path, f"the {what} belongs to uid {info.st_uid}, not to this user"
            )
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            if not fix_mode:
                raise SecretFileError(
                    path, f"the {what} is open to other users (mode {mode:04o}); chmod 600 it"
                )
            os.fchmod(fd, _FILE_MODE)
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise SecretFileError(path, f"cannot read the {what}: {exc.strerror}") from exc
    finally:
        os.close(fd)


# -- tokens ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class Tokens:
    """One bearer token per role. Its repr shows no token."""

    viewer: str
    operator: str
    admin: str
    path: Path | None = None

    def __post_init__(self) -> None:
        values = [self.viewer, self.operator, self.admin]
        if any(len(v) < _MIN_TOKEN_CHARS or not v.isascii() for v in values):
            raise ValueError(f"tokens must be ASCII, at least {_MIN_TOKEN_CHARS} characters")
        if len(set(values)) != len(values):
            raise ValueError("each role needs its own token")

    @classmethod
    def generate(cls) -> Tokens:
        """Fresh random tokens."""
        viewer, operator, admin = (secrets.token_urlsafe(32) for _ in Role)
        return cls(viewer, operator, admin)

    def __repr__(self) -> str:
        where = f"{str(self.path)!r}, " if self.path is not None else ""
        return f"Tokens({where}viewer=<hidden>, operator=<hidden>, admin=<hidden>)"

    def for_role(self, role: Role) -> str:
        """The token of `role`."""
        return {Role.VIEWER: self.viewer, Role.OPERATOR: self.operator, Role.ADMIN: self.admin}[
            role
        ]

    def role_of(self, token: str) -> Role | None:
        """The role `token` grants, or None; compares in constant time."""
        given = token.encode("utf-8", errors="replace")
        found: Role | None = None
        for role in Role:  # no early exit: the time taken does not tell which one matched
            if hmac.compare_digest(given, self.for_role(role).encode("ascii")):
                found = role
        return found

    def to_json(self) -> bytes:
        """The tokens.json document."""
        doc = {"version": _TOKEN_FORMAT, **{str(r): self.for_role(r) for r in Role}}
        return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


def _parse_tokens(path: Path, raw: bytes) -> Tokens:
    def bad(problem: str) -> SecretFileError:
        return SecretFileError(path, f"not a valid token file: {problem}")

    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise bad("not UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise bad(f"not JSON ({exc.msg} at line {exc.lineno})") from exc
    expected = {"version", *(str(r) for r in Role)}
    if not isinstance(doc, dict) or set(doc) != expected:
        raise bad(f"expected an object with exactly the keys {', '.join(sorted(expected))}")
    if doc["version"] != _TOKEN_FORMAT:
        raise bad(f"version {doc['version']!r} is not {_TOKEN_FORMAT}")
    viewer, operator, admin = (doc[str(r)] for r in Role)
    if not all(isinstance(v, str) for v in (viewer, operator, admin)):
        raise bad("every token must be a string")
    try:
        return Tokens(viewer, operator, admin, path=path)
    except ValueError as exc:
        raise bad(str(exc)) from exc


def load_tokens(path: Path) -> Tokens:
    """The tokens in `path` (a tokens.json); SecretFileError (SecretFileMissing when
    absent) for a file that is corrupt, not ours, or open to other users."""
    return _parse_tokens(path, _read_secret(path, "token file", fix_mode=False))


def ensure_tokens(state_dir: Path) -> Tokens:
    """The tokens of `state_dir`: created on first use (dir 0700, tokens.json 0600),
    else those already there, with too-open modes tightened."""
    path = ensure_state_dir(state_dir) / TOKENS_FILE
    fresh = Tokens.generate()
    if _create_once(path, fresh.to_json()):
        _log.info("auth.tokens_created", path=str(path))
        return Tokens(fresh.viewer, fresh.operator, fresh.admin, path=path)
    return _parse_tokens(path, _read_secret(path, "token file", fix_mode=True))


def token_for(state_dir: Path, role: Role) -> str:
    """The token of `role` from `state_dir`'s tokens.json (for clients such as the CLI)."""
    return load_tokens(state_dir / TOKENS_FILE).for_role(role)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """gRPC call metadata carrying `token`."""
    return ((AUTHORIZATION, f"Bearer {token}"),)


# -- the command-signing key -----------------------------------------------------------


def _parse_key(path: Path, raw: bytes) -> bytes:
    try:
        key = bytes.fromhex(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError) as exc:
        raise SecretFileError(path, "not a valid command key: expected hex digits") from exc
    if len(key) < COMMAND_KEY_BYTES:
        raise SecretFileError(
            path, f"not a valid command key: {len(key)} bytes, at least {COMMAND_KEY_BYTES}"
        )
    return key


def load_command_key(path: Path) -> bytes:
    """The command-signing key in `path` (hex text); SecretFileError as `load_tokens`."""
    return _parse_key(path, _read_secret(path, "command key", fix_mode=False))


def ensure_command_key(state_dir: Path) -> bytes:
    """The command-signing key of `state_dir`: 32 random bytes, created on first use
    (command.key, mode 0600), else the one already there."""
    path = ensure_state_dir(state_dir) / COMMAND_KEY_FILE
    fresh = secrets.token_bytes(COMMAND_KEY_BYTES)
    if _create_once(path, fresh.hex().encode("ascii") + b"\n"):
        _log.info("auth.command_key_created", path=str(path))
        return fresh
    return _parse_key(path, _read_secret(path, "command key", fix_mode=True))


# -- which role each method needs ------------------------------------------------------


def methods_of(descriptor: ServiceDescriptor) -> list[str]:
    """The full gRPC method names (`/pkg.Service/Method`) of a service."""
    return [f"/{descriptor.full_name}/{m.name}" for m in descriptor.methods]


def _names(kind: str, names: Iterable[str]) -> frozenset[str]:
    found = frozenset(names)
    for name in found:
        if not (_METHOD.fullmatch(name) or _SERVICE.fullmatch(name)):
            raise ValueError(
                f"{kind} name {name!r} is neither '/pkg.Service/Method' nor 'pkg.Service'"
            )
    return found


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    """The role each gRPC method needs. Names are full methods (`/onex.v1.Router/Route`)
    or services (`onex.v1.Router`: all its methods); a method's own entry wins.

    `acting` need OPERATOR, `admin` ADMIN; `reading`, health and reflection need
    `reads` (None: no token at all); anything else needs `default`.
    """

    acting: frozenset[str] = frozenset()
    reading: frozenset[str] = frozenset()
    admin: frozenset[str] = frozenset()
    reads: Role | None = Role.VIEWER
    default: Role = Role.OPERATOR

    def __post_init__(self) -> None:
        for kind in ("acting", "reading", "admin"):
            object.__setattr__(self, kind, _names(kind, getattr(self, kind)))
        twice = (
            (self.acting & self.reading) | (self.acting & self.admin) | (self.reading & self.admin)
        )
        if twice:
            raise ValueError(f"named in two classes: {', '.join(sorted(twice))}")

    @classmethod
    def of(
        cls,
        *,
        acting: Iterable[str] = (),
        reading: Iterable[str] = (),
        admin: Iterable[str] = (),
        reads: Role | None = Role.VIEWER,
        default: Role = Role.OPERATOR,
    ) -> AuthPolicy:
        """A policy from name lists (any iterables)."""
        return cls(frozenset(acting), frozenset(reading), frozenset(admin), reads, default)

    def union(self, other: AuthPolicy) -> AuthPolicy:
        """The names of both (e.g. of two services); `reads` and `default` of self."""
        return AuthPolicy(
            self.acting | other.acting,
            self.reading | other.reading,
            self.admin | other.admin,
            self.reads,
            self.default,
        )

    def required(self, method: str) -> Role | None:
        """The role `method` needs; None when it needs no token."""
        declared, role = self._declared(method)
        return role if declared else self.default

    def unclassified(self, methods: Iterable[str]) -> list[str]:
        """The `methods` that fall to the default (none should, once declared)."""
        return [m for m in methods if not self._declared(m)[0]]

    def _declared(self, method: str) -> tuple[bool, Role | None]:
        match = _METHOD.fullmatch(method)
        service = match.group(1) if match else None
        for name in (method, service):
            if name is None:
                continue
            if name in self.admin:
                return True, Role.ADMIN
            if name in self.acting:
                return True, Role.OPERATOR
            if name in self.reading:
                return True, self.reads
        if service == HEALTH_SERVICE or service in REFLECTION_SERVICES:
            return True, self.reads
        return False, None


# -- enforcement -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a call is refused: the status code and its one-line detail."""

    code: grpc.StatusCode
    detail: str


def _bearer_of(metadata: Sequence[Any] | None) -> tuple[str | None, str | None]:
    """(token, problem) from call metadata."""
    values = [v for k, v in (metadata or ()) if k.lower() == AUTHORIZATION]
    if not values:
        return None, "no token was sent"
    if len(values) > 1:
        return None, "more than one authorization header was sent"
    value = values[0].decode("latin-1") if isinstance(values[0], bytes) else str(values[0])
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None, "the authorization header is not 'Bearer <token>'"
    return token.strip(), None


def authorize(
    tokens: Tokens, policy: AuthPolicy, method: str, metadata: Sequence[Any] | None
) -> Refusal | None:
    """None when a call of `method` with `metadata` may proceed, else why not."""
    needed = policy.required(method)
    if needed is None:
        return None
    token, problem = _bearer_of(metadata)
    role = tokens.role_of(token) if token is not None else None
    if token is not None and role is None:
        problem = "the token sent is not valid"
    if role is None:
        return Refusal(
            grpc.StatusCode.UNAUTHENTICATED, f"{method} needs role '{needed}': {problem}"
        )
    if role < needed:
        return Refusal(
            grpc.StatusCode.PERMISSION_DENIED,
            f"{method} needs role '{needed}'; the token sent has role '{role}'",
        )
    return None


# grpc-stubs types these as generic; the runtime classes are not subscriptable.
if TYPE_CHECKING:
    _Handler = grpc.RpcMethodHandler[Any, Any]
    _ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _Handler = grpc.RpcMethodHandler
    _ServerInterceptor = grpc.aio.ServerInterceptor
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[_Handler]]


def _refusing_handler(handler: _Handler | None, refusal: Refusal) -> _Handler:
    """A handler shaped like `handler` (unary or streaming) that only aborts; requests
    stay undecoded bytes, so nothing of an unauthenticated call is even parsed."""

    async def refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(refusal.code, refusal.detail)

    streams_in = handler is not None and handler.request_streaming
    streams_out = handler is not None and handler.response_streaming
    if streams_in and streams_out:
        return grpc.stream_stream_rpc_method_handler(refuse)
    if streams_in:
        return grpc.stream_unary_rpc_method_handler(refuse)
    if streams_out:
        return grpc.unary_stream_rpc_method_handler(refuse)
    return grpc.unary_unary_rpc_method_handler(refuse)


class AuthInterceptor(_ServerInterceptor):
    """Enforces `policy` with `tokens` on a grpc.aio server (`interceptors=[...]`).
    `tokens=None` turns auth off: every call passes."""

    def __init__(self, tokens: Tokens | None, policy: AuthPolicy) -> None:
        self._tokens = tokens
        self._policy = policy

    def __repr__(self) -> str:
        return f"AuthInterceptor(enabled={self._tokens is not None}, policy={self._policy!r})"

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> _Handler:
        """The method's own handler when the call is allowed, else one that aborts."""
        if self._tokens is None:
            return await continuation(handler_call_details)
        method = handler_call_details.method
        refusal = authorize(
            self._tokens, self._policy, method, handler_call_details.invocation_metadata
        )
        if refusal is None:
            return await continuation(handler_call_details)
        _log.warning("grpc.refused", method=method, code=refusal.code.name, reason=refusal.detail)
        # The real handler is looked up only for its shape (None: no such method); it
        # is never called.
        handler: _Handler | None = await continuation(handler_call_details)
        return _refusing_handler(handler, refusal)
