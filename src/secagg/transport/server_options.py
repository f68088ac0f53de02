"""What an aggregation server runs: :class:`ServerOptions` and their consistency checks."""

from __future__ import annotations

from dataclasses import dataclass, field

from secagg.encoding.round_spec import RoundSpec
from secagg.errors import ConfigError
from secagg.identity.registry import IdentityRegistryFile
from secagg.protocol.config import DIGEST_BYTES, Mode
from secagg.protocol.observer import RoundObserver
from secagg.transport.codec import DEFAULT_CHUNK_BYTES, DEFAULT_MAX_MESSAGE_BYTES

__all__ = ["DEFAULT_MAX_DIM", "ServerOptions"]

# 2^25 words: 128 MiB per vector at b <= 32 (256 MiB above), and the server holds the running
# sum plus a bounded number of vectors being assembled. Raise it with max_dim / --max-dim.
DEFAULT_MAX_DIM = 2**25


@dataclass(frozen=True)
class ServerOptions:
    """What a server runs: how many clients, which parameters, which limits and deadlines.

    ``dim`` is required: the server declares the vector length, and a Hello with another one
    is refused (a joiner never decides D for the others).
    """

    clients: int
    dim: int
    bits: int = 32
    min_clients: int | None = None  # start without waiting for all once the join deadline passed
    degree: int | None = None
    threshold: int | None = None
    mode: Mode = "semi-honest"
    dropout_rate: float = 0.05
    corrupt_rate: float = 0.05
    allow_unsafe: bool = False
    rounds: int = 1
    join_timeout: float = 60.0
    phase_timeout: float = 30.0
    # A welcomed client that has not advertised its keys after this many seconds gives its
    # slot to a client waiting in the lobby (semi-honest mode; capped at phase_timeout).
    keys_timeout: float = 10.0
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    max_dim: int = DEFAULT_MAX_DIM
    assembly_budget_bytes: int = 128 * 1024 * 1024  # vectors being assembled at once (min 2)
    upload_idle_timeout: float = 10.0  # longest pause between two chunks of one masked input
    registry: IdentityRegistryFile | None = None  # malicious mode: who may join, by name
    # The digest of what the clients were handed for the round (secagg.encoding.context), in
    # the RoundConfig; clients that computed another digest abort with context-mismatch.
    context_digest: bytes | None = None
    # Canonical round spec (encoding.round_spec) announced in Welcome.spec; empty: raw integers.
    spec: bytes = b""
    # Joiners that may wait in the lobby at once (None: 4 x clients + 16); more are refused
    # with server-full. Bounds the server's memory for streams that are not in a round.
    max_waiting: int | None = None
    # The largest task (model, query) :meth:`AggregationServer.set_task` accepts.
    max_task_bytes: int = 256 * 1024 * 1024
    # Worker processes for unmasking (the self masks and the dropped clients' pairwise masks
    # are expanded in parallel, split along the vector); 1: in the server's own process.
    workers: int = 1
    # Hears each round's server steps (as simulate(observer=) does); None: only the report.
    observer: RoundObserver | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.spec:
            _check_spec(self)
        if self.clients < 2:
            raise ConfigError(f"need at least 2 clients, got {self.clients}")
        if self.min_clients is not None and not 2 <= self.min_clients <= self.clients:
            raise ConfigError(f"min_clients must be in 2..{self.clients}")
        if self.max_dim < 1:
            raise ConfigError(f"max_dim must be at least 1, got {self.max_dim}")
        if not 1 <= self.dim <= self.max_dim:
            raise ConfigError(
                f"dim must be in 1..{self.max_dim} (max_dim), got {self.dim}; "
                "raise max_dim for longer vectors if the server has the memory"
            )
        if self.rounds < 1:
            raise ConfigError("rounds must be at least 1")
        if self.max_message_bytes < 64 * 1024:
            raise ConfigError("max_message_bytes must be at least 64 KiB")
        if not 0 < self.chunk_bytes <= self.max_message_bytes - 1024:
            raise ConfigError("chunk_bytes must be below max_message_bytes by at least 1 KiB")
        if self.join_timeout <= 0 or self.phase_timeout <= 0 or self.keys_timeout <= 0:
            raise ConfigError("timeouts must be positive")
        if self.context_digest is not None and len(self.context_digest) != DIGEST_BYTES:
            raise ConfigError(f"context_digest must be {DIGEST_BYTES} bytes")
        if self.mode == "malicious" and self.registry is None:
            raise ConfigError("malicious mode needs the clients' identity registry")
        if self.max_waiting is not None and self.max_waiting < 1:
            raise ConfigError(f"max_waiting must be at least 1, got {self.max_waiting}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ConfigError(f"workers must be a positive integer, got {self.workers!r}")
        if self.max_task_bytes < 0:
            raise ConfigError("max_task_bytes must be >= 0")


def _check_spec(opts: ServerOptions) -> None:
    """The spec must parse and agree with the options it also fixes (bits, D, clients)."""
    fields = RoundSpec.decode(opts.spec).fields
    bits, dim, n_clients = fields.get("bits"), fields.get("dim"), fields.get("n_clients")
    if bits is not None and bits != opts.bits:
        raise ConfigError(f"the spec's vectors have b={bits}; the server was given b={opts.bits}")
    if dim is not None and dim != opts.dim:
        raise ConfigError(f"the spec's vectors have D={dim}; the server was given D={opts.dim}")
    if isinstance(n_clients, int) and n_clients < opts.clients:
        raise ConfigError(
            f"the spec was made for at most {n_clients} clients (its bit width and decoding "
            f"depend on it); the server expects {opts.clients}"
        )
