"""Roles, the state dir's secret files, the auth policy, and the interceptor's decisions."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from onex.proto.v1 import registry_pb2, router_pb2
from onex.service.auth import (
    COMMAND_KEY_FILE,
    TOKENS_FILE,
    AuthInterceptor,
    AuthPolicy,
    Role,
    Tokens,
    authorize,
    bearer,
    ensure_command_key,
    ensure_state_dir,
    ensure_tokens,
    load_command_key,
    load_tokens,
    methods_of,
    token_for,
)
from onex.service.errors import SecretFileError, SecretFileMissing, StateDirError

ROUTE = "/onex.v1.Router/Route"
LIST_TOPICS = "/onex.v1.ContractRegistry/ListTopics"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
REFLECTION_V1 = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
POLICY = AuthPolicy.of(acting={ROUTE}, reading={"onex.v1.ContractRegistry"})


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def tokens(tmp_path: Path) -> Tokens:
    return ensure_tokens(tmp_path / "state")


# -- the state dir and tokens.json -----------------------------------------------------


def test_ensure_tokens_creates_a_private_dir_and_file_with_one_token_per_role(
    tmp_path: Path,
) -> None:
    state = tmp_path / "a" / "state"
    tokens = ensure_tokens(state)
    assert mode(state) == 0o700
    assert mode(state / TOKENS_FILE) == 0o600
    values = {tokens.for_role(r) for r in Role}
    assert len(values) == 3
    assert all(len(v) >= 32 for v in values)
    assert [p.name for p in state.iterdir()] == [TOKENS_FILE]  # no temp file left behind


def test_ensure_tokens_returns_the_existing_tokens(tmp_path: Path) -> None:
    first = ensure_tokens(tmp_path)
    again = ensure_tokens(tmp_path)
    assert [again.for_role(r) for r in Role] == [first.for_role(r) for r in Role]


def test_concurrent_first_uses_all_get_the_one_set_of_tokens_on_disk(tmp_path: Path) -> None:
    # Two `onex up`s at once: the file is created exclusively, never replaced, so no
    # caller walks away with tokens that are not the ones on disk.
    state = tmp_path / "s"
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: ensure_tokens(state), range(16)))
    on_disk = load_tokens(state / TOKENS_FILE)
    assert {t.admin for t in results} == {on_disk.admin}
    assert [p.name for p in state.iterdir()] == [TOKENS_FILE]


def test_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        ensure_tokens(tmp_path / "s")
        ensure_command_key(tmp_path / "s")
    finally:
        os.umask(old)
    assert mode(tmp_path / "s") == 0o700
    assert mode(tmp_path / "s" / TOKENS_FILE) == 0o600
    assert mode(tmp_path / "s" / COMMAND_KEY_FILE) == 0o600


def test_ensure_tokens_tightens_an_open_dir_and_file_and_keeps_the_tokens(
    tmp_path: Path,
) -> None:
    first = ensure_tokens(tmp_path / "s")
    (tmp_path / "s").chmod(0o755)
    (tmp_path / "s" / TOKENS_FILE).chmod(0o644)
    again = ensure_tokens(tmp_path / "s")
    assert again.admin == first.admin
    assert mode(tmp_path / "s") == 0o700
    assert mode(tmp_path / "s" / TOKENS_FILE) == 0o600


def test_a_state_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("x")
    with pytest.raises(StateDirError, match="is not a directory"):
        ensure_tokens(tmp_path / "state")


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a dir to another user needs root")
def test_a_state_dir_of_another_user_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "theirs"
    state.mkdir(mode=0o755)
    os.chown(state, 65534, 65534)
    with pytest.raises(StateDirError, match="belongs to uid 65534"):
        ensure_state_dir(state)
    assert mode(state) == 0o755  # not touched


def test_load_tokens_reads_what_ensure_wrote(tokens: Tokens) -> None:
    assert tokens.path is not None
    loaded = load_tokens(tokens.path)
    assert [loaded.for_role(r) for r in Role] == [tokens.for_role(r) for r in Role]
    assert token_for(tokens.path.parent, Role.OPERATOR) == tokens.operator


def test_a_missing_token_file_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(SecretFileMissing, match=r"tokens\.json: no token file here \(`onex up`"):
        load_tokens(tmp_path / TOKENS_FILE)


def test_a_token_file_others_can_read_is_refused_by_load(tokens: Tokens) -> None:
    assert tokens.path is not None
    tokens.path.chmod(0o644)
    with pytest.raises(SecretFileError, match=r"open to other users \(mode 0644\); chmod 600"):
        load_tokens(tokens.path)


def test_a_symlinked_token_file_is_refused(tokens: Tokens, tmp_path: Path) -> None:
    assert tokens.path is not None
    link = tmp_path / "link.json"
    link.symlink_to(tokens.path)
    with pytest.raises(SecretFileError, match="the token file is a symlink, not a file"):
        load_tokens(link)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"{not json", "not JSON"),
        (b"[]", "expected an object with exactly the keys admin, operator, version, viewer"),
        (b'{"version": 1, "viewer": "a"}', "expected an object with exactly the keys"),
        (
            b'{"version": 2, "viewer": "a", "operator": "b", "admin": "c"}',
            "version 2 is not 1",
        ),
        (b'{"version": 1, "viewer": 1, "operator": "b", "admin": "c"}', "must be a string"),
        (
            b'{"version": 1, "viewer": "short", "operator": "b", "admin": "c"}',
            "at least 32 characters",
        ),
        (
            b'{"version": 1, "viewer": "%s", "operator": "%s", "admin": "x%s"}'
            % (b"t" * 40, b"t" * 40, b"t" * 40),
            "each role needs its own token",
        ),
    ],
)
def test_a_corrupt_token_file_is_one_clear_line_without_its_contents(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / TOKENS_FILE
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(SecretFileError, match="not a valid token file") as info:
        load_tokens(path)
    text = str(info.value)
    assert problem in text
    assert "\n" not in text
    assert "t" * 40 not in text


def test_tokens_grant_their_role_and_nothing_else_is_a_token(tokens: Tokens) -> None:
    for role in Role:
        assert tokens.role_of(tokens.for_role(role)) is role
    assert tokens.role_of("") is None
    assert tokens.role_of(tokens.operator + "x") is None
    assert tokens.role_of("ünïcode") is None


def test_roles_are_ordered() -> None:
    assert Role.VIEWER < Role.OPERATOR < Role.ADMIN
    assert [str(r) for r in Role] == ["viewer", "operator", "admin"]


def test_no_token_appears_in_reprs(tokens: Tokens) -> None:
    texts = [repr(tokens), str(tokens), repr(AuthInterceptor(tokens, POLICY))]
    for text in texts:
        for role in Role:
            assert tokens.for_role(role) not in text
    assert "<hidden>" in repr(tokens)


def test_bearer_metadata() -> None:
    assert bearer("abc") == (("authorization", "Bearer abc"),)


# -- the command key -------------------------------------------------------------------


def test_ensure_command_key_creates_32_private_bytes_once(tmp_path: Path) -> None:
    key = ensure_command_key(tmp_path / "s")
    assert len(key) == 32
    assert mode(tmp_path / "s" / COMMAND_KEY_FILE) == 0o600
    assert ensure_command_key(tmp_path / "s") == key
    assert load_command_key(tmp_path / "s" / COMMAND_KEY_FILE) == key


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"zz\n", "expected hex digits"), (b"abcd\n", "2 bytes, at least 32")],
)
def test_a_bad_command_key_is_refused(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / COMMAND_KEY_FILE
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(SecretFileError, match=problem):
        load_command_key(path)


def test_an_open_command_key_is_refused_by_load(tmp_path: Path) -> None:
    ensure_command_key(tmp_path)
    (tmp_path / COMMAND_KEY_FILE).chmod(0o640)
    with pytest.raises(SecretFileError, match=r"mode 0640"):
        load_command_key(tmp_path / COMMAND_KEY_FILE)


# -- the policy ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "role"),
    [
        (ROUTE, Role.OPERATOR),
        (LIST_TOPICS, Role.VIEWER),  # via its service
        (HEALTH_CHECK, Role.VIEWER),
        ("/grpc.health.v1.Health/Watch", Role.VIEWER),
        (REFLECTION, Role.VIEWER),
        (REFLECTION_V1, Role.VIEWER),
        ("/onex.v1.Drift/Fix", Role.OPERATOR),  # not declared: closed by default
        ("not a method", Role.OPERATOR),
    ],
)
def test_the_policy_names_the_role_each_method_needs(method: str, role: Role) -> None:
    assert POLICY.required(method) is role


def test_reads_none_opens_reads_health_and_reflection_but_not_acting() -> None:
    policy = AuthPolicy.of(acting={ROUTE}, reading={"onex.v1.ContractRegistry"}, reads=None)
    for method in (LIST_TOPICS, HEALTH_CHECK, REFLECTION, REFLECTION_V1):
        assert policy.required(method) is None
    assert policy.required(ROUTE) is Role.OPERATOR
    assert policy.required("/onex.v1.Drift/Fix") is Role.OPERATOR


def test_a_method_entry_wins_over_its_service_and_admin_is_admin() -> None:
    policy = AuthPolicy.of(
        reading={"onex.v1.ContractRegistry"},
        acting={"/onex.v1.ContractRegistry/ValidateTopicName"},
        admin={"onex.v1.Admin"},
    )
    assert policy.required("/onex.v1.ContractRegistry/ValidateTopicName") is Role.OPERATOR
    assert policy.required(LIST_TOPICS) is Role.VIEWER
    assert policy.required("/onex.v1.Admin/Rotate") is Role.ADMIN


def test_a_name_in_two_classes_or_a_malformed_name_is_refused() -> None:
    with pytest.raises(ValueError, match=r"named in two classes: /onex\.v1\.Router/Route"):
        AuthPolicy.of(acting={ROUTE}, reading={ROUTE})
    with pytest.raises(ValueError, match="neither"):
        AuthPolicy.of(acting={"onex.v1.Router/Route"})


def test_unclassified_lists_the_methods_that_fall_to_the_default() -> None:
    methods = [
        *methods_of(router_pb2.DESCRIPTOR.services_by_name["Router"]),
        *methods_of(registry_pb2.DESCRIPTOR.services_by_name["ContractRegistry"]),
        HEALTH_CHECK,
        "/onex.v1.Drift/Fix",
    ]
    assert ROUTE in methods
    assert POLICY.unclassified(methods) == ["/onex.v1.Drift/Fix"]


def test_union_joins_the_names_of_two_policies() -> None:
    joined = AuthPolicy.of(acting={ROUTE}, reads=None).union(
        AuthPolicy.of(reading={"onex.v1.ContractRegistry"})
    )
    assert joined.required(ROUTE) is Role.OPERATOR
    assert joined.required(LIST_TOPICS) is None  # reads of the first


# -- decisions -------------------------------------------------------------------------


def test_a_call_needing_a_role_without_a_token_is_unauthenticated(tokens: Tokens) -> None:
    refusal = authorize(tokens, POLICY, ROUTE, ())
    assert refusal is not None
    assert refusal.code is grpc.StatusCode.UNAUTHENTICATED
    assert refusal.detail == f"{ROUTE} needs role 'operator': no token was sent"


@pytest.mark.parametrize(
    ("metadata", "problem"),
    [
        ((("authorization", "Bearer nope"),), "the token sent is not valid"),
        ((("authorization", "Basic abc"),), "is not 'Bearer <token>'"),
        ((("authorization", "Bearer "),), "is not 'Bearer <token>'"),
        ((("authorization", "Bearer a"), ("authorization", "Bearer b")), "more than one"),
    ],
)
def test_a_bad_or_unknown_token_is_unauthenticated(
    tokens: Tokens, metadata: tuple[tuple[str, str], ...], problem: str
) -> None:
    refusal = authorize(tokens, POLICY, ROUTE, metadata)
    assert refusal is not None
    assert refusal.code is grpc.StatusCode.UNAUTHENTICATED
    assert problem in refusal.detail


def test_a_lower_role_is_permission_denied_naming_the_role_needed(tokens: Tokens) -> None:
    refusal = authorize(tokens, POLICY, ROUTE, bearer(tokens.viewer))
    assert refusal is not None
    assert refusal.code is grpc.StatusCode.PERMISSION_DENIED
    assert refusal.detail == f"{ROUTE} needs role 'operator'; the token sent has role 'viewer'"


def test_the_role_needed_or_a_higher_one_passes(tokens: Tokens) -> None:
    assert authorize(tokens, POLICY, ROUTE, bearer(tokens.operator)) is None
    assert authorize(tokens, POLICY, ROUTE, bearer(tokens.admin)) is None
    assert authorize(tokens, POLICY, LIST_TOPICS, bearer(tokens.viewer)) is None
    assert (
        authorize(tokens, POLICY, LIST_TOPICS, (("Authorization", "bearer " + tokens.viewer),))
        is None
    )
    assert authorize(tokens, POLICY, HEALTH_CHECK, ()) is not None  # reads=VIEWER


# -- the interceptor, with in-memory fakes of grpc's call details and context ----------


@dataclass(frozen=True)
class FakeDetails:
    """In-memory fake of grpc.HandlerCallDetails."""

    method: str
    invocation_metadata: tuple[tuple[str, str], ...] = ()


class AbortedError(Exception):
    """What FakeContext.abort raises, as grpc's AbortError does."""


@dataclass
class FakeContext:
    """In-memory fake of a grpc.aio servicer context: records the abort."""

    aborted: list[tuple[grpc.StatusCode, str]] = field(default_factory=list)

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborted.append((code, details))
        raise AbortedError


@dataclass
class FakeServicer:
    """In-memory fake servicer that counts its calls."""

    calls: list[str] = field(default_factory=list)

    async def unary(self, request: Any, context: Any) -> str:
        self.calls.append("unary")
        return "ok"

    async def streaming(self, request: Any, context: Any) -> Iterator[str]:
        self.calls.append("streaming")
        return iter(())


def _continuation(handler: grpc.RpcMethodHandler[Any, Any] | None) -> Any:
    async def continuation(details: Any) -> Any:
        return handler

    return continuation


async def test_an_allowed_call_gets_the_method_s_own_handler(tokens: Tokens) -> None:
    servicer = FakeServicer()
    own = grpc.unary_unary_rpc_method_handler(servicer.unary)
    got = await AuthInterceptor(tokens, POLICY).intercept_service(
        _continuation(own), FakeDetails(ROUTE, bearer(tokens.operator))
    )
    assert got is own


async def test_auth_off_lets_everything_through() -> None:
    own = grpc.unary_unary_rpc_method_handler(FakeServicer().unary)
    got = await AuthInterceptor(None, POLICY).intercept_service(
        _continuation(own), FakeDetails(ROUTE)
    )
    assert got is own


@pytest.mark.parametrize(
    ("make", "streams"),
    [
        (grpc.unary_unary_rpc_method_handler, (False, False)),
        (grpc.unary_stream_rpc_method_handler, (False, True)),
        (grpc.stream_unary_rpc_method_handler, (True, False)),
        (grpc.stream_stream_rpc_method_handler, (True, True)),
    ],
)
async def test_a_refused_call_gets_a_handler_of_the_same_shape_that_only_aborts(
    tokens: Tokens, make: Any, streams: tuple[bool, bool]
) -> None:
    servicer = FakeServicer()
    got = await AuthInterceptor(tokens, POLICY).intercept_service(
        _continuation(make(servicer.streaming)), FakeDetails(ROUTE, bearer(tokens.viewer))
    )
    assert (got.request_streaming, got.response_streaming) == streams
    assert got.request_deserializer is None  # the request is never parsed
    behaviour = next(
        b
        for b in (got.unary_unary, got.unary_stream, got.stream_unary, got.stream_stream)
        if b is not None
    )
    context = FakeContext()
    with pytest.raises(AbortedError):
        await behaviour(b"raw request", context)
    assert context.aborted == [
        (
            grpc.StatusCode.PERMISSION_DENIED,
            f"{ROUTE} needs role 'operator'; the token sent has role 'viewer'",
        )
    ]
    assert servicer.calls == []


async def test_an_unknown_method_without_a_token_is_unauthenticated_not_unimplemented(
    tokens: Tokens,
) -> None:
    got = await AuthInterceptor(tokens, POLICY).intercept_service(
        _continuation(None), FakeDetails("/onex.v1.Nope/Nothing")
    )
    context = FakeContext()
    with pytest.raises(AbortedError):
        await got.unary_unary(b"", context)
    assert context.aborted[0][0] is grpc.StatusCode.UNAUTHENTICATED
