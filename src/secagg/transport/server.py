"""The aggregation server on grpc.aio: registration, per-round deadlines, chunked inputs.

Each client opens one bidirectional ``Participate`` stream per aggregation round. The stream
authenticates the client's index: a message naming another sender drops the client. Every
stream has a reader task that parses and validates frames and puts events on one queue; a
single driver task owns the :class:`~secagg.protocol.server.session.ServerSession` (no locks),
waits for each phase's messages until all expected ones arrived or the phase deadline passed,
then calls ``advance()`` and sends what it returns. Masked inputs arrive in chunks and are
assembled into one array per client; a semaphore bounds how many are assembled at once so
that memory stays O(D) whatever the number of clients.

Joiners wait in a :class:`~secagg.transport.lobby.Lobby`; D is the server's declaration. In
round 0 a welcomed client that stays silent for ``keys_timeout`` (or whose stream ends) gives
its slot to the next waiting client, so the round's quorum is made of clients that advertised
keys (semi-honest mode). :meth:`AggregationServer.request_shutdown` (SIGINT/SIGTERM in the CLI)
ends the running round as ``interrupted`` and tells its clients ``server-shutdown``.

Nothing secret is ever logged: only names, indices, counts, sizes and reason codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt

from secagg.encoding import DecodedResult, Encoder
from secagg.encoding.context import context_digest
from secagg.encoding.round_spec import RAW_SPEC_DIGEST, RoundSpec, spec_digest
from secagg.errors import ConfigError, RoundAbortedError, UnsafeParametersError
from secagg.graph import evaluate_parameters
from secagg.identity.registry import IdentityRegistryFile
from secagg.protocol.config import DIGEST_BYTES, Mode, RoundConfig
from secagg.protocol.messages import (
    SERVER_SENDER,
    Abort,
    ClientMessage,
    MaskedInput,
    RoundComplete,
    ServerMessage,
)
from secagg.protocol.policy import ClientPolicy
from secagg.protocol.server.session import ServerSession
from secagg.protocol.server.state import ServerPhase
from secagg.reasons import AbortReason, DropReason, RejectReason
from secagg.transport import secagg_pb2 as pb
from secagg.transport.address import Address, bind_problem, parse_address
from secagg.transport.codec import (
    DEFAULT_CHUNK_BYTES,
    DEFAULT_MAX_MESSAGE_BYTES,
    FrameError,
    VectorAssembler,
    client_message,
    parse_client_frame,
    server_frame,
)
from secagg.transport.health import add_health, set_serving
from secagg.transport.hello import challenge_frame
from secagg.transport.lobby import ClientConn, Lobby, reject_frame
from secagg.transport.metrics import ServerMetrics
from secagg.transport.service import METHOD, RPC, SERVICE
from secagg.transport.taskwire import task_frames

__all__ = ["DEFAULT_MAX_DIM", "METHOD", "AggregationServer", "RoundReport", "ServerOptions"]

_PHASE_NAMES = {
    ServerPhase.COLLECT_KEYS: "advertise-keys",
    ServerPhase.COLLECT_REVEALS: "reveal-nonce",
    ServerPhase.COLLECT_SHARES: "share-keys",
    ServerPhase.COLLECT_MASKED: "masked-input",
    ServerPhase.COLLECT_SIGNATURES: "consistency-check",
    ServerPhase.COLLECT_UNMASK: "unmasking",
}
_HELLO_TIMEOUT = 10.0
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


@dataclass
class RoundReport:
    """What happened in one aggregation round (names are the clients' self-declared names).

    ``status`` is ``complete``, ``aborted`` or ``interrupted`` (the server was stopped);
    ``rejected`` names joiners that were turned away or lost their slot before round 0 ended.
    """

    round: int
    status: str = "aborted"
    abort_reason: str | None = None
    abort_detail: str = ""
    round_id: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    included: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    dropped_in: dict[str, dict[str, str]] = field(default_factory=dict)
    late: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    server_compute: dict[str, float] = field(default_factory=dict)
    bytes_received: dict[str, int] = field(default_factory=dict)
    bytes_sent: dict[str, int] = field(default_factory=dict)
    total: npt.NDArray[np.unsignedinteger] | None = None
    task_digest: str | None = None  # hex context digest of the task handed out, if any
    spec: bytes = b""  # the round spec announced to the clients (empty: raw integers)
    spec_digest: bytes = RAW_SPEC_DIGEST  # its digest, as bound into the round config

    def decode(self, encoder: Encoder) -> DecodedResult:
        """The round's sum decoded with ``encoder``, which must have the round's spec.

        Raises :class:`SpecMismatchError` for an encoder with another spec and
        :class:`ConfigError` when the round produced no sum.
        """
        if self.total is None or not self.included:
            raise ConfigError(f"round {self.round} produced no sum (status {self.status})")
        return encoder.decode(self.total, len(self.included), spec_digest=self.spec_digest)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (without the sum itself)."""
        return {
            "round": self.round,
            "status": self.status,
            "abort_reason": self.abort_reason,
            "abort_detail": self.abort_detail,
            "round_id": self.round_id,
            "task_digest": self.task_digest,
            **self.config,
            "spec": json.loads(self.spec) if self.spec else None,
            "spec_digest": self.spec_digest.hex(),
            "included": self.included,
            "dropped": self.dropped,
            "dropped_in": self.dropped_in,
            "late": self.late,
            "rejected": self.rejected,
            "timings": self.timings,
            "server_compute": self.server_compute,
            "bytes": {
                phase: {
                    "received": self.bytes_received.get(phase, 0),
                    "sent": self.bytes_sent.get(phase, 0),
                }
                for phase in dict.fromkeys([*self.bytes_received, *self.bytes_sent])
            },
        }


@dataclass
class _Slots:
    """One round's client slots: who holds each index, and when it was welcomed.

    Until a slot's client has advertised its keys (round 0) nothing is bound to the index
    except the Welcome; a holder that goes idle for ``keys_timeout`` or vanishes gives its
    slot to the next waiting client, so silent joiners cannot hold a round hostage.
    ``vacant`` slots lost their holder; they are dropped when round 0 ends unless refilled.
    """

    number: int
    config: RoundConfig
    holders: dict[int, ClientConn]
    welcomed_at: dict[int, float] = field(default_factory=dict)
    vacant: dict[int, tuple[DropReason, str]] = field(default_factory=dict)
    refill: bool = False
    task: bytes | None = None  # what every client of the round is handed after Welcome
    task_frames: list[bytes] | None = None

    def names(self) -> dict[int, str]:
        return {i: c.name for i, c in self.holders.items()}


_Event = tuple[str, ClientConn, Any, Callable[[], None] | None]


class AggregationServer:
    """Runs ``options.rounds`` aggregation rounds for clients connecting to ``address``.

    ``address`` is ``HOST[:PORT]`` (see :func:`~secagg.transport.address.parse_address`).
    ``log`` gets plain progress lines; ``status`` (optional) gets a one-line live status; both
    may quote client-chosen names and details, so a console must print them as plain text.
    ``credentials`` are gRPC server credentials; None means plaintext (loopback testing only).
    ``on_round`` is called with each round's report as soon as the round ended (completed,
    aborted or interrupted), before the next round starts (a coroutine is awaited); it may
    call :meth:`set_task` for the next round or :meth:`finish` to make it the last. ``metrics`` (see
    :mod:`secagg.transport.metrics`) counts rounds, clients and bytes for Prometheus.
    """

    def __init__(
        self,
        options: ServerOptions,
        address: str | Address,
        *,
        credentials: grpc.ServerCredentials | None = None,
        log: Callable[[str], None] | None = None,
        status: Callable[[str], None] | None = None,
        on_round: Callable[[RoundReport], Awaitable[None] | None] | None = None,
        metrics: ServerMetrics | None = None,
    ) -> None:
        self.options = options
        self.bind_address = address if isinstance(address, Address) else parse_address(address)
        self.address = self.bind_address.target
        self.credentials = credentials
        self.log = log or (lambda _line: None)
        self._status = status or (lambda _line: None)
        self._on_round = on_round
        self._server: grpc.aio.Server | None = None
        self.metrics = metrics
        self._task: bytes | None = None
        if metrics is not None:
            metrics.watch_lobby(lambda: self._lobby.live())
        self._finishing = False
        self._health: Any = None
        self._lobby = Lobby(
            dim=options.dim,
            capacity=options.max_waiting or 4 * options.clients + 16,
            max_message_bytes=options.max_message_bytes,
            registry=options.registry,
            mode=options.mode,
            log=self.log,
        )
        self._events: asyncio.Queue[_Event] = asyncio.Queue()
        self._round_no = 0
        self._phase_name = "join"
        self._bytes_in: dict[str, int] = {}
        self._assembly: asyncio.Semaphore | None = None
        self._upload_idle = min(options.phase_timeout, options.upload_idle_timeout)
        self._keys_idle = min(options.phase_timeout, options.keys_timeout)
        self._slots: _Slots | None = None
        self._round_task: asyncio.Task[None] | None = None
        self._shutdown: str | None = None
        self.port = 0
        self.reports: list[RoundReport] = []

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> int:
        """Bind and start serving; returns the bound port.

        Raises :class:`ConfigError` naming the problem when the address cannot be bound.
        """
        limit = self.options.max_message_bytes
        server = grpc.aio.server(
            options=[
                # gRPC's own cap is twice the limit: frames in between reach parse_client_frame
                # and drop their sender as oversized-message; beyond it gRPC ends the stream.
                ("grpc.max_receive_message_length", 2 * limit),
                ("grpc.max_send_message_length", max(limit, 64 * 1024 * 1024)),
                ("grpc.so_reuseport", 0),
                ("grpc.http2.bdp_probe", 0),
            ]
        )
        handler = grpc.stream_stream_rpc_method_handler(self._participate)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {RPC: handler}),)
        )
        self._health = add_health(server)
        problem = bind_problem(self.bind_address)
        if problem is not None:  # say it in one line, before gRPC logs a bind failure
            raise ConfigError(f"cannot listen on {self.address}: {problem}")
        try:
            if self.credentials is None:
                port = server.add_insecure_port(self.address)
            else:
                port = server.add_secure_port(self.address, self.credentials)
        except RuntimeError:
            port = 0  # gRPC's "Failed to bind": say why below, in one line
        if port == 0:
            problem = bind_problem(self.bind_address) or "gRPC could not bind it"
            raise ConfigError(f"cannot listen on {self.address}: {problem}")
        await server.start()
        self._server = server
        self.port = int(port)
        set_serving(self._health, serving=not self._finishing and self._shutdown is None)
        return self.port

    def set_task(self, task: bytes | None) -> None:
        """Hand ``task`` (bytes; see :mod:`secagg.encoding.task`) to every client of the next round.

        Its :func:`~secagg.context_digest` becomes the round config's ``context_digest`` (it
        replaces ``options.context_digest``); each client checks the bytes it received against
        it. None: the rounds from now on have no task.
        """
        if task is not None and len(task) > self.options.max_task_bytes:
            raise ConfigError(
                f"the task has {len(task)} bytes; max_task_bytes is {self.options.max_task_bytes}"
            )
        self._task = None if task is None else bytes(task)

    def expect(self, clients: int) -> None:
        """Wait for ``clients`` joiners from the next round on (e.g. after losing some for good).

        Capped below by ``min_clients``' floor of 2; raises :class:`ConfigError` like
        :class:`ServerOptions` for an impossible count.
        """
        minimum = self.options.min_clients
        self.options = dataclasses.replace(
            self.options,
            clients=clients,
            min_clients=None if minimum is None else min(minimum, clients),
        )

    def finish(self) -> None:
        """Run no round after the current one (or the next, between rounds)."""
        self._finishing = True
        set_serving(self._health, serving=False)

    @property
    def round_number(self) -> int:
        """The number of the round running or last run (0 before the first)."""
        return self._round_no

    @property
    def round_id(self) -> str | None:
        """The hex round id of the round running now (None between rounds)."""
        slots = self._slots
        return None if slots is None else slots.config.round_id.hex()

    def waiting(self) -> int:
        """How many clients wait in the lobby for a round (or for a slot to free up)."""
        return self._lobby.live()

    def request_shutdown(self, detail: str) -> None:
        """Stop at once (e.g. on SIGTERM): the running round ends as interrupted, its clients
        and everyone waiting are told ``server-shutdown`` with ``detail``, no new round starts.
        :meth:`run` still returns (and ``on_round`` still gets) the interrupted round's report.
        """
        if self._shutdown is None:
            self._shutdown = detail
        self._lobby.accepting = False
        set_serving(self._health, serving=False)
        if self._round_task is not None:
            self._round_task.cancel()

    async def stop(self, grace: float = 1.0) -> None:
        """Reject everyone still waiting and stop serving."""
        self._lobby.accepting = False
        set_serving(self._health, serving=False)
        if self._shutdown is not None:
            self._lobby.refuse_all(AbortReason.SERVER_SHUTDOWN.value, self._shutdown)
        else:
            self._lobby.refuse_all(RejectReason.NO_ROUND.value, "the server ran all its rounds")
        if self._server is not None:
            await self._server.stop(grace)

    async def run(self) -> list[RoundReport]:
        """Run all rounds (the server must be started); returns one report per round."""
        try:
            for number in range(1, self.options.rounds + 1):
                if self._shutdown is not None or self._finishing:
                    break
                report = RoundReport(round=number)
                task = asyncio.create_task(self._run_round(number, report))
                self._round_task = task
                try:
                    await asyncio.wait([task])
                except asyncio.CancelledError:
                    task.cancel()
                    raise
                finally:
                    self._round_task = None
                if task.cancelled():
                    self._mark_interrupted(report)
                else:
                    task.result()  # a bug in the round surfaces here
                self.reports.append(report)
                if self.metrics is not None:
                    self.metrics.round_ended(report)
                if self._on_round is not None:
                    called = self._on_round(report)
                    if inspect.isawaitable(called):
                        await called  # e.g. computing the next round's task
        finally:
            await self.stop()
        return self.reports

    def _mark_interrupted(self, report: RoundReport) -> None:
        if report.status == "interrupted":
            return
        report.status = "interrupted"
        report.total = None
        report.abort_reason = AbortReason.SERVER_SHUTDOWN.value
        report.abort_detail = f"{self._shutdown or 'stopped'} during {self._phase_name}"

    # -- streams ----------------------------------------------------------------------------

    async def _participate(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        conn = ClientConn(context.peer())
        yield challenge_frame(conn.nonce)
        it = requests.__aiter__()
        try:
            first = await asyncio.wait_for(it.__anext__(), _HELLO_TIMEOUT)
        except (TimeoutError, StopAsyncIteration):
            return
        except Exception:
            return
        if self._shutdown is not None:
            yield reject_frame(AbortReason.SERVER_SHUTDOWN.value, self._shutdown)
            return
        refusal = self._lobby.admit(conn, first)
        if self.metrics is not None:
            self.metrics.hello(refusal)
        if refusal is not None:
            yield refusal
            return
        slots = self._slots
        if slots is not None and slots.refill and self._phase_name == "advertise-keys":
            self._events.put_nowait(("joined", conn, None, None))  # may fill an idle slot
        reader = asyncio.create_task(self._read(conn, it))
        try:
            while True:
                data = await conn.outq.get()
                if data is None:
                    break
                yield data
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            self._gone(conn, "stream ended")
            conn.closed = True

    async def _read(self, conn: ClientConn, it: AsyncIterator[bytes]) -> None:
        """Parse a client's frames into driver events until the stream ends or misbehaves.

        Nothing large outlives its frame here: each frame is handled in :meth:`_on_frame`, and
        an assembled vector leaves with its event (the driver drops it once it is summed).
        """
        upload = _Upload()
        try:
            while True:
                if upload.holding:
                    # A slot in the assembly semaphore is scarce: an uploader that stalls
                    # mid-vector loses it (and its place in the round) instead of blocking others.
                    try:
                        data = await asyncio.wait_for(anext(it), self._upload_idle)
                    except TimeoutError:
                        raise FrameError(
                            DropReason.NO_RESPONSE,
                            f"no chunk for {self._upload_idle:.1f}s "
                            "in the middle of a masked input",
                        ) from None
                else:
                    data = await anext(it)
                await self._on_frame(conn, data, upload)
                del data
        except StopAsyncIteration:
            self._report(conn, "gone", "the client closed its stream")
        except FrameError as exc:
            self._report(conn, "bad", exc)
        except asyncio.CancelledError:
            raise
        except grpc.aio.AioRpcError as exc:
            self._report(conn, "gone", f"stream failed: {exc.code().name}")
        except Exception as exc:  # a broken stream is the client's loss, never the server's
            self._report(conn, "gone", f"stream failed: {type(exc).__name__}")
        finally:
            upload.release()

    async def _on_frame(self, conn: ClientConn, data: bytes, upload: _Upload) -> None:
        phase = self._phase_name
        self._bytes_in[phase] = self._bytes_in.get(phase, 0) + len(data)
        frame = parse_client_frame(data, self.options.max_message_bytes)
        kind = frame.WhichOneof("body")
        if conn.index is None or conn.config is None:
            raise FrameError(DropReason.WRONG_ROUND, f"{kind} frame before the round began")
        if kind == "masked_input":
            chunk = frame.masked_input
            if upload.assembler is None:
                config = conn.config
                upload.assembler = VectorAssembler(
                    config.session_id, conn.index, config.dim, config.bits
                )
                upload.assembler.check_first(chunk)
                upload.sem = self._assembly
                if upload.sem is not None:
                    await upload.sem.acquire()
                    upload.holding = True
            msg = upload.assembler.add(chunk)
            if msg is not None:
                release = upload.sem.release if upload.holding and upload.sem else None
                upload.holding = False
                self._events.put_nowait(("msg", conn, msg, release))
            return
        if upload.assembler is not None and upload.assembler.filled < upload.assembler.dim:
            raise FrameError(DropReason.MALFORMED, f"{kind} frame inside a masked input")
        self._events.put_nowait(("msg", conn, client_message(frame), None))

    def _report(self, conn: ClientConn, kind: str, payload: Any) -> None:
        """Hand a stream's end or misbehaviour to the driver; a client still waiting to join
        is simply taken out of the lobby (its stream ends with a Reject when it misbehaved)."""
        if conn.index is None:
            self._gone(conn, str(payload))
            if isinstance(payload, FrameError):
                conn.send(reject_frame(payload.reason.value, payload.detail))
            conn.close()
            return
        self._events.put_nowait((kind, conn, payload, None))

    def _gone(self, conn: ClientConn, detail: str) -> None:
        self._lobby.remove(conn)
        if conn.index is not None and not conn.closed:
            self._events.put_nowait(("gone", conn, detail, None))

    # -- rounds -----------------------------------------------------------------------------

    async def _gather(self) -> list[ClientConn]:
        """Wait for ``clients`` joiners (or ``min_clients`` at the join deadline) and take them;
        returns [] (leaving the lobby as it is) when too few joined."""
        opts = self.options
        loop = asyncio.get_running_loop()
        deadline = loop.time() + opts.join_timeout
        minimum = opts.min_clients or opts.clients
        while self._lobby.live() < opts.clients:
            self._status(
                f"round {self._round_no}: waiting for clients {self._lobby.live()}/{opts.clients}"
            )
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._lobby.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lobby.changed.wait(), remaining)
        if self._lobby.live() < minimum:
            return []
        return self._lobby.take(opts.clients)

    async def _run_round(self, number: int, report: RoundReport) -> None:
        opts = self.options
        self._round_no = number
        self._phase_name = "join"
        self._bytes_in = {}
        loop = asyncio.get_running_loop()
        started = loop.time()
        members = await self._gather()
        report.timings["join"] = loop.time() - started
        if self.metrics is not None:
            self.metrics.round_started()
        minimum = max(2, opts.min_clients or opts.clients)
        if not members:
            joined = self._lobby.live()
            report.abort_reason = AbortReason.TOO_FEW_CLIENTS.value
            report.abort_detail = f"{joined} clients joined; {minimum} needed"
            self.log(f"round {number}: aborted ({report.abort_reason}): {report.abort_detail}")
            if number == opts.rounds:  # no later round for them: tell them why, now
                self._lobby.refuse_all(report.abort_reason, report.abort_detail)
            return
        try:
            n = len(members)
            degree = opts.degree if opts.degree is None else min(opts.degree, n - 1)
            config = RoundConfig.create(
                n,
                opts.dim,
                opts.bits,
                degree=degree,
                threshold=opts.threshold,
                mode=opts.mode,
                dropout_rate=opts.dropout_rate,
                corrupt_rate=opts.corrupt_rate,
                allow_unsafe=opts.allow_unsafe,
                context_digest=(
                    context_digest(task)
                    if (task := self._task) is not None
                    else opts.context_digest or bytes(DIGEST_BYTES)
                ),
                spec_digest=spec_digest(opts.spec),
            )
            registry = None
            if opts.registry is not None:
                assignment = {conn.name: i for i, conn in enumerate(members, 1)}
                registry = opts.registry.with_indices(assignment)
            session = ServerSession(config, registry=registry)
        except ConfigError as exc:
            report.abort_reason = AbortReason.TOO_FEW_CLIENTS.value
            report.abort_detail = f"cannot configure the round: {exc}"
            self.log(f"round {number}: aborted ({report.abort_reason}): {report.abort_detail}")
            for conn in members:
                conn.refuse(report.abort_reason, report.abort_detail)
                self._lobby.release(conn)
            return
        # Slots of idle joiners are refilled from the lobby in semi-honest mode only: in
        # malicious mode Welcome's roster binds each index to a registered name.
        slots = _Slots(
            number,
            config,
            dict(enumerate(members, 1)),
            refill=opts.mode != "malicious",
            task=task,
        )
        if task is not None:
            report.task_digest = config.context_digest.hex()
        self._slots = slots
        try:
            await self._drive(slots, session, report)
        except asyncio.CancelledError:
            self._interrupt_round(slots, session, report)
            raise
        finally:
            self._slots = None
            for conn in slots.holders.values():
                conn.close()
                self._lobby.release(conn)

    def _interrupt_round(self, slots: _Slots, session: ServerSession, report: RoundReport) -> None:
        """The server is shutting down mid-round: record it and tell the round's clients."""
        self._mark_interrupted(report)
        names = slots.names()
        for i, (round_, reason, detail) in session.dropped().items():
            report.dropped_in[names[i]] = {
                "round": round_.label,
                "reason": str(reason),
                "detail": detail,
            }
        report.dropped = {names[i]: str(r) for i, (_r, r, _d) in sorted(session.dropped().items())}
        for conn in slots.holders.values():
            self._send(
                conn,
                Abort(
                    slots.config.session_id,
                    SERVER_SENDER,
                    AbortReason.SERVER_SHUTDOWN.value,
                    report.abort_detail,
                ),
            )
        self.log(f"round {slots.number}: interrupted: {report.abort_detail}")

    def _welcome(self, slots: _Slots, index: int, conn: ClientConn) -> int:
        """Give ``conn`` slot ``index`` of the round; returns the bytes sent."""
        opts = self.options
        config = slots.config
        conn.index = index
        conn.round_no = slots.number
        conn.config = config
        slots.holders[index] = conn
        slots.welcomed_at[index] = asyncio.get_running_loop().time()
        roster = slots.names() if config.mode == "malicious" else {}
        welcome = pb.ServerFrame(
            welcome=pb.Welcome(
                index=index,
                config=config.encode(),
                round=slots.number,
                phase_timeout=opts.phase_timeout,
                max_message_bytes=opts.max_message_bytes,
                chunk_words=opts.chunk_bytes // (4 if config.bits <= 32 else 8),
                roster=roster,
                spec=opts.spec,
                task_bytes=0 if slots.task is None else len(slots.task),
            )
        )
        sent = conn.send(welcome.SerializeToString())
        for frame in self._task_frames(slots, conn):
            sent += conn.send(frame)
        return sent

    def _task_frames(self, slots: _Slots, conn: ClientConn) -> list[bytes]:
        """The serialized TaskChunk frames of the round's task (the same objects for every
        client: queued frames share memory, so the task is held once per round)."""
        del conn  # every client gets the same task
        if slots.task is None:
            return []
        if slots.task_frames is None:
            slots.task_frames = task_frames(
                slots.config.session_id, slots.task, self.options.chunk_bytes
            )
        return slots.task_frames

    def _refill(self, slots: _Slots, session: ServerSession, report: RoundReport) -> None:
        """Give slots whose holder vanished or idled past ``keys_timeout`` in round 0 to
        waiting clients; the idle holder is told why and leaves."""
        now = asyncio.get_running_loop().time()
        for index in sorted(session.expected()):
            vacant = index in slots.vacant
            if not vacant and now - slots.welcomed_at[index] < self._keys_idle:
                continue
            newcomer = self._lobby.pop()
            if newcomer is None:
                return
            old = slots.holders[index]
            if vacant:
                reason, detail = slots.vacant.pop(index)
            else:
                reason = DropReason.NO_RESPONSE
                detail = (
                    f"no keys advertised {self._keys_idle:.1f}s after Welcome; "
                    "the slot went to a waiting client"
                )
                self._send(old, Abort(slots.config.session_id, SERVER_SENDER, reason.value, detail))
            old.index = None  # anything it still sends is ignored
            old.close()
            self._lobby.release(old)
            report.rejected[old.name] = reason.value
            self.log(
                f"round {slots.number}: slot {index} of {old.name!r} ({reason.value}) "
                f"goes to {newcomer.name!r}"
            )
            report.bytes_sent["join"] = report.bytes_sent.get("join", 0) + self._welcome(
                slots, index, newcomer
            )

    def _next_idle(self, slots: _Slots, session: ServerSession) -> float | None:
        """When the next round-0 slot may be refilled (None: nothing to refill for)."""
        if not slots.refill or not self._lobby.live():
            return None
        times = [
            slots.welcomed_at[i] + self._keys_idle
            for i in session.expected()
            if i not in slots.vacant
        ]
        return min(times) if times else None

    async def _drive(self, slots: _Slots, session: ServerSession, report: RoundReport) -> None:
        opts = self.options
        number = slots.number
        config = slots.config
        loop = asyncio.get_running_loop()
        word_bytes = config.dim * (4 if config.bits <= 32 else 8)
        self._assembly = asyncio.Semaphore(max(2, opts.assembly_budget_bytes // word_bytes))
        report.round_id = config.round_id.hex()
        report.spec, report.spec_digest = opts.spec, config.spec_digest
        report.config = {
            "clients": config.num_clients,
            "threshold": config.threshold,
            "degree": config.degree,
            "bits": config.bits,
            "dim": config.dim,
            "mode": config.mode,
        }
        # Explicit --degree/--threshold: the bounds of what was chosen, under the same model.
        found = config.parameters or evaluate_parameters(
            config.num_clients,
            config.degree,
            config.threshold,
            config.mode,
            dropout_rate=opts.dropout_rate,
            corrupt_rate=opts.corrupt_rate,
        )
        if found is not None:
            report.config["privacy_failure_log2"] = _finite(found.privacy_failure_log2)
            report.config["abort_probability"] = found.abort_probability
            report.config["meets_correctness_target"] = found.meets_correctness
        if self.metrics is not None:
            self.metrics.running_sum(word_bytes)
        self.log(
            f"round {number}: {config.num_clients} clients, D={config.dim}, b={config.bits}, "
            f"k={config.degree}, t={config.threshold}, mode={config.mode}"
        )
        if found is not None:
            self.log(f"round {number}: parameters {found.describe()}")
        try:
            ClientPolicy().check(config)
        except UnsafeParametersError as exc:
            # Explicit --degree/--threshold below what a default client accepts: say so now,
            # not after every client has left with unsafe-parameters.
            self.log(f"round {number}: warning: clients with the default floor will refuse: {exc}")
        sent = 0
        for index, conn in list(slots.holders.items()):
            sent += self._welcome(slots, index, conn)
        report.bytes_sent["join"] = sent
        report.bytes_received["join"] = self._bytes_in.get("join", 0)
        logged: set[int] = set()
        while session.phase not in (ServerPhase.DONE, ServerPhase.ABORTED):
            phase = _PHASE_NAMES[session.phase]
            self._phase_name = phase
            keys_phase = session.phase is ServerPhase.COLLECT_KEYS
            phase_start = loop.time()
            deadline = phase_start + opts.phase_timeout
            total = len(session.active())
            while True:
                if keys_phase and slots.refill and self._lobby.live():
                    self._refill(slots, session, report)
                waiting = session.expected()
                self._status(
                    f"round {number}: {phase} {total - len(waiting)}/{total} "
                    f"(dropped {len(session.dropped())})"
                )
                if not waiting or (
                    keys_phase and waiting <= slots.vacant.keys() and not self._lobby.live()
                ):
                    break  # everyone answered, or only vacant slots nobody waits to fill
                wake = deadline
                idle = self._next_idle(slots, session) if keys_phase else None
                if idle is not None:
                    wake = min(wake, idle)
                if deadline - loop.time() <= 0:
                    break
                try:
                    event = await asyncio.wait_for(self._events.get(), max(0.0, wake - loop.time()))
                except TimeoutError:
                    continue  # the deadline (checked above) or an idle slot to refill
                self._handle(slots, session, event)
                # Take whatever else is already queued before re-checking.
                while not self._events.empty():
                    self._handle(slots, session, self._events.get_nowait())
            if keys_phase:
                for index, (reason, detail) in sorted(slots.vacant.items()):
                    session.drop(index, reason, detail)
                slots.vacant.clear()
                slots.refill = False
            compute_start = time.perf_counter()
            outbox = await asyncio.to_thread(session.advance)
            report.server_compute[phase] = time.perf_counter() - compute_start
            sent = 0
            for index, msg in outbox.items():
                sent += self._send(slots.holders[index], msg)
            report.bytes_sent[phase] = sent
            report.bytes_received[phase] = self._bytes_in.get(phase, 0)
            report.timings[phase] = loop.time() - phase_start
            self.log(
                f"round {number}: {phase} done in {report.timings[phase]:.2f}s; "
                f"{len(session.active())} active, {len(session.dropped())} dropped"
            )
            self._log_drops(slots, session, logged)
        self._phase_name = "done"
        self._assembly = None
        # Drain events queued for this round so they cannot leak into the next one.
        while not self._events.empty():
            _kind, _conn, _payload, release = self._events.get_nowait()
            if release is not None:
                release()
        self._finish(slots, session, report)

    def _log_drops(self, slots: _Slots, session: ServerSession, logged: set[int]) -> None:
        """One line per client dropped since the last call: its name, round, reason, detail."""
        for i, (round_, reason, detail) in sorted(session.dropped().items()):
            if i not in logged:
                logged.add(i)
                self.log(
                    f"round {slots.number}: dropped {slots.holders[i].name!r} in {round_.label} "
                    f"({reason}){': ' + detail if detail else ''}"
                )

    def _finish(self, slots: _Slots, session: ServerSession, report: RoundReport) -> None:
        number = slots.number
        names = slots.names()
        for i, (round_, reason, detail) in session.dropped().items():
            report.dropped_in[names[i]] = {
                "round": round_.label,
                "reason": str(reason),
                "detail": detail,
            }
        try:
            result = session.result
        except RoundAbortedError as exc:
            report.abort_reason = exc.reason
            report.abort_detail = exc.detail
            report.dropped = {names[i]: str(r) for i, (_, r, _d) in session.dropped().items()}
            report.dropped = dict(sorted(report.dropped.items()))
            self.log(f"round {number}: aborted ({exc.reason}): {exc.detail}")
            return
        report.status = "complete"
        report.included = sorted(names[i] for i in result.included)
        report.dropped = dict(
            sorted((names[i], str(reason)) for i, (_, reason, _d) in result.dropped.items())
        )
        report.late = sorted(names[i] for i in result.late)
        report.total = result.total
        dropped = ", ".join(f"{name!r} ({reason})" for name, reason in report.dropped.items())
        self.log(
            f"round {number}: complete; {len(report.included)} included, "
            f"{len(report.dropped)} dropped{': ' + dropped if dropped else ''}"
        )

    def _handle(self, slots: _Slots, session: ServerSession, event: _Event) -> None:
        kind, conn, payload, release = event
        try:
            if kind == "joined" or conn.round_no != slots.number or conn.index is None:
                return  # "joined" only wakes the driver to refill an idle slot
            index = conn.index
            if kind == "msg":
                msg: ClientMessage = payload
                if getattr(msg, "sender", None) != index:
                    self._drop(
                        slots, session, conn, DropReason.MALFORMED,
                        "sender is not this stream's client",
                    )  # fmt: skip
                    return
                session.receive(msg)
                if isinstance(msg, MaskedInput):
                    del msg  # the assembled vector is in the running sum now
            elif kind == "bad":
                exc: FrameError = payload
                self._drop(slots, session, conn, exc.reason, exc.detail)
            elif kind == "gone":
                if self._refillable(slots, session, index):
                    slots.vacant[index] = (DropReason.TRANSPORT, str(payload))
                else:
                    session.drop(index, DropReason.TRANSPORT, str(payload))
                conn.close()
        finally:
            if release is not None:
                release()

    def _refillable(self, slots: _Slots, session: ServerSession, index: int) -> bool:
        """Whether slot ``index`` may still go to another client (round 0, no keys yet)."""
        return (
            slots.refill
            and session.phase is ServerPhase.COLLECT_KEYS
            and index in session.expected()
        )

    def _drop(
        self,
        slots: _Slots,
        session: ServerSession,
        conn: ClientConn,
        reason: DropReason,
        detail: str,
    ) -> None:
        assert conn.index is not None
        assert conn.config is not None
        self.log(f"round {conn.round_no}: dropping {conn.name!r} ({reason.value}): {detail}")
        if self._refillable(slots, session, conn.index):
            slots.vacant[conn.index] = (reason, detail)
        else:
            session.drop(conn.index, reason, detail)
        self._send(conn, Abort(conn.config.session_id, SERVER_SENDER, reason.value, detail))

    def _send(self, conn: ClientConn, msg: ServerMessage) -> int:
        size = conn.send(server_frame(msg).SerializeToString())
        if isinstance(msg, Abort | RoundComplete):
            conn.close()
        return size


def _finite(log2: float) -> float | None:
    """JSON has no -inf: an impossible event is reported as null."""
    return None if log2 == float("-inf") else log2


class _Upload:
    """A stream's masked-input upload: its assembler and its slot in the assembly semaphore."""

    def __init__(self) -> None:
        self.assembler: VectorAssembler | None = None
        self.sem: asyncio.Semaphore | None = None
        self.holding = False

    def release(self) -> None:
        if self.holding and self.sem is not None:
            self.sem.release()
        self.holding = False
