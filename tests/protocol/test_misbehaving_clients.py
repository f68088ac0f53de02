"""Each kind of malformed client message drops only its sender; the round goes on.

Messages validate on construction, so the malformed ones here are raw stand-ins
(:mod:`tests.protocol.forge`): they check the server's own defences against a caller that
hands it an object no codec would build.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from secagg.protocol.messages import (
    Abort,
    AdvertiseKeys,
    ClientMessage,
    EncryptedShares,
    MaskedInput,
    PublicKeys,
    Round,
    UnmaskResponse,
)
from secagg.reasons import DropReason
from tests.protocol.conftest import make_harness
from tests.protocol.forge import forge_replace

BAD = 4  # the misbehaving client


def _keys(msg: ClientMessage, **changes: bytes) -> ClientMessage:
    assert isinstance(msg, AdvertiseKeys)
    return forge_replace(msg, keys=forge_replace(msg.keys, **changes))


def _shares(
    msg: ClientMessage, fn: Callable[[dict[int, bytes]], dict[int, bytes]]
) -> ClientMessage:
    assert isinstance(msg, EncryptedShares)
    return forge_replace(msg, ciphertexts=fn(dict(msg.ciphertexts)))


def _vector(msg: ClientMessage, fn: Callable[[np.ndarray], np.ndarray]) -> ClientMessage:
    assert isinstance(msg, MaskedInput)
    return forge_replace(msg, vector=fn(msg.vector))


def _drop_first(d: dict[int, bytes]) -> dict[int, bytes]:
    return dict(list(d.items())[1:])


def _truncate(d: dict[int, bytes]) -> dict[int, bytes]:
    return {k: v[:-1] for k, v in d.items()}


def _swap_kind(msg: ClientMessage) -> ClientMessage:
    assert isinstance(msg, UnmaskResponse)
    return forge_replace(msg, self_mask_shares={}, key_shares=dict(msg.self_mask_shares))


CASES: dict[str, tuple[Round, Callable[[ClientMessage], ClientMessage], DropReason]] = {
    "wrong-session-id": (
        Round.ADVERTISE_KEYS,
        lambda m: forge_replace(m, session_id=bytes(32)),
        DropReason.WRONG_SESSION,
    ),
    "low-order-key": (
        Round.ADVERTISE_KEYS,
        lambda m: _keys(m, mask_public=bytes(32)),
        DropReason.INVALID_KEY,
    ),
    "short-key": (
        Round.ADVERTISE_KEYS,
        lambda m: _keys(m, enc_public=b"\x09" * 31),
        DropReason.INVALID_KEY,
    ),
    "same-key-twice": (
        Round.ADVERTISE_KEYS,
        lambda m: _keys(m, mask_public=m.keys.enc_public),  # type: ignore[union-attr]
        DropReason.DUPLICATE_KEY,
    ),
    "missing-ciphertext": (
        Round.SHARE_KEYS,
        lambda m: _shares(m, _drop_first),
        DropReason.BAD_SHARES,
    ),
    "truncated-ciphertext": (
        Round.SHARE_KEYS,
        lambda m: _shares(m, _truncate),
        # A ciphertext's size is a message field (172 bytes): refused at the session's door.
        DropReason.MALFORMED,
    ),
    "short-vector": (
        Round.MASKED_INPUT,
        lambda m: _vector(m, lambda v: v[:-1]),
        DropReason.WRONG_LENGTH,
    ),
    "wrong-dtype": (
        Round.MASKED_INPUT,
        lambda m: _vector(m, lambda v: v.astype(np.float64)),
        DropReason.MALFORMED,
    ),
    "2d-vector": (
        Round.MASKED_INPUT,
        lambda m: _vector(m, lambda v: v.reshape(1, -1)),
        DropReason.MALFORMED,
    ),
    "client-abort": (
        Round.SHARE_KEYS,
        lambda m: Abort(m.session_id, BAD, "too-few-neighbours"),
        DropReason.CLIENT_ABORTED,
    ),
    "message-for-another-round": (
        Round.SHARE_KEYS,
        lambda m: MaskedInput(m.session_id, BAD, np.zeros(12, dtype=np.uint32)),
        DropReason.WRONG_ROUND,
    ),
    "wrong-kind-of-share": (Round.UNMASKING, _swap_kind, DropReason.BAD_SHARES),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_message_drops_only_its_sender(name: str) -> None:
    round_, mutate, reason = CASES[name]

    def hook(r: Round, i: int, msg: ClientMessage) -> ClientMessage | None:
        return mutate(msg) if (r, i) == (round_, BAD) else msg

    h = make_harness(9, 12, 32, seed=11)
    h.hook = hook
    h.run()
    result = h.server.result
    record = h.server.clients[BAD]
    assert record.reason is reason
    others = [i for i, r in h.server.clients.items() if i != BAD and not r.active]
    assert others == []
    if round_ is Round.UNMASKING:  # its input was already in the sum: still included
        assert BAD in result.included
    else:
        assert BAD not in result.included
        assert len(result.included) == 8
    np.testing.assert_array_equal(result.total.astype(np.uint64), h.plain_sum(result.included))


def test_out_of_range_words_dropped_for_small_rings() -> None:
    def hook(r: Round, i: int, msg: ClientMessage) -> ClientMessage | None:
        if (r, i) == (Round.MASKED_INPUT, BAD):
            return _vector(msg, lambda v: v | np.uint32(1 << 20))
        return msg

    h = make_harness(9, 12, 16, seed=12)
    h.hook = hook
    h.run()
    assert h.server.clients[BAD].reason is DropReason.MALFORMED
    result = h.server.result
    np.testing.assert_array_equal(result.total.astype(np.uint64), h.plain_sum(result.included))


@pytest.mark.parametrize("round_", [Round.ADVERTISE_KEYS, Round.SHARE_KEYS])
def test_duplicate_message_drops_sender(round_: Round) -> None:
    sent: list[ClientMessage] = []

    def hook(r: Round, i: int, msg: ClientMessage) -> ClientMessage | None:
        if (r, i) == (round_, BAD):
            sent.append(msg)
        return msg

    h = make_harness(9, 12, 32, seed=13)
    h.hook = hook
    h.clients  # noqa: B018

    # The duplicate arrives within the same collection phase.
    def deliver(r: Round, replies: dict[int, ClientMessage]) -> None:
        if r == round_:
            h.server.receive(sent[0])

    h.after_deliver = deliver
    h.run()
    assert h.server.clients[BAD].reason is DropReason.DUPLICATE
    result = h.server.result
    assert BAD not in result.included
    np.testing.assert_array_equal(result.total.astype(np.uint64), h.plain_sum(result.included))


def test_duplicate_masked_input_is_not_added_twice() -> None:
    sent: list[ClientMessage] = []
    h = make_harness(9, 12, 32, seed=14)

    def deliver(r: Round, replies: dict[int, ClientMessage]) -> None:
        if r == Round.MASKED_INPUT:
            h.server.receive(replies[BAD])
            sent.append(replies[BAD])

    h.after_deliver = deliver
    h.run()
    assert sent
    result = h.server.result
    # Its input is in the sum exactly once; the repeat only marks it.
    assert BAD in result.included
    assert BAD in result.late
    np.testing.assert_array_equal(result.total.astype(np.uint64), h.plain_sum(result.included))


def test_unknown_sender_is_ignored() -> None:
    h = make_harness(5, 4, 32, seed=15)

    def hook(r: Round, i: int, msg: ClientMessage) -> ClientMessage | None:
        if (r, i) == (Round.ADVERTISE_KEYS, 1):
            h.server.receive(forge_replace(msg, sender=77))
        return msg

    h.hook = hook
    h.run()
    assert h.server.rejected == 1
    assert h.server.result.included == (1, 2, 3, 4, 5)


def test_keys_of_a_different_type_are_malformed() -> None:
    def hook(r: Round, i: int, msg: ClientMessage) -> ClientMessage | None:
        if (r, i) == (Round.ADVERTISE_KEYS, BAD):
            return forge_replace(msg, keys=("not", "keys"))  # type: ignore[arg-type]
        return msg

    h = make_harness(9, 12, 32, seed=16)
    h.hook = hook
    h.run()
    assert h.server.clients[BAD].reason is DropReason.MALFORMED
    assert isinstance(PublicKeys, type)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda m: forge_replace(m, ciphertexts=["not", "a", "mapping"]),
        lambda m: forge_replace(m, ciphertexts={1: 12345}),
        lambda m: forge_replace(m, ciphertexts=None),
    ],
    ids=["list", "int-blob", "none"],
)
def test_fields_of_the_wrong_type_drop_only_the_sender(
    mutate: Callable[[ClientMessage], ClientMessage],
) -> None:
    def hook(r: Round, i: int, msg: ClientMessage) -> ClientMessage | None:
        return mutate(msg) if (r, i) == (Round.SHARE_KEYS, BAD) else msg

    h = make_harness(9, 12, 32, seed=17)
    h.hook = hook
    h.run()
    assert h.server.clients[BAD].reason in (DropReason.MALFORMED, DropReason.BAD_SHARES)
    result = h.server.result
    assert BAD not in result.included
    assert len(result.included) == 8
    np.testing.assert_array_equal(result.total.astype(np.uint64), h.plain_sum(result.included))
