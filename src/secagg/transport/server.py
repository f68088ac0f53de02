"""The aggregation server on grpc.aio: registration, per-round deadlines, chunked inputs.

Each client opens one bidirectional ``Participate`` stream per aggregation round. The stream
authenticates the client's index: a message naming another sender drops the client. Every
stream has a reader task that parses and validates frames and puts events on one queue; a
single driver task owns the :class:`~secagg.protocol.server.session.ServerSession` (no locks),
waits for each phase's messages until all expected ones arrived or the phase deadline passed,
then calls ``advance()`` and sends what it returns. Masked inputs arrive in chunks and are
assembled into one array per client; a semaphore bounds how many are assembled at once so
that memory stays O(D) whatever the number of clients.

Nothing secret is ever logged: only names, indices, counts, sizes and reason codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt

from secagg.encoding import DecodedResult, Encoder
from secagg.errors import ConfigError, RoundAbortedError
from secagg.identity_registry import IdentityRegistryFile
from secagg.protocol.config import DIGEST_BYTES, PROTOCOL_VERSION, Mode, RoundConfig
from secagg.protocol.messages import (
    SERVER_SENDER,
    Abort,
    ClientMessage,
    MaskedInput,
    RoundComplete,
    ServerMessage,
)
from secagg.protocol.server.session import ServerSession
from secagg.protocol.server.state import ServerPhase
from secagg.reasons import AbortReason, DropReason
from secagg.round_spec import RAW_SPEC_DIGEST, RoundSpec, spec_digest
from secagg.transport import secagg_pb2 as pb
from secagg.transport.codec import (
    DEFAULT_CHUNK_BYTES,
    DEFAULT_MAX_MESSAGE_BYTES,
    MAX_NAME_LENGTH,
    FrameError,
    VectorAssembler,
    client_message,
    parse_client_frame,
    server_frame,
)
from secagg.transport.hello import challenge_frame, new_challenge, verify_hello

__all__ = ["METHOD", "AggregationServer", "RoundReport", "ServerOptions"]

METHOD = "/secagg.v1.Aggregation/Participate"
_PHASE_NAMES = {
    ServerPhase.COLLECT_KEYS: "advertise-keys",
    ServerPhase.COLLECT_SHARES: "share-keys",
    ServerPhase.COLLECT_MASKED: "masked-input",
    ServerPhase.COLLECT_SIGNATURES: "consistency-check",
    ServerPhase.COLLECT_UNMASK: "unmasking",
}
_HELLO_TIMEOUT = 10.0


@dataclass(frozen=True)
class ServerOptions:
    """What a server runs: how many clients, which parameters, which limits and deadlines."""

    clients: int
    bits: int = 32
    min_clients: int | None = None  # start without waiting for all once the join deadline passed
    dim: int | None = None  # None: take D from the first client that joins
    degree: int | None = None
    threshold: int | None = None
    mode: Mode = "semi-honest"
    dropout_rate: float = 0.05
    corrupt_rate: float = 0.05
    allow_unsafe: bool = False
    rounds: int = 1
    join_timeout: float = 60.0
    phase_timeout: float = 30.0
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    max_dim: int = 2**31
    assembly_budget_bytes: int = 128 * 1024 * 1024  # vectors being assembled at once (min 2)
    upload_idle_timeout: float = 10.0  # longest pause between two chunks of one masked input
    registry: IdentityRegistryFile | None = None  # malicious mode: who may join, by name
    # The digest of what the clients were handed for the round (secagg.context), announced in
    # the RoundConfig; clients that computed another digest abort with context-mismatch.
    context_digest: bytes | None = None
    # Canonical round spec (secagg.round_spec) announced in Welcome.spec; empty: raw integers.
    spec: bytes = b""

    def __post_init__(self) -> None:
        if self.spec:
            _check_spec(self)
        if self.clients < 2:
            raise ConfigError(f"need at least 2 clients, got {self.clients}")
        if self.min_clients is not None and not 2 <= self.min_clients <= self.clients:
            raise ConfigError(f"min_clients must be in 2..{self.clients}")
        if self.rounds < 1:
            raise ConfigError("rounds must be at least 1")
        if self.max_message_bytes < 64 * 1024:
            raise ConfigError("max_message_bytes must be at least 64 KiB")
        if not 0 < self.chunk_bytes <= self.max_message_bytes - 1024:
            raise ConfigError("chunk_bytes must be below max_message_bytes by at least 1 KiB")
        if self.join_timeout <= 0 or self.phase_timeout <= 0:
            raise ConfigError("timeouts must be positive")
        if self.context_digest is not None and len(self.context_digest) != DIGEST_BYTES:
            raise ConfigError(f"context_digest must be {DIGEST_BYTES} bytes (secagg.context)")
        if self.mode == "malicious" and self.registry is None:
            raise ConfigError("malicious mode needs the clients' identity registry")


def _check_spec(opts: ServerOptions) -> None:
    """The spec must parse and agree with the options it also fixes (bits, D, clients)."""
    fields = RoundSpec.decode(opts.spec).fields
    bits, dim, n_clients = fields.get("bits"), fields.get("dim"), fields.get("n_clients")
    if bits is not None and bits != opts.bits:
        raise ConfigError(f"the spec's vectors have b={bits}; the server was given b={opts.bits}")
    if dim is not None and opts.dim is not None and dim != opts.dim:
        raise ConfigError(f"the spec's vectors have D={dim}; the server was given D={opts.dim}")
    if isinstance(dim, int) and opts.dim is None:
        object.__setattr__(opts, "dim", dim)  # the spec fixes D: no client's Hello decides it
    if isinstance(n_clients, int) and n_clients < opts.clients:
        raise ConfigError(
            f"the spec was made for at most {n_clients} clients (its bit width and decoding "
            f"depend on it); the server expects {opts.clients}"
        )


@dataclass
class RoundReport:
    """What happened in one aggregation round (names are the clients' self-declared names)."""

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


class _Conn:
    """One client stream."""

    def __init__(self, peer: str) -> None:
        self.peer = peer
        self.name = ""
        self.dim = 0
        self.index: int | None = None
        self.round_no = 0
        self.outq: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.closed = False
        self.config: RoundConfig | None = None
        self.nonce = new_challenge()  # this stream's Challenge, covered by a signed Hello

    def send(self, data: bytes) -> int:
        if self.closed:
            return 0
        self.outq.put_nowait(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.outq.put_nowait(None)


_Event = tuple[str, _Conn, Any, Callable[[], None] | None]


class AggregationServer:
    """Runs ``options.rounds`` aggregation rounds for clients connecting to ``address``.

    ``log`` gets plain progress lines; ``status`` (optional) gets a one-line live status.
    ``credentials`` are gRPC server credentials; None means plaintext (loopback testing only).
    """

    def __init__(
        self,
        options: ServerOptions,
        address: str,
        *,
        credentials: grpc.ServerCredentials | None = None,
        log: Callable[[str], None] | None = None,
        status: Callable[[str], None] | None = None,
    ) -> None:
        self.options = options
        self.address = address
        self.credentials = credentials
        self.log = log or (lambda _line: None)
        self._status = status or (lambda _line: None)
        self._server: grpc.aio.Server | None = None
        self._lobby: list[_Conn] = []
        self._lobby_changed = asyncio.Event()
        self._names: set[str] = set()  # names registered in the lobby or the current round
        self._events: asyncio.Queue[_Event] = asyncio.Queue()
        self._round_no = 0
        self._accepting = True
        self._phase_name = "join"
        self._bytes_in: dict[str, int] = {}
        self._assembly: asyncio.Semaphore | None = None
        self._upload_idle = min(options.phase_timeout, options.upload_idle_timeout)
        self.port = 0
        self.reports: list[RoundReport] = []

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> int:
        """Bind and start serving; returns the bound port."""
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
            (
                grpc.method_handlers_generic_handler(
                    "secagg.v1.Aggregation", {"Participate": handler}
                ),
            )
        )
        if self.credentials is None:
            port = server.add_insecure_port(self.address)
        else:
            port = server.add_secure_port(self.address, self.credentials)
        if port == 0:
            raise ConfigError(f"cannot listen on {self.address}")
        await server.start()
        self._server = server
        self.port = int(port)
        return self.port

    async def stop(self, grace: float = 1.0) -> None:
        """Reject everyone still waiting and stop serving."""
        self._accepting = False
        for conn in self._lobby:
            conn.send(_reject("no-round", "the server is shutting down"))
            conn.close()
        self._lobby.clear()
        if self._server is not None:
            await self._server.stop(grace)

    async def run(self) -> list[RoundReport]:
        """Run all rounds (the server must be started); returns one report per round."""
        try:
            for number in range(1, self.options.rounds + 1):
                self.reports.append(await self._run_round(number))
        finally:
            await self.stop()
        return self.reports

    # -- streams ----------------------------------------------------------------------------

    async def _participate(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        conn = _Conn(context.peer())
        yield challenge_frame(conn.nonce)
        it = requests.__aiter__()
        try:
            first = await asyncio.wait_for(it.__anext__(), _HELLO_TIMEOUT)
        except (TimeoutError, StopAsyncIteration):
            return
        except Exception:
            return
        refusal = self._register(conn, first)
        if refusal is not None:
            yield refusal
            return
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

    def _register(self, conn: _Conn, data: bytes) -> bytes | None:
        """Validate a Hello and put the client in the lobby; returns a Reject frame or None."""
        try:
            frame = parse_client_frame(data, self.options.max_message_bytes)
        except FrameError as exc:
            return _reject(exc.reason.value, exc.detail)
        if frame.WhichOneof("body") != "hello":
            return _reject(DropReason.MALFORMED.value, "the first frame must be Hello")
        hello = frame.hello
        name = hello.name
        if hello.protocol_version != PROTOCOL_VERSION:
            return _reject("unsupported-version", f"server speaks version {PROTOCOL_VERSION}")
        if not 1 <= len(name) <= MAX_NAME_LENGTH or not name.isprintable():
            return _reject(DropReason.MALFORMED.value, "name must be 1..128 printable characters")
        dim = int(hello.dim)
        if dim == 0 and self.options.dim is not None:
            # "Whatever the round sums": a client that encodes with the announced spec learns
            # D only from Welcome; the server's D is fixed (by --dim or its spec).
            dim = self.options.dim
        if not 1 <= dim <= self.options.max_dim:
            return _reject(DropReason.OVERSIZED.value, f"dim must be in 1..{self.options.max_dim}")
        if self.options.dim is not None and dim != self.options.dim:
            return _reject(DropReason.WRONG_LENGTH.value, f"this server sums D={self.options.dim}")
        registry = self.options.registry
        entry = None if registry is None else registry.by_name(name)
        if registry is not None and entry is None:
            return _reject(DropReason.UNKNOWN_CLIENT.value, "this name is not in the registry")
        # Malicious mode: only the holder of the name's registered key takes the name. Checked
        # before the duplicate check, so an impostor neither takes a name nor learns it is taken.
        if (
            self.options.mode == "malicious"
            and entry is not None
            and not verify_hello(entry.public_key, conn.nonce, hello)
        ):
            self.log(f"rejected a Hello for name {name!r} not signed by its registered identity")
            return _reject(
                DropReason.BAD_SIGNATURE.value,
                "the Hello is not signed over this stream's challenge by the identity key "
                "registered for this name",
            )
        if name in self._names:
            self.log(f"rejected a second connection for name {name!r}")
            return _reject("duplicate-name", "a client with this name is already registered")
        if not self._accepting or len(self._lobby) >= 4 * self.options.clients + 16:
            return _reject("no-round", "the server takes no more clients")
        conn.name = name
        conn.dim = dim
        self._names.add(name)
        self._lobby.append(conn)
        self._lobby_changed.set()
        return None

    async def _read(self, conn: _Conn, it: AsyncIterator[bytes]) -> None:
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

    async def _on_frame(self, conn: _Conn, data: bytes, upload: _Upload) -> None:
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

    def _report(self, conn: _Conn, kind: str, payload: Any) -> None:
        """Hand a stream's end or misbehaviour to the driver; a client still waiting to join
        is simply taken out of the lobby (its stream ends with a Reject when it misbehaved)."""
        if conn.index is None:
            self._gone(conn, str(payload))
            if isinstance(payload, FrameError):
                conn.send(_reject(payload.reason.value, payload.detail))
            conn.close()
            return
        self._events.put_nowait((kind, conn, payload, None))

    def _gone(self, conn: _Conn, detail: str) -> None:
        if conn in self._lobby:
            self._lobby.remove(conn)
            self._names.discard(conn.name)
            self._lobby_changed.set()
        if conn.index is not None and not conn.closed:
            self._events.put_nowait(("gone", conn, detail, None))

    # -- rounds -----------------------------------------------------------------------------

    async def _gather(self) -> list[_Conn]:
        opts = self.options
        loop = asyncio.get_running_loop()
        deadline = loop.time() + opts.join_timeout
        minimum = opts.min_clients or opts.clients
        while len(self._lobby) < opts.clients:
            self._status(
                f"round {self._round_no}: waiting for clients {len(self._lobby)}/{opts.clients}"
            )
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._lobby_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lobby_changed.wait(), remaining)
        members = [c for c in self._lobby[: opts.clients] if not c.closed]
        if len(members) < minimum:
            return members  # the caller aborts
        del self._lobby[: opts.clients]
        return members

    async def _run_round(self, number: int) -> RoundReport:
        opts = self.options
        self._round_no = number
        self._phase_name = "join"
        self._bytes_in = {}
        report = RoundReport(round=number)
        loop = asyncio.get_running_loop()
        started = loop.time()
        members = await self._gather()
        report.timings["join"] = loop.time() - started
        minimum = max(2, opts.min_clients or opts.clients)
        if len(members) < minimum:
            report.abort_reason = AbortReason.TOO_FEW_CLIENTS.value
            report.abort_detail = f"{len(members)} clients joined; {minimum} needed"
            self.log(f"round {number}: aborted ({report.abort_reason}): {report.abort_detail}")
            return report
        dim = opts.dim if opts.dim is not None else members[0].dim
        for conn in [c for c in members if c.dim != dim]:
            members.remove(conn)
            report.rejected[conn.name] = DropReason.WRONG_LENGTH.value
            conn.send(_reject(DropReason.WRONG_LENGTH.value, f"this round sums D={dim}"))
            conn.close()
            self._names.discard(conn.name)
        try:
            if len(members) < minimum:
                raise ConfigError(f"only {len(members)} clients with D={dim}")
            n = len(members)
            degree = opts.degree if opts.degree is None else min(opts.degree, n - 1)
            config = RoundConfig.create(
                n,
                dim,
                opts.bits,
                degree=degree,
                threshold=opts.threshold,
                mode=opts.mode,
                dropout_rate=opts.dropout_rate,
                corrupt_rate=opts.corrupt_rate,
                allow_unsafe=opts.allow_unsafe,
                context_digest=opts.context_digest or bytes(DIGEST_BYTES),
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
                conn.send(_reject(report.abort_reason, report.abort_detail))
                conn.close()
                self._names.discard(conn.name)
            return report
        try:
            return await self._drive(number, members, config, session, report)
        finally:
            for conn in members:
                conn.close()
                self._names.discard(conn.name)

    async def _drive(
        self,
        number: int,
        members: list[_Conn],
        config: RoundConfig,
        session: ServerSession,
        report: RoundReport,
    ) -> RoundReport:
        opts = self.options
        loop = asyncio.get_running_loop()
        word_bytes = config.dim * (4 if config.bits <= 32 else 8)
        self._assembly = asyncio.Semaphore(max(2, opts.assembly_budget_bytes // word_bytes))
        by_index = dict(enumerate(members, 1))
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
        self.log(
            f"round {number}: {config.num_clients} clients, D={config.dim}, b={config.bits}, "
            f"k={config.degree}, t={config.threshold}, mode={config.mode}"
        )
        encoded = config.encode()
        chunk_words = opts.chunk_bytes // (4 if config.bits <= 32 else 8)
        sent = 0
        roster = {i: c.name for i, c in by_index.items()} if config.mode == "malicious" else {}
        for index, conn in by_index.items():
            conn.index = index
            conn.round_no = number
            conn.config = config
            welcome = pb.ServerFrame(
                welcome=pb.Welcome(
                    index=index,
                    config=encoded,
                    round=number,
                    phase_timeout=opts.phase_timeout,
                    max_message_bytes=opts.max_message_bytes,
                    chunk_words=chunk_words,
                    roster=roster,
                    spec=opts.spec,
                )
            )
            sent += conn.send(welcome.SerializeToString())
        report.bytes_sent["join"] = sent
        report.bytes_received["join"] = self._bytes_in.get("join", 0)
        while session.phase not in (ServerPhase.DONE, ServerPhase.ABORTED):
            phase = _PHASE_NAMES[session.phase]
            self._phase_name = phase
            phase_start = loop.time()
            deadline = phase_start + opts.phase_timeout
            total = len(session.active())
            while True:
                waiting = session.expected()
                self._status(
                    f"round {number}: {phase} {total - len(waiting)}/{total} "
                    f"(dropped {len(session.dropped())})"
                )
                if not waiting:
                    break
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    self._handle(
                        number, session, await asyncio.wait_for(self._events.get(), remaining)
                    )
                except TimeoutError:
                    break
                # Take whatever else is already queued before re-checking.
                while not self._events.empty():
                    self._handle(number, session, self._events.get_nowait())
            compute_start = time.perf_counter()
            outbox = await asyncio.to_thread(session.advance)
            report.server_compute[phase] = time.perf_counter() - compute_start
            sent = 0
            for index, msg in outbox.items():
                sent += self._send(by_index[index], msg)
            report.bytes_sent[phase] = sent
            report.bytes_received[phase] = self._bytes_in.get(phase, 0)
            report.timings[phase] = loop.time() - phase_start
            self.log(
                f"round {number}: {phase} done in {report.timings[phase]:.2f}s; "
                f"{len(session.active())} active, {len(session.dropped())} dropped"
            )
        self._phase_name = "done"
        self._assembly = None
        # Drain events queued for this round so they cannot leak into the next one.
        while not self._events.empty():
            _kind, _conn, _payload, release = self._events.get_nowait()
            if release is not None:
                release()
        names = {i: c.name for i, c in by_index.items()}
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
            return report
        report.status = "complete"
        report.included = sorted(names[i] for i in result.included)
        report.dropped = dict(
            sorted((names[i], str(reason)) for i, (_, reason, _d) in result.dropped.items())
        )
        report.late = sorted(names[i] for i in result.late)
        report.total = result.total
        self.log(
            f"round {number}: complete; {len(report.included)} included, "
            f"{len(report.dropped)} dropped"
        )
        return report

    def _handle(self, number: int, session: ServerSession, event: _Event) -> None:
        kind, conn, payload, release = event
        try:
            if conn.round_no != number or conn.index is None:
                return
            index = conn.index
            if kind == "msg":
                msg: ClientMessage = payload
                if getattr(msg, "sender", None) != index:
                    self._drop(
                        session, conn, DropReason.MALFORMED, "sender is not this stream's client"
                    )
                    return
                session.receive(msg)
                if isinstance(msg, MaskedInput):
                    del msg  # the assembled vector is in the running sum now
            elif kind == "bad":
                exc: FrameError = payload
                self._drop(session, conn, exc.reason, exc.detail)
            elif kind == "gone":
                session.drop(index, DropReason.TRANSPORT, str(payload))
                conn.close()
        finally:
            if release is not None:
                release()

    def _drop(self, session: ServerSession, conn: _Conn, reason: DropReason, detail: str) -> None:
        assert conn.index is not None
        assert conn.config is not None
        self.log(f"round {conn.round_no}: dropping {conn.name!r} ({reason.value}): {detail}")
        session.drop(conn.index, reason, detail)
        self._send(conn, Abort(conn.config.session_id, SERVER_SENDER, reason.value, detail))

    def _send(self, conn: _Conn, msg: ServerMessage) -> int:
        size = conn.send(server_frame(msg).SerializeToString())
        if isinstance(msg, Abort | RoundComplete):
            conn.close()
        return size


def _reject(reason: str, detail: str) -> bytes:
    return pb.ServerFrame(reject=pb.Reject(reason=reason, detail=detail)).SerializeToString()


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
