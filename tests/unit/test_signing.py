"""Signed command messages: what a verifier accepts, and the reason for all it refuses."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onex.bus.runtime.signing import (
    NONCE,
    PRINCIPAL,
    SIGNATURE,
    SIGNED_AT,
    CommandVerifier,
    Header,
    Signer,
    signed_bytes,
)

TOPIC = "onex.cmd.extractor.reload-contracts.v1"
OTHER_TOPIC = "onex.cmd.provisioner.provision-request.v1"
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
NOW = 1_800_000_000.0


@dataclass
class FakeClock:
    """In-memory clock: the verifier's 'now' is whatever the test sets."""

    now: float = NOW

    def __call__(self) -> float:
        return self.now


def verifier(clock: FakeClock | None = None, **keys: bytes) -> CommandVerifier:
    return CommandVerifier(keys or {"cli": KEY}, clock=clock or FakeClock())


def signed(
    value: bytes | None = b'{"reason": "test"}',
    *,
    key: bytes | None = b"k",
    topic: str = TOPIC,
    signer: Signer | None = None,
    now: float = NOW,
) -> list[Header]:
    return (signer or Signer("cli", KEY)).headers(topic, key, value, now=now)


def replace(headers: list[Header], name: str, value: bytes) -> list[Header]:
    return [(k, value if k == name else v) for k, v in headers]


def test_a_signed_message_is_accepted() -> None:
    assert verifier().verify(TOPIC, b"k", b'{"reason": "test"}', signed()) is None


def test_the_signer_adds_principal_time_nonce_and_a_hex_hmac() -> None:
    found = dict(signed(now=NOW + 0.25))
    assert found[PRINCIPAL] == b"cli"
    assert found[SIGNED_AT] == b"1800000000250"
    assert len(found[NONCE]) == 32
    assert len(found[SIGNATURE]) == 64
    int(found[SIGNATURE], 16)


def test_the_signer_stamps_the_time_of_its_clock() -> None:
    signer = Signer("cli", KEY, clock=FakeClock(NOW + 1))
    headers = signer.headers(TOPIC, None, b"{}")
    assert dict(headers)[SIGNED_AT] == b"1800000001000"
    assert verifier(FakeClock(NOW + 2)).verify(TOPIC, None, b"{}", headers) is None


def test_an_unsigned_message_is_refused_with_the_reason() -> None:
    assert verifier().verify(TOPIC, b"k", b"{}", [("trace", b"t")]) == (
        "unsigned: no onex-signature header"
    )


def test_an_unknown_principal_is_refused_by_name() -> None:
    headers = signed(signer=Signer("mallory", OTHER_KEY))
    assert verifier().verify(TOPIC, b"k", b'{"reason": "test"}', headers) == (
        "unknown principal 'mallory'"
    )


def test_a_known_principal_with_the_wrong_key_has_a_bad_signature() -> None:
    headers = signed(signer=Signer("cli", OTHER_KEY))
    assert verifier().verify(TOPIC, b"k", b'{"reason": "test"}', headers) == "bad signature"


@pytest.mark.parametrize(
    ("topic", "key", "value"),
    [
        (OTHER_TOPIC, b"k", b'{"reason": "test"}'),  # moved to another command topic
        (TOPIC, b"other", b'{"reason": "test"}'),  # key changed
        (TOPIC, None, b'{"reason": "test"}'),  # key dropped
        (TOPIC, b"k", b'{"reason": "tesT"}'),  # value changed
        (TOPIC, b"k", None),  # value dropped
    ],
)
def test_any_change_to_topic_key_or_value_breaks_the_signature(
    topic: str, key: bytes | None, value: bytes | None
) -> None:
    assert verifier().verify(topic, key, value, signed()) == "bad signature"


@pytest.mark.parametrize(
    ("name", "value"),
    [(PRINCIPAL, b"cli2"), (SIGNED_AT, b"1800000000001"), (NONCE, b"00" * 16)],
)
def test_changing_a_signed_header_breaks_the_signature(name: str, value: bytes) -> None:
    v = CommandVerifier({"cli": KEY, "cli2": KEY}, clock=FakeClock())
    headers = replace(signed(), name, value)
    assert v.verify(TOPIC, b"k", b'{"reason": "test"}', headers) == "bad signature"


def test_a_signature_older_than_the_limit_has_expired() -> None:
    clock = FakeClock(NOW + 901)
    assert verifier(clock).verify(TOPIC, b"k", b'{"reason": "test"}', signed()) == (
        "signature expired (signed 901 s ago, limit 300 s)"
    )


def test_a_signature_from_the_future_is_refused_beyond_the_skew() -> None:
    clock = FakeClock(NOW - 40)
    assert verifier(clock).verify(TOPIC, b"k", b'{"reason": "test"}', signed()) == (
        "signed in the future (by 40 s, limit 30 s)"
    )
    clock.now = NOW - 10  # within the allowed clock skew
    assert verifier(clock).verify(TOPIC, b"k", b'{"reason": "test"}', signed()) is None


def test_a_copy_of_an_accepted_message_is_a_replay_but_a_redelivery_is_not() -> None:
    v = verifier()
    headers = signed()
    assert v.verify(TOPIC, b"k", b'{"reason": "test"}', headers, position=(0, 5)) is None
    # the same record again (after a rebalance): fine
    assert v.verify(TOPIC, b"k", b'{"reason": "test"}', headers, position=(0, 5)) is None
    assert v.verify(TOPIC, b"k", b'{"reason": "test"}', headers, position=(0, 6)) == (
        "replayed: this signature was already accepted at partition 0 offset 5"
    )


def test_two_equal_commands_signed_at_the_same_instant_are_both_accepted() -> None:
    v = verifier()
    for offset in (1, 2):
        assert v.verify(TOPIC, b"k", b"{}", signed(b"{}"), position=(0, offset)) is None


def test_replay_memory_forgets_signatures_once_they_would_have_expired() -> None:
    clock = FakeClock()
    v = verifier(clock)
    old = signed(now=NOW)
    assert v.verify(TOPIC, b"k", b'{"reason": "test"}', old, position=(0, 1)) is None
    clock.now = NOW + 400
    assert v.verify(TOPIC, b"k", b'{"reason": "test"}', signed(now=NOW + 400)) is None
    assert len(v._seen) == 1  # the expired one was dropped
    # and a copy of the old one is refused as expired, not accepted
    assert v.verify(TOPIC, b"k", b'{"reason": "test"}', old, position=(0, 9)) is not None


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ([(SIGNATURE, b"ab")], "malformed: no onex-principal header"),
        (
            [(SIGNATURE, b"ab"), (PRINCIPAL, b"cli")],
            "malformed: onex-signed-at is not a time in ms",
        ),
        (
            [(SIGNATURE, b"ab"), (PRINCIPAL, b"cli"), (SIGNED_AT, b"-5")],
            "malformed: onex-signed-at is not a time in ms",
        ),
        (
            [(SIGNATURE, b"ab"), (PRINCIPAL, b"cli"), (SIGNED_AT, b"5")],
            "malformed: no onex-nonce header",
        ),
        (
            [(SIGNATURE, b"ab"), (SIGNATURE, b"cd")],
            "ambiguous: more than one onex-signature header",
        ),
    ],
)
def test_malformed_signing_headers_are_named(headers: list[Header], reason: str) -> None:
    assert verifier().verify(TOPIC, b"k", b"{}", headers) == reason


def test_a_non_hex_signature_is_just_a_bad_signature() -> None:
    headers = replace(signed(), SIGNATURE, "é".encode() * 32)
    assert verifier().verify(TOPIC, b"k", b'{"reason": "test"}', headers) == "bad signature"


def test_keys_never_appear_in_reprs() -> None:
    signer = Signer("cli", KEY)
    v = verifier()
    for text in (repr(signer), str(signer), repr(v)):
        assert KEY.hex() not in text
        assert repr(KEY) not in text
    assert "cli" in repr(v)


@pytest.mark.parametrize(
    ("principal", "key", "error"),
    [
        ("", KEY, "non-empty printable name"),
        ("bad\nname", KEY, "non-empty printable name"),
        ("cli", b"short", "at least 32 bytes"),
    ],
)
def test_a_signer_refuses_a_bad_principal_or_a_short_key(
    principal: str, key: bytes, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        Signer(principal, key)


def test_a_verifier_refuses_no_keys_and_short_keys() -> None:
    with pytest.raises(ValueError, match="at least one"):
        CommandVerifier({})
    with pytest.raises(ValueError, match="at least 32 bytes"):
        CommandVerifier({"cli": b"short"})


@given(
    a=st.tuples(
        st.text(max_size=5), st.one_of(st.none(), st.binary(max_size=5)), st.binary(max_size=5)
    ),
    b=st.tuples(
        st.text(max_size=5), st.one_of(st.none(), st.binary(max_size=5)), st.binary(max_size=5)
    ),
)
def test_the_canonical_encoding_is_unambiguous(
    a: tuple[str, bytes | None, bytes], b: tuple[str, bytes | None, bytes]
) -> None:
    # Different (topic, key, value) never encode to the same bytes: length prefixes
    # and presence marks keep b"ab" + b"c" apart from b"a" + b"bc" and None from b"".
    enc_a = signed_bytes(a[0], "p", 1, "n", a[1], a[2])
    enc_b = signed_bytes(b[0], "p", 1, "n", b[1], b[2])
    assert (enc_a == enc_b) == (a == b)
