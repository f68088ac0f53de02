"""Messages validate on construction: a malformed message cannot be built.

Every message type refuses each kind of bad field (type, size, range, order, shape) with
MalformedMessageError, whose text names the field and never echoes its bytes; valid messages
build as before; nothing but MalformedMessageError ever comes out of a constructor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.crypto.shamir import SHARE_BYTES
from secagg.errors import MalformedMessageError, ProtocolError
from secagg.protocol.derive import NONCE_BYTES
from secagg.protocol.fields import MAX_INDEX, MAX_TEXT
from secagg.protocol.messages import (
    CIPHERTEXT_BYTES,
    Abort,
    AdvertiseKeys,
    ClientMessage,
    CommitmentsBroadcast,
    ConsistencyRequest,
    ConsistencySignature,
    EncryptedShares,
    KeysBroadcast,
    MaskedInput,
    PublicKeys,
    RevealNonce,
    RoundComplete,
    ServerMessage,
    SharesDelivery,
    UnmaskRequest,
    UnmaskResponse,
)

SID = bytes(range(32))
SECRET = bytes(range(200, 232))  # stands in for key material: must never appear in an error
KEYS = PublicKeys(b"\x01" * 32, b"\x02" * 32)
SIGNED = PublicKeys(b"\x01" * 32, b"\x02" * 32, b"\x03" * 64, b"\x04" * 32)
CT = b"c" * CIPHERTEXT_BYTES
SHARE = b"s" * SHARE_BYTES
SIG = b"g" * 64

# One valid instance of every message type, as keyword arguments.
VALID: dict[type, dict[str, Any]] = {
    PublicKeys: {"enc_public": b"\x01" * 32, "mask_public": b"\x02" * 32},
    AdvertiseKeys: {"session_id": SID, "sender": 3, "keys": SIGNED},
    CommitmentsBroadcast: {"session_id": SID, "commitments": {1: b"c" * 32, 2: b"d" * 32}},
    RevealNonce: {"session_id": SID, "sender": 3, "nonce": b"n" * NONCE_BYTES},
    KeysBroadcast: {"session_id": SID, "keys": {1: KEYS, 2: SIGNED}, "nonces": {1: b"n" * 32}},
    EncryptedShares: {"session_id": SID, "sender": 3, "ciphertexts": {1: CT, 2: CT}},
    SharesDelivery: {"session_id": SID, "ciphertexts": {1: CT}},
    MaskedInput: {"session_id": SID, "sender": 3, "vector": np.arange(5, dtype=np.uint32)},
    ConsistencyRequest: {"session_id": SID, "survivors": (1, 2, 5)},
    ConsistencySignature: {"session_id": SID, "sender": 3, "signature": SIG},
    UnmaskRequest: {"session_id": SID, "survivors": (1, 2), "signatures": {1: SIG}},
    UnmaskResponse: {
        "session_id": SID,
        "sender": 3,
        "self_mask_shares": {1: SHARE},
        "key_shares": {2: SHARE},
    },
    Abort: {"session_id": SID, "sender": 0, "reason": "too-few-clients", "detail": "only 2"},
    RoundComplete: {"session_id": SID, "included": (1, 3)},
}

MESSAGE_TYPES = {
    *ClientMessage.__args__,  # type: ignore[attr-defined]
    *ServerMessage.__args__,  # type: ignore[attr-defined]
}

# Bad values by kind of field. Each is refused wherever a field of that kind appears.
BAD_SESSION_IDS = {"short": SID[:31], "long": SID + b"x", "str": "x" * 32, "none": None}
BAD_INDICES = {
    "zero": 0,
    "negative": -1,
    "bool": True,
    "float": 1.0,
    "str": "1",
    "too-big": MAX_INDEX + 1,
}
BAD_MAPPINGS = {
    "list": [(1, CT)],
    "none": None,
    "key-zero": {0: "VALUE"},
    "key-bool": {True: "VALUE"},
    "key-str": {"1": "VALUE"},
    "value-str": {1: "text"},
    "value-none": {1: None},
    "value-short": {1: SECRET[:7]},
    "value-long": {1: SECRET * 40},
}
BAD_INDEX_TUPLES = {
    "list": [1, 2],
    "unsorted": (2, 1),
    "repeated": (1, 1),
    "zero": (0, 1),
    "bool": (True,),
    "str": ("1",),
    "none": None,
}
BAD_VECTORS = {
    "list": [1, 2, 3],
    "2d": np.zeros((1, 3), dtype=np.uint32),
    "0d": np.uint32(3),
    "float": np.zeros(3),
    "int64": np.zeros(3, dtype=np.int64),
    "uint16": np.zeros(3, dtype=np.uint16),
    "object": np.array([1, 2], dtype=object),
}


def _bad_blobs(*sizes: int) -> dict[str, object]:
    out: dict[str, object] = {"str": "x" * sizes[-1], "none": None, "int": 5}
    for wrong in (sizes[-1] - 1, sizes[-1] + 1):
        if wrong not in sizes and wrong >= 0:
            out[f"{wrong}-bytes"] = (SECRET * 4)[:wrong]
    return out


def _field_kinds(cls: type) -> dict[str, dict[str, object]]:
    """The bad values for each field of ``cls``."""
    blob_sizes = {
        (PublicKeys, "enc_public"): (32,),
        (PublicKeys, "mask_public"): (32,),
        (PublicKeys, "signature"): (0, 64),
        (PublicKeys, "commitment"): (0, 32),
        (RevealNonce, "nonce"): (NONCE_BYTES,),
        (ConsistencySignature, "signature"): (64,),
    }
    out: dict[str, dict[str, object]] = {}
    for f in dataclasses.fields(cls):
        name = f.name
        if (cls, name) in blob_sizes:
            out[name] = _bad_blobs(*blob_sizes[(cls, name)])
        elif name == "session_id":
            out[name] = dict(BAD_SESSION_IDS)
            if cls is Abort:  # a confused peer's abort may carry a short id; not a long one
                out[name] = {k: v for k, v in BAD_SESSION_IDS.items() if k != "short"}
        elif name == "sender":
            out[name] = dict(BAD_INDICES)
            if cls is Abort:  # 0 is the server
                del out[name]["zero"]
        elif name in ("survivors", "included"):
            out[name] = dict(BAD_INDEX_TUPLES)
        elif name == "vector":
            out[name] = dict(BAD_VECTORS)
        elif name in ("reason", "detail"):
            out[name] = {"bytes": b"x", "int": 3, "none": None}
        elif name == "keys" and cls is AdvertiseKeys:
            out[name] = {"tuple": ("not", "keys"), "dict": {1: KEYS}, "none": None}
        elif name == "keys":
            out[name] = {
                **{k: v for k, v in BAD_MAPPINGS.items() if not k.startswith("value-")},
                "value-tuple": {1: ("not", "keys")},
                "value-bytes": {1: SECRET},
            }
        else:
            out[name] = dict(BAD_MAPPINGS)
    return out


CASES = [
    pytest.param(cls, name, bad, id=f"{cls.__name__}.{name}={kind}")
    for cls in VALID
    for name, kinds in _field_kinds(cls).items()
    for kind, bad in kinds.items()
]


def test_every_message_type_has_a_valid_example() -> None:
    assert set(VALID) == MESSAGE_TYPES | {PublicKeys}
    for cls, fields in VALID.items():
        assert isinstance(cls(**fields), cls)


@pytest.mark.parametrize(("cls", "name", "bad"), CASES)
def test_every_message_refuses_each_kind_of_bad_field(cls: type, name: str, bad: object) -> None:
    with pytest.raises(MalformedMessageError) as err:
        cls(**{**VALID[cls], name: bad})
    text = str(err.value)
    assert name.split("_")[0] in text  # names the field
    assert "expected" in text  # and what it wanted
    assert SECRET[:7].hex() not in text  # never its bytes
    assert repr(SECRET[:7])[2:-1] not in text


@pytest.mark.parametrize("cls", list(VALID))
def test_dataclasses_replace_cannot_sneak_a_bad_field_in(cls: type) -> None:
    """A malformed message cannot be built by editing a valid one either."""
    name, kinds = next(iter(_field_kinds(cls).items()))
    with pytest.raises(MalformedMessageError):
        dataclasses.replace(cls(**VALID[cls]), **{name: next(iter(kinds.values()))})


def test_the_error_is_the_one_sessions_catch() -> None:
    with pytest.raises(MalformedMessageError) as err:
        RevealNonce(SID, 1, b"short")
    assert isinstance(err.value, ProtocolError)
    assert isinstance(err.value, ValueError)


def test_valid_edges_build() -> None:
    assert Abort(b"", 0, "x").session_id == b""  # a peer that lost its session id may abort
    assert MaskedInput(SID, MAX_INDEX, np.zeros(0, dtype=np.uint64)).sender == MAX_INDEX
    assert UnmaskRequest(SID, ()).survivors == ()
    assert KeysBroadcast(SID, {}).nonces == {}
    with pytest.raises(MalformedMessageError):
        RevealNonce(SID, np.int64(3), b"n" * NONCE_BYTES)  # type: ignore[arg-type]


def test_abort_texts_are_cut_not_refused() -> None:
    """An abort must always be expressible: a long detail is cut to MAX_TEXT characters."""
    abort = Abort(SID, 2, "r" * (MAX_TEXT + 5), "d" * (MAX_TEXT * 3))
    assert abort.reason == "r" * MAX_TEXT
    assert abort.detail == "d" * MAX_TEXT


_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.binary(max_size=600),
    st.lists(st.integers(min_value=-3, max_value=2**33), max_size=6),
    st.lists(st.integers(min_value=-3, max_value=2**33), max_size=6).map(tuple),
    st.dictionaries(
        st.one_of(st.integers(min_value=-3, max_value=2**33), st.text(max_size=3)),
        st.one_of(st.binary(max_size=200), st.none(), st.integers()),
        max_size=4,
    ),
    st.sampled_from([np.zeros(3, dtype=np.uint32), np.zeros((2, 2)), np.arange(3), KEYS]),
)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(list(VALID)), st.data())
def test_junk_in_any_field_only_ever_raises_malformed(cls: type, data: st.DataObject) -> None:
    """Whatever a field holds, construction either succeeds or raises MalformedMessageError."""
    name = data.draw(st.sampled_from([f.name for f in dataclasses.fields(cls)]))
    junk = data.draw(_JUNK)
    try:
        msg = cls(**{**VALID[cls], name: junk})
    except MalformedMessageError:
        return
    assert getattr(msg, name) is junk or cls is Abort  # accepted as given (Abort may cut text)


def _check(make: Callable[[], object]) -> None:
    with pytest.raises(MalformedMessageError):
        make()


def test_checks_are_per_entry_for_mappings() -> None:
    """One bad entry among good ones is enough to refuse the message."""
    _check(lambda: EncryptedShares(SID, 1, {1: CT, 2: CT, 3: CT[:-1]}))
    _check(lambda: UnmaskResponse(SID, 1, {1: SHARE}, {2: SHARE, 7: SHARE + b"x"}))
    _check(lambda: KeysBroadcast(SID, {1: KEYS}, {1: b"n" * 32, 2: b"n"}))
    _check(lambda: ConsistencyRequest(SID, (1, 2, 3, 3)))
