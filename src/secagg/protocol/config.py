"""RoundConfig: every parameter client and server must agree on, and its session id."""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from dataclasses import dataclass, field

from secagg.crypto.entropy import RandomSource, default_random
from secagg.crypto.ring import check_bits
from secagg.errors import ConfigError
from secagg.graph import (
    MODES,
    GraphParameters,
    Mode,
    check_parameters,
    evaluate_parameters,
    find_parameters,
    threshold_bounds,
)

__all__ = ["PROTOCOL_VERSION", "Mode", "RoundConfig"]

PROTOCOL_VERSION = 1
# The wire code of a mode is its position here: never reorder.
_MODES: tuple[Mode, ...] = MODES
_MAGIC = b"secagg-round-config"
# magic, version, round id, n, t, k, D, b, mode, graph seed, context digest, spec digest
_LAYOUT = struct.Struct(">19sH16sIIIQBB32s32s32s")
ROUND_ID_BYTES = 16
SEED_BYTES = 32
DIGEST_BYTES = 32
MAX_CLIENTS = 2**32 - 1
MAX_DIM = 2**40


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name} must be an integer in {low}..{high}, got {value!r}")
    return value


def _check_bytes(name: str, value: object, size: int) -> bytes:
    if not isinstance(value, bytes) or len(value) != size:
        got = f"{len(value)} bytes" if isinstance(value, bytes) else type(value).__name__
        raise ConfigError(f"{name} must be {size} bytes, got {got}")
    return value


@dataclass(frozen=True)
class RoundConfig:
    """The parameters of one aggregation round (PROTOCOL.md, "Roles and parameters").

    Thresholds count a client's closed neighbourhood: the client itself and its ``degree``
    neighbours hold its shares, so ``threshold`` is at most ``degree + 1``.
    Build with :meth:`create` to get fresh random ids and derived safe parameters.
    """

    num_clients: int
    threshold: int
    degree: int
    dim: int
    bits: int
    mode: Mode
    round_id: bytes
    graph_seed: bytes
    context_digest: bytes = bytes(DIGEST_BYTES)
    spec_digest: bytes = bytes(DIGEST_BYTES)
    version: int = PROTOCOL_VERSION
    allow_unsafe: bool = field(default=False, compare=False)
    # What create() knew about the failure bounds of (n, k, t): not on the wire.
    parameters: GraphParameters | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.version != PROTOCOL_VERSION:
            raise ConfigError(
                f"protocol version {self.version!r} is not supported (this is {PROTOCOL_VERSION})"
            )
        n = _check_int("num_clients", self.num_clients, 2, MAX_CLIENTS)
        _check_int("dim", self.dim, 1, MAX_DIM)
        check_bits(self.bits)
        if self.mode not in _MODES:
            raise ConfigError(f"mode must be one of {_MODES}, got {self.mode!r}")
        _check_int("degree", self.degree, 1, n - 1)
        _check_int("threshold", self.threshold, 1, self.degree + 1)
        check_parameters(n, self.degree, self.threshold, self.mode, allow_unsafe=self.allow_unsafe)
        _check_bytes("round_id", self.round_id, ROUND_ID_BYTES)
        _check_bytes("graph_seed", self.graph_seed, SEED_BYTES)
        if self.mode == "malicious" and self.graph_seed != bytes(SEED_BYTES):
            # The clients derive the graph by commit-reveal; a server-chosen seed here would be
            # the grinding handle of PROTOCOL.md, "Graph seed".
            raise ConfigError(
                "a malicious-mode config must carry an all-zero graph_seed: the graph seed is "
                "derived from the clients' revealed nonces, never chosen by the server"
            )
        _check_bytes("context_digest", self.context_digest, DIGEST_BYTES)
        _check_bytes("spec_digest", self.spec_digest, DIGEST_BYTES)

    @classmethod
    def create(
        cls,
        num_clients: int,
        dim: int,
        bits: int,
        *,
        degree: int | None = None,
        threshold: int | None = None,
        mode: Mode = "semi-honest",
        dropout_rate: float = 0.05,
        corrupt_rate: float = 0.05,
        context_digest: bytes = bytes(DIGEST_BYTES),
        spec_digest: bytes = bytes(DIGEST_BYTES),
        allow_unsafe: bool = False,
        rng: RandomSource | None = None,
    ) -> RoundConfig:
        """A config with a fresh round id and (semi-honest mode) a fresh graph seed.

        In malicious mode the graph seed is all zero: the clients derive it by commit-reveal.

        Missing ``degree``/``threshold`` come from the parameter finder for ``num_clients``,
        ``dropout_rate`` and ``corrupt_rate``; a given degree without a threshold gets the
        smallest threshold the mode allows. ``spec_digest`` is
        :func:`secagg.encoding.round_spec.spec_digest` of the spec the server announces (zeros: raw
        integers).

        The result's ``parameters`` holds the failure bounds of the chosen (n, k, t) under the
        finder's independent-draws model with these rates: its ``abort_probability``, and
        ``meets_correctness=False`` when no parameters reach the correctness target for this
        n (the finder then picks the most robust private ones; callers should show the
        figure, as ``secagg serve`` and ``secagg simulate`` do).
        """
        n = _check_int("num_clients", num_clients, 2, MAX_CLIENTS)
        degree, threshold, found = _choose_degree_threshold(
            n, degree, threshold, mode, dropout_rate, corrupt_rate
        )
        rng = rng or default_random()
        config = cls(
            num_clients=n,
            threshold=threshold,
            degree=degree,
            dim=dim,
            bits=bits,
            mode=mode,
            round_id=rng.random_bytes(ROUND_ID_BYTES),
            graph_seed=(bytes(SEED_BYTES) if mode == "malicious" else rng.random_bytes(SEED_BYTES)),
            context_digest=context_digest,
            spec_digest=spec_digest,
            allow_unsafe=allow_unsafe,
        )
        if found is None:
            found = evaluate_parameters(
                n,
                config.degree,
                config.threshold,
                config.mode,
                dropout_rate=dropout_rate,
                corrupt_rate=corrupt_rate,
            )
        return dataclasses.replace(config, parameters=found)

    @property
    def is_complete_graph(self) -> bool:
        """True when every client neighbours every other (classic SecAgg)."""
        return self.degree == self.num_clients - 1

    def encode(self) -> bytes:
        """The canonical byte encoding (fixed layout, big-endian)."""
        return _LAYOUT.pack(
            _MAGIC,
            self.version,
            self.round_id,
            self.num_clients,
            self.threshold,
            self.degree,
            self.dim,
            self.bits,
            _MODES.index(self.mode),
            self.graph_seed,
            self.context_digest,
            self.spec_digest,
        )

    @classmethod
    def decode(cls, data: bytes, *, allow_unsafe: bool = False) -> RoundConfig:
        """Parse :meth:`encode` output, validating every field."""
        if len(data) != _LAYOUT.size:
            raise ConfigError(
                f"round config encoding must be {_LAYOUT.size} bytes, got {len(data)}"
            )
        magic, version, rid, n, t, k, dim, bits, mode, seed, digest, spec = _LAYOUT.unpack(data)
        if magic != _MAGIC:
            raise ConfigError("not a secagg round config encoding")
        if mode >= len(_MODES):
            raise ConfigError(f"unknown mode code {mode}")
        return cls(n, t, k, dim, bits, _MODES[mode], rid, seed, digest, spec, version, allow_unsafe)

    @property
    def session_id(self) -> bytes:
        """SHA-256 of the canonical encoding; bound into every key, signature and ciphertext."""
        return hashlib.sha256(self.encode()).digest()


def _choose_degree_threshold(
    n: int,
    degree: int | None,
    threshold: int | None,
    mode: Mode,
    dropout_rate: float,
    corrupt_rate: float,
) -> tuple[int, int, GraphParameters | None]:
    """Degree and threshold for :meth:`RoundConfig.create`, and the finder's pick if it chose both.

    Missing ones come from the parameter finder; a degree without a threshold gets the
    smallest threshold the mode allows.
    """
    found: GraphParameters | None = None
    if degree is None:
        found = find_parameters(n, dropout_rate=dropout_rate, corrupt_rate=corrupt_rate, mode=mode)
        degree = found.degree
        if threshold is None:
            threshold = found.threshold
        else:
            found = None
    if threshold is None:
        _check_int("degree", degree, 1, n - 1)
        threshold = threshold_bounds(degree, mode)[0]
    return degree, threshold, found
