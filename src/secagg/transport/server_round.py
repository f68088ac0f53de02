"""The round driver: one task owns the round's ServerSession and moves it phase by phase.

It waits for each phase's messages until all expected ones arrived or the phase deadline
passed, then calls ``advance()`` and sends what it returns. In round 0 a welcomed client that
stays silent for ``keys_timeout`` (or whose stream ends) gives its slot to the next waiting
client (semi-honest mode).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from secagg.errors import RoundAbortedError, UnsafeParametersError
from secagg.graph import evaluate_parameters
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
from secagg.reasons import AbortReason, DropReason
from secagg.transport import secagg_pb2 as pb
from secagg.transport.clock import Clock, wait_for
from secagg.transport.codec import FrameError, server_frame
from secagg.transport.lobby import ClientConn, Lobby
from secagg.transport.metrics import ServerMetrics
from secagg.transport.report import RoundReport, finite
from secagg.transport.server_options import ServerOptions
from secagg.transport.slots import PHASE_NAMES, Event, Slots
from secagg.transport.taskwire import task_frames

__all__ = ["RoundDriverMixin"]


class RoundDriverMixin:
    """The round-driving half of :class:`~secagg.transport.server.AggregationServer`."""

    options: ServerOptions
    metrics: ServerMetrics | None
    log: Callable[[str], None]
    _status: Callable[[str], None]
    _lobby: Lobby
    _events: asyncio.Queue[Event]
    _phase_name: str
    _bytes_in: dict[str, int]
    _assembly: asyncio.Semaphore | None
    _keys_idle: float
    _clock: Clock

    def _mark_interrupted(self, report: RoundReport) -> None:
        raise NotImplementedError

    def _interrupt_round(self, slots: Slots, session: ServerSession, report: RoundReport) -> None:
        """The server is shutting down mid-round: record it and tell the round's clients."""
        self._mark_interrupted(report)
        _record_drops(report, session, slots.names())
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

    def _welcome(self, slots: Slots, index: int, conn: ClientConn) -> int:
        """Give ``conn`` slot ``index`` of the round; returns the bytes sent."""
        opts = self.options
        config = slots.config
        conn.index = index
        conn.round_no = slots.number
        conn.config = config
        slots.holders[index] = conn
        slots.welcomed_at[index] = self._clock.now()
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

    def _task_frames(self, slots: Slots, conn: ClientConn) -> list[bytes]:
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

    def _refill(self, slots: Slots, session: ServerSession, report: RoundReport) -> None:
        """Give slots whose holder vanished or idled past ``keys_timeout`` in round 0 to
        waiting clients; the idle holder is told why and leaves."""
        now = self._clock.now()
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

    def _next_idle(self, slots: Slots, session: ServerSession) -> float | None:
        """When the next round-0 slot may be refilled (None: nothing to refill for)."""
        if not slots.refill or not self._lobby.live():
            return None
        times = [
            slots.welcomed_at[i] + self._keys_idle
            for i in session.expected()
            if i not in slots.vacant
        ]
        return min(times) if times else None

    async def _drive(self, slots: Slots, session: ServerSession, report: RoundReport) -> None:
        """Welcome the round's clients, then run its phases until it completes or aborts."""
        config = slots.config
        word_bytes = config.dim * (4 if config.bits <= 32 else 8)
        self._assembly = asyncio.Semaphore(max(2, self.options.assembly_budget_bytes // word_bytes))
        self._describe(slots, report)
        if self.metrics is not None:
            self.metrics.running_sum(word_bytes)
        sent = 0
        for index, conn in list(slots.holders.items()):
            sent += self._welcome(slots, index, conn)
        report.bytes_sent["join"] = sent
        report.bytes_received["join"] = self._bytes_in.get("join", 0)
        logged: set[int] = set()
        while session.phase not in (ServerPhase.DONE, ServerPhase.ABORTED):
            await self._run_phase(slots, session, report)
            self._log_drops(slots, session, logged)
        self._phase_name = "done"
        self._assembly = None
        # Drain events queued for this round so they cannot leak into the next one.
        while not self._events.empty():
            _kind, _conn, _payload, release = self._events.get_nowait()
            if release is not None:
                release()
        self._finish(slots, session, report)

    def _describe(self, slots: Slots, report: RoundReport) -> None:
        """Put the round's parameters into ``report`` and the log (and warn about a floor)."""
        opts = self.options
        number = slots.number
        config = slots.config
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
            report.config["privacy_failure_log2"] = finite(found.privacy_failure_log2)
            report.config["abort_probability"] = found.abort_probability
            report.config["meets_correctness_target"] = found.meets_correctness
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

    async def _run_phase(self, slots: Slots, session: ServerSession, report: RoundReport) -> None:
        """Collect one phase's messages (until all arrived or its deadline), then advance."""
        phase = PHASE_NAMES[session.phase]
        self._phase_name = phase
        keys_phase = session.phase is ServerPhase.COLLECT_KEYS
        phase_start = self._clock.now()
        await self._collect(slots, session, report, phase, phase_start + self.options.phase_timeout)
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
        report.timings[phase] = self._clock.now() - phase_start
        self.log(
            f"round {slots.number}: {phase} done in {report.timings[phase]:.2f}s; "
            f"{len(session.active())} active, {len(session.dropped())} dropped"
        )

    async def _collect(
        self,
        slots: Slots,
        session: ServerSession,
        report: RoundReport,
        phase: str,
        deadline: float,
    ) -> None:
        """Handle events until every expected client answered or ``deadline`` passed; in
        round 0, refill the slots of idle or vanished holders from the lobby meanwhile."""
        keys_phase = session.phase is ServerPhase.COLLECT_KEYS
        total = len(session.active())
        while True:
            if keys_phase and slots.refill and self._lobby.live():
                self._refill(slots, session, report)
            waiting = session.expected()
            self._status(
                f"round {slots.number}: {phase} {total - len(waiting)}/{total} "
                f"(dropped {len(session.dropped())})"
            )
            if not waiting or (
                keys_phase and waiting <= slots.vacant.keys() and not self._lobby.live()
            ):
                return  # everyone answered, or only vacant slots nobody waits to fill
            wake = deadline
            idle = self._next_idle(slots, session) if keys_phase else None
            if idle is not None:
                wake = min(wake, idle)
            if deadline - self._clock.now() <= 0:
                return
            try:
                event = await wait_for(
                    self._clock, self._events.get(), max(0.0, wake - self._clock.now())
                )
            except TimeoutError:
                continue  # the deadline (checked above) or an idle slot to refill
            self._handle(slots, session, event)
            # Take whatever else is already queued before re-checking.
            while not self._events.empty():
                self._handle(slots, session, self._events.get_nowait())

    def _log_drops(self, slots: Slots, session: ServerSession, logged: set[int]) -> None:
        """One line per client dropped since the last call: its name, round, reason, detail."""
        for i, (round_, reason, detail) in sorted(session.dropped().items()):
            if i not in logged:
                logged.add(i)
                self.log(
                    f"round {slots.number}: dropped {slots.holders[i].name!r} in {round_.label} "
                    f"({reason}){': ' + detail if detail else ''}"
                )

    def _finish(self, slots: Slots, session: ServerSession, report: RoundReport) -> None:
        number = slots.number
        names = slots.names()
        _record_drops(report, session, names)
        try:
            result = session.result
        except RoundAbortedError as exc:
            report.abort_reason = exc.reason
            report.abort_detail = exc.detail
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

    def _handle(self, slots: Slots, session: ServerSession, event: Event) -> None:
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

    def _refillable(self, slots: Slots, session: ServerSession, index: int) -> bool:
        """Whether slot ``index`` may still go to another client (round 0, no keys yet)."""
        return (
            slots.refill
            and session.phase is ServerPhase.COLLECT_KEYS
            and index in session.expected()
        )

    def _drop(
        self,
        slots: Slots,
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


def _record_drops(report: RoundReport, session: ServerSession, names: dict[int, str]) -> None:
    """Who was dropped so far, by name: the reason (``dropped``) and round and detail
    (``dropped_in``); a completed round's result replaces ``dropped``."""
    dropped = session.dropped()
    for i, (round_, reason, detail) in dropped.items():
        report.dropped_in[names[i]] = {
            "round": round_.label,
            "reason": str(reason),
            "detail": detail,
        }
    report.dropped = dict(sorted((names[i], str(r)) for i, (_r, r, _d) in dropped.items()))
