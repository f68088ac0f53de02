"""The saved form of a client session: versioned, length-prefixed bytes, no pickle.

Layout (all integers big-endian)::

    magic "secagg-client-session" | version u8 | step u64 | state tag u8
    | config: u32 length + RoundConfig.encode() | allow_unsafe u8 | index u32
    | the state's fields, in its dataclass order, each by the codec named after the field

A ``bytes`` field is a u32 length and the bytes; a set of indices is a u32 count and u32 each;
a map is a u32 count and (u32 index, value) pairs in index order; an optional value is a u8
flag (0/1) then the value; the input vector is a u64 count then little-endian ring words. The
long-term identity key, the registry, the policy and the random source are never saved: the
host passes them to :func:`load` as it passed them to the constructor.

The bytes of a live session hold its round secrets (X25519 private keys, the self-mask seed,
shares, share keys): store them like a private key. A DONE or ABORTED session's bytes hold none.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from secagg.crypto.entropy import RandomSource, default_random
from secagg.crypto.keys import X25519KeyPair
from secagg.crypto.prg import word_dtype
from secagg.crypto.shamir import Share
from secagg.crypto.signing import SigningKey
from secagg.errors import SavedSessionError, SecAggError
from secagg.graph import NeighbourGraph
from secagg.protocol.client.context import ClientContext, HeldShares, RoundGraph, as_ring_vector
from secagg.protocol.client.states import (
    Aborted,
    AwaitCommitments,
    AwaitConsistency,
    AwaitKeys,
    AwaitResult,
    AwaitShares,
    AwaitSharesSigned,
    AwaitSignedKeys,
    AwaitSignedUnmask,
    AwaitUnmask,
    Done,
    New,
    NewSigned,
    State,
)
from secagg.protocol.config import RoundConfig
from secagg.protocol.identity import IdentityRegistry
from secagg.protocol.messages import PublicKeys
from secagg.protocol.policy import ClientPolicy
from secagg.reasons import AbortReason

__all__ = ["MAGIC", "VERSION", "Saved", "dump", "load", "saved_step"]

MAGIC = b"secagg-client-session"
VERSION = 1
_HEAD = struct.Struct(">BQB")  # version, step, state tag
_U8, _U32, _U64 = struct.Struct(">B"), struct.Struct(">I"), struct.Struct(">Q")
_SECRET = 32  # bytes of a private key, seed, nonce, commitment, digest or share key
# A state's tag is its position here: append only, never reorder.
_TAGS: tuple[type[State], ...] = (
    New,
    NewSigned,
    AwaitCommitments,
    AwaitKeys,
    AwaitSignedKeys,
    AwaitShares,
    AwaitSharesSigned,
    AwaitConsistency,
    AwaitUnmask,
    AwaitSignedUnmask,
    AwaitResult,
    Done,
    Aborted,
)


@dataclass(frozen=True, slots=True)
class Saved:
    """What :func:`load` gives back: the step counter, the config, the index and the state."""

    step: int
    config: RoundConfig
    index: int
    state: State


class _Writer:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def u8(self, value: int) -> None:
        self.parts.append(_U8.pack(value))

    def u32(self, value: int) -> None:
        self.parts.append(_U32.pack(value))

    def blob(self, data: bytes) -> None:
        self.u32(len(data))
        self.parts.append(bytes(data))

    def ints(self, values: Iterable[int]) -> None:
        items = list(values)
        self.u32(len(items))
        self.parts.extend(_U32.pack(v) for v in items)

    def blobs(self, values: Mapping[int, bytes]) -> None:
        self.u32(len(values))
        for k in sorted(values):
            self.u32(k)
            self.blob(values[k])


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def take(self, size: int) -> bytes:
        end = self._at + size
        if end > len(self._data):
            raise SavedSessionError(
                f"saved session is truncated: needed {size} bytes at offset {self._at}, "
                f"{len(self._data) - self._at} left"
            )
        out = self._data[self._at : end]
        self._at = end
        return out

    def u8(self) -> int:
        value: int = _U8.unpack(self.take(1))[0]
        return value

    def u32(self) -> int:
        value: int = _U32.unpack(self.take(4))[0]
        return value

    def flag(self) -> bool:
        value = self.u8()
        if value > 1:
            raise SavedSessionError(f"saved session has a flag byte {value}, expected 0 or 1")
        return value == 1

    def blob(self, size: int | None = None) -> bytes:
        data = self.take(self.u32())
        if size is not None and len(data) != size:
            raise SavedSessionError(f"saved session has a {len(data)}-byte field, expected {size}")
        return data

    def ints(self) -> tuple[int, ...]:
        return tuple(self.u32() for _ in range(self.u32()))

    def blobs(self, size: int | None = None) -> dict[int, bytes]:
        return {self.u32(): self.blob(size) for _ in range(self.u32())}

    def end(self) -> None:
        if self._at != len(self._data):
            raise SavedSessionError(
                f"saved session has {len(self._data) - self._at} trailing bytes after its end"
            )


@dataclass(frozen=True, slots=True)
class _Host:
    """What the host passes to restore (never saved) and the header's config and index."""

    config: RoundConfig
    index: int
    identity: SigningKey | None
    registry: IdentityRegistry | None
    policy: ClientPolicy
    rng: RandomSource
    graph: NeighbourGraph | None


# -- field codecs: (write, read) per state field name ----------------------------------------


def _put_ctx(w: _Writer, ctx: ClientContext) -> None:
    w.blob(ctx.context_digest)


def _get_ctx(r: _Reader, host: _Host) -> ClientContext:
    digest = r.blob(_SECRET)
    malicious = host.config.mode == "malicious"
    if malicious and (host.identity is None or host.registry is None):
        raise SavedSessionError("restoring a malicious-mode session needs identity= and registry=")
    if not malicious and (host.identity is not None or host.registry is not None):
        raise SavedSessionError(
            "identity= or registry= given to restore a session of a semi-honest round"
        )
    sid = host.config.session_id
    return ClientContext(
        host.config, host.index, sid, host.rng, host.identity, host.registry, digest
    )


def _put_vector(w: _Writer, data: np.ndarray[Any, Any]) -> None:
    w.parts.append(_U64.pack(data.size))
    w.parts.append(np.ascontiguousarray(data, dtype=data.dtype.newbyteorder("<")).tobytes())


def _get_vector(r: _Reader, host: _Host) -> np.ndarray[Any, Any]:
    count: int = _U64.unpack(r.take(8))[0]
    if count != host.config.dim:
        raise SavedSessionError(
            f"saved input has {count} words, the round's D is {host.config.dim}"
        )
    dtype = word_dtype(host.config.bits).newbyteorder("<")
    words = np.frombuffer(r.take(count * dtype.itemsize), dtype=dtype)
    return as_ring_vector(words, host.config)


def _put_graph(w: _Writer, graph: RoundGraph | None) -> None:
    w.u8(graph is not None)
    if graph is not None:
        w.blob(graph.seed)
        w.ints(sorted(graph.neighbours))


def _get_graph(r: _Reader, host: _Host) -> RoundGraph | None:
    if not r.flag():
        return None
    graph = RoundGraph(r.blob(_SECRET), frozenset(r.ints()))
    n = host.config.num_clients
    if not all(1 <= v <= n and v != host.index for v in graph.neighbours):
        raise SavedSessionError("saved neighbours must be other clients' indices in 1..n")
    if host.graph is not None and graph.neighbours != set(host.graph.neighbours(host.index)):
        raise SavedSessionError("the graph= given to restore is not the saved session's graph")
    return graph


def _put_optional_ints(w: _Writer, values: tuple[int, ...] | None) -> None:
    w.u8(values is not None)
    if values is not None:
        w.ints(values)


def _put_optional_blob(w: _Writer, data: bytes | None) -> None:
    w.u8(data is not None)
    if data is not None:
        w.blob(data)


def _put_peer_keys(w: _Writer, keys: Mapping[int, PublicKeys]) -> None:
    w.u32(len(keys))
    for v in sorted(keys):
        k = keys[v]
        w.u32(v)
        for part in (k.enc_public, k.mask_public, k.signature, k.commitment):
            w.blob(part)


def _get_peer_keys(r: _Reader, _host: _Host) -> dict[int, PublicKeys]:
    return {r.u32(): PublicKeys(r.blob(), r.blob(), r.blob(), r.blob()) for _ in range(r.u32())}


def _put_shares(w: _Writer, held: HeldShares) -> None:
    w.blob(held.key_share.to_bytes())
    w.blob(held.seed_share.to_bytes())


def _get_shares(r: _Reader, _host: _Host) -> HeldShares:
    return HeldShares(Share.from_bytes(r.blob()), Share.from_bytes(r.blob()))


def _secret(r: _Reader, _host: _Host) -> bytes:
    return r.blob(_SECRET)


def _keypair(r: _Reader, _host: _Host) -> X25519KeyPair:
    return X25519KeyPair.from_private_bytes(r.blob(_SECRET))


_Codec = tuple[Callable[[_Writer, Any], None], Callable[[_Reader, _Host], Any]]
_KEYPAIR: _Codec = (lambda w, k: w.blob(k.private_bytes()), _keypair)
_SECRET_BYTES: _Codec = (_Writer.blob, _secret)
_BLOB_MAP: _Codec = (_Writer.blobs, lambda r, _h: r.blobs())
_CODECS: dict[str, _Codec] = {
    "ctx": (_put_ctx, _get_ctx),
    "policy": (lambda _w, _p: None, lambda _r, h: h.policy),  # the host's, never saved
    "num_clients": (lambda _w, _n: None, lambda _r, h: h.config.num_clients),  # the config's
    "data": (_put_vector, _get_vector),
    "spec_digest": (_put_optional_blob, lambda r, _h: r.blob(_SECRET) if r.flag() else None),
    "graph": (_put_graph, _get_graph),
    "enc_keys": _KEYPAIR,
    "mask_keys": _KEYPAIR,
    "nonce": _SECRET_BYTES,
    "commitment": _SECRET_BYTES,
    "seed": _SECRET_BYTES,
    "commitments": (_Writer.blobs, lambda r, _h: r.blobs(_SECRET)),
    "peer_keys": (_put_peer_keys, _get_peer_keys),
    "share_keys": (_Writer.blobs, lambda r, _h: r.blobs(_SECRET)),
    "ciphertexts": _BLOB_MAP,
    "own_shares": (_put_shares, _get_shares),
    "survivors": (_Writer.ints, lambda r, _h: r.ints()),
    "signed": (_put_optional_ints, lambda r, _h: r.ints() if r.flag() else None),
    "included": (_Writer.ints, lambda r, _h: r.ints()),
    "reason": (lambda w, reason: w.blob(reason.value.encode()), lambda r, _h: _reason(r)),
    # A detail may quote the server's words: odd code points are escaped, never a failure.
    "detail": (
        lambda w, text: w.blob(text.encode("utf-8", "backslashreplace")),
        lambda r, _h: r.blob().decode(),
    ),
}


def _reason(r: _Reader) -> AbortReason:
    value = r.blob().decode()
    if value not in AbortReason._value2member_map_:
        raise SavedSessionError(f"saved abort reason {value!r} is not a known reason")
    return AbortReason(value)


# -- the whole session ------------------------------------------------------------------------


def dump(step: int, config: RoundConfig, index: int, state: State) -> bytes:
    """The saved form of a session at ``step`` in ``state``."""
    w = _Writer()
    w.parts.append(MAGIC + _HEAD.pack(VERSION, step, _TAGS.index(type(state))))
    w.blob(config.encode())
    w.u8(config.allow_unsafe)
    w.u32(index)
    for f in fields(state):  # type: ignore[arg-type]  # every concrete state is a dataclass
        _CODECS[f.name][0](w, getattr(state, f.name))
    return b"".join(w.parts)


def saved_step(blob: bytes) -> int:
    """The step counter in saved bytes (without restoring them): higher is newer."""
    return _header(_Reader(blob))[0]


def load(
    blob: bytes,
    *,
    identity: SigningKey | None,
    registry: IdentityRegistry | None,
    policy: ClientPolicy | None,
    rng: RandomSource | None,
    graph: NeighbourGraph | None,
) -> Saved:
    """Parse :func:`dump` output; raises :class:`SavedSessionError` for anything else."""
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise SavedSessionError(f"a saved session is bytes, got {type(blob).__name__}")
    r = _Reader(bytes(blob))
    try:
        step, cls = _header(r)
        config = RoundConfig.decode(r.blob(), allow_unsafe=r.flag())
        index = r.u32()
        if not 1 <= index <= config.num_clients:
            raise SavedSessionError(f"saved index {index} is not in 1..{config.num_clients}")
        host = _Host(
            config,
            index,
            identity,
            registry,
            ClientPolicy() if policy is None else policy,
            rng or default_random(),
            graph,
        )
        values = {f.name: _CODECS[f.name][1](r, host) for f in fields(cls)}  # type: ignore[arg-type]
        r.end()
        _check_chain(cls, config)
        return Saved(step, config, index, cls(**values))
    except SavedSessionError:
        raise
    except (SecAggError, ValueError, struct.error) as exc:
        # A field that parses but is not valid (a config, key, share, vector or text).
        raise SavedSessionError(f"saved session is garbled: {exc}") from None


def _header(r: _Reader) -> tuple[int, type[State]]:
    if r.take(len(MAGIC)) != MAGIC:
        raise SavedSessionError("not a saved secagg client session (bad magic)")
    version, step, tag = _HEAD.unpack(r.take(_HEAD.size))
    if version != VERSION:
        raise SavedSessionError(
            f"saved session format version {version} is not supported (this is {VERSION})"
        )
    if tag >= len(_TAGS):
        raise SavedSessionError(f"saved session has an unknown state tag {tag}")
    return step, _TAGS[tag]


_MALICIOUS_ONLY: frozenset[type[State]] = frozenset(
    {NewSigned, AwaitCommitments, AwaitSignedKeys, AwaitSharesSigned, AwaitConsistency}
    | {AwaitSignedUnmask}
)
_SEMI_HONEST_ONLY: frozenset[type[State]] = frozenset({New, AwaitKeys, AwaitShares, AwaitUnmask})


def _check_chain(cls: type[State], config: RoundConfig) -> None:
    wrong = _SEMI_HONEST_ONLY if config.mode == "malicious" else _MALICIOUS_ONLY
    if cls in wrong:
        raise SavedSessionError(
            f"saved state {cls.__name__} does not belong to a {config.mode} round"
        )
