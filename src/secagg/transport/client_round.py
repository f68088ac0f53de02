"""A client's round on an open stream: Welcome, the config's checks, task, input, session."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import numpy.typing as npt

from secagg.encoding import Encoder
from secagg.encoding.round_spec import spec_digest
from secagg.encoding.task import Task
from secagg.errors import ConfigError, EncodingError, UnsafeParametersError
from secagg.identity.registry import IdentityRegistryFile
from secagg.protocol.client.session import ClientSession
from secagg.protocol.client.state import ClientState
from secagg.protocol.config import RoundConfig
from secagg.protocol.policy import ClientPolicy
from secagg.reasons import AbortReason, DropReason, OutcomeReason
from secagg.transport import secagg_pb2 as pb
from secagg.transport.client_input import local_input_problem, spec_difference
from secagg.transport.client_outcome import Failed, first_time
from secagg.transport.client_wire import ClientWireMixin
from secagg.transport.codec import DEFAULT_CHUNK_BYTES, FrameError, server_message
from secagg.transport.taskwire import TaskAssembler

__all__ = ["ClientRoundMixin", "MakeInput"]

# What a round's input comes from once its task arrived: a coroutine making the vector and its
# bit width (participate), or None when the vector is given up front (submit).
MakeInput = Callable[[Task | None], Awaitable[tuple[npt.NDArray[Any], int | None]]]


class ClientRoundMixin(ClientWireMixin):
    """The round half of :class:`~secagg.transport.client.Client`."""

    _registry: IdentityRegistryFile | None
    _expected_context: bytes | None
    _policy: ClientPolicy
    _max_task_bytes: int

    def _malicious(self, welcome: pb.Welcome, config: RoundConfig) -> dict[str, Any]:
        """Identity and registry for malicious mode: this client's own trusted registry, with
        the indices the server assigned to the names (never keys coming from the server)."""
        if config.mode != "malicious":
            if self._identity is not None:
                # The server could switch signatures and the consistency round off this way.
                raise Failed(
                    AbortReason.MODE_MISMATCH.value,
                    f"this client holds an identity but the server announced a {config.mode} "
                    "round: refusing to run without malicious-mode checks",
                )
            return {}
        if self._identity is None or self._registry is None:
            raise Failed(
                AbortReason.UNKNOWN_IDENTITY.value, "malicious mode needs --identity and --registry"
            )
        roster = {str(name): int(index) for index, name in welcome.roster.items()}
        if roster.get(self.name) != welcome.index or len(roster) != len(welcome.roster):
            raise Failed(
                AbortReason.INCONSISTENT_SETS.value, "the server's roster does not list this client"
            )
        try:
            registry = self._registry.with_indices(roster)
        except ConfigError as exc:
            raise Failed(
                AbortReason.UNKNOWN_IDENTITY.value, f"roster contradicts the registry: {exc}"
            ) from None
        return {"identity": self._identity, "registry": registry}

    async def _take_announced(
        self, call: Any, config: RoundConfig, welcome: pb.Welcome, tree: Any, weight: float | None
    ) -> tuple[Encoder, npt.NDArray[Any]]:
        """Build the encoder the round announced and encode ``tree`` with it, or leave."""
        announced = bytes(welcome.spec)
        if spec_digest(announced) != config.spec_digest:
            raise Failed(
                AbortReason.MALFORMED.value, "Welcome.spec does not match the config's digest"
            )
        reason = AbortReason.SPEC_MISMATCH.value
        if not announced:
            await self._refuse(
                call, config, welcome.index, reason,
                "the round announces raw integers (no spec); this client encodes floats",
            )  # fmt: skip
        try:
            encoder = Encoder.from_round_spec(announced, tree)
        except (ConfigError, EncodingError) as exc:
            await self._refuse(call, config, welcome.index, reason, f"announced spec: {exc}")
        try:
            return encoder, encoder.encode(tree, weight=weight)
        except EncodingError as exc:
            await self._refuse(
                call, config, welcome.index, AbortReason.INVALID_INPUT.value, str(exc)
            )

    def _check_config(self, config: RoundConfig, dim: int, bits: int | None) -> None:
        """What this client refuses whatever the server says: another D or b than its own."""
        if config.dim != dim:
            raise Failed(DropReason.WRONG_LENGTH.value, f"the round sums D={config.dim}")
        if bits is not None and config.bits != bits:
            raise Failed(
                AbortReason.CONFIG_MISMATCH.value,
                f"the round uses b={config.bits}; this client's input needs b={bits}",
            )

    async def _run(
        self,
        call: Any,
        data: npt.NDArray[Any],
        expected: bytes | None,
        bits: int | None,
        fields: dict[str, Any],
        tree: Any = None,
        weight: float | None = None,
        make: MakeInput | None = None,
    ) -> None:
        """Run the round on ``call``; fills ``fields`` (index, round, ...) as it learns them,
        so a failed round's outcome still names them. With ``make``, ``data`` only gives D and
        the input is made from the round's task once it arrived."""
        welcome, config = await self._join(call, int(data.shape[0]), fields)
        if tree is not None:
            encoder, data = await self._take_announced(call, config, welcome, tree, weight)
            expected, bits = encoder.round_spec.encode(), encoder.bits
        self._check_config(config, int(data.shape[0]), bits)
        await self._check_spec(call, config, welcome, expected)
        chunk_bytes = _chunk_bytes(welcome, config)
        self._progress(
            f"joined as client {welcome.index} of {config.num_clients} "
            f"(D={config.dim}, b={config.bits}, k={config.degree}, t={config.threshold})"
        )
        task, context = await self._task_and_context(call, config, welcome, fields)
        if make is not None:
            data = await self._make_input(call, config, welcome, make, task, bits)
        try:
            session = ClientSession(
                config,
                welcome.index,
                data,
                expected_context_digest=context,
                policy=self._policy,
                expected_spec_digest=None if expected is None else spec_digest(expected),
                **self._malicious(welcome, config),
            )
        except Failed as failure:
            await self._abort(call, config, welcome.index, failure)
            raise
        except ConfigError as exc:
            unfit = Failed(AbortReason.INVALID_INPUT.value, str(exc))
            await self._abort(call, config, welcome.index, unfit)
            raise unfit from None
        await self._exchange(call, session, welcome.index, chunk_bytes, fields)

    async def _join(
        self, call: Any, dim: int, fields: dict[str, Any]
    ) -> tuple[pb.Welcome, RoundConfig]:
        """Hello, then the server's Welcome and the round config it carries (checked)."""
        # dim 0: "the round's D" (when encoding with the announced spec, see _take_announced).
        await self._hello(call, dim)
        self._progress(f"waiting to join at {self.server} as {self.name!r}")
        frame = await self._read(call, self._timeout)
        kind = frame.WhichOneof("body")
        if kind == "reject":
            raise Failed(frame.reject.reason or OutcomeReason.REJECTED.value, frame.reject.detail)
        if kind != "welcome":
            raise Failed(AbortReason.MALFORMED.value, f"expected Welcome, got {kind}")
        welcome = frame.welcome
        try:
            # The mode's threshold rule holds unless this client itself allows unsafe ones.
            config = RoundConfig.decode(welcome.config, allow_unsafe=self._policy.allow_unsafe)
        except UnsafeParametersError as exc:
            await self._refuse_unsafe(call, welcome, str(exc))
        except ConfigError as exc:
            raise Failed(AbortReason.MALFORMED.value, f"bad round config: {exc}") from None
        fields.update(
            index=welcome.index,
            round_id=config.round_id.hex(),
            num_clients=config.num_clients,
            round=int(welcome.round),
        )
        if not first_time(self.name, config.session_id):
            raise Failed(
                AbortReason.REPEATED_SESSION.value,
                "this client already took part in this session id; a fresh round has a fresh id",
            )
        return welcome, config

    async def _check_spec(
        self, call: Any, config: RoundConfig, welcome: pb.Welcome, expected: bytes | None
    ) -> None:
        """The announced spec must be the config's, and this client's when it has one."""
        announced = bytes(welcome.spec)
        if spec_digest(announced) != config.spec_digest:
            raise Failed(
                AbortReason.MALFORMED.value, "Welcome.spec does not match the config's digest"
            )
        if expected is not None and announced != expected:
            await self._refuse(
                call, config, welcome.index, AbortReason.SPEC_MISMATCH.value,
                spec_difference(announced, expected),
            )  # fmt: skip

    async def _task_and_context(
        self, call: Any, config: RoundConfig, welcome: pb.Welcome, fields: dict[str, Any]
    ) -> tuple[Task | None, bytes | None]:
        """The round's task (if any) and the context digest this client expects signed."""
        if self._expected_context is not None and config.context_digest != self._expected_context:
            # Refuse before the input is even checked against the round: nothing is sent but
            # the refusal.
            detail = "the round config's context digest differs from the one this client computed"
            abort = pb.Abort(
                session_id=config.session_id,
                sender=welcome.index,
                reason=AbortReason.CONTEXT_MISMATCH.value,
                detail=detail,
            )
            await self._write(call, pb.ClientFrame(abort=abort))
            raise Failed(AbortReason.CONTEXT_MISMATCH.value, detail)
        if not welcome.task_bytes:
            return None, self._expected_context
        task = await self._receive_task(call, welcome, config)
        fields["task_digest"] = task.digest.hex()
        # The digest this client computed itself from the bytes it got: the consistency
        # round has it signed, so different tasks for different clients abort the round.
        if config.context_digest != task.digest:
            mismatch = Failed(
                AbortReason.CONTEXT_MISMATCH.value,
                "the task received differs from the round config's context digest",
            )
            await self._abort(call, config, welcome.index, mismatch)
            raise mismatch
        return task, task.digest

    async def _exchange(
        self,
        call: Any,
        session: ClientSession,
        index: int,
        chunk_bytes: int,
        fields: dict[str, Any],
    ) -> None:
        """Run ``session`` over the stream until the round completes or aborts."""
        first = session.start()
        await self._send_message(call, first, chunk_bytes)
        while session.state not in (ClientState.DONE, ClientState.ABORTED):
            frame = await self._read(call, self._timeout)
            try:
                msg = server_message(frame)
            except FrameError as exc:
                raise Failed(exc.reason.value, exc.detail) from None
            reply = await asyncio.to_thread(session.receive, msg)
            if reply is not None:
                await self._send_message(call, reply, chunk_bytes)
        if session.state is ClientState.ABORTED:
            await self._close_after_abort(call)
            raise Failed(str(session.abort_reason), session.abort_detail)
        included = session.included or ()
        fields["num_included"] = len(included)
        if index not in included:
            raise Failed(
                OutcomeReason.NOT_INCLUDED.value, "the round completed without this client's input"
            )
        self._progress(f"included in the sum with {len(included)} clients")
        await call.done_writing()

    async def _make_input(
        self,
        call: Any,
        config: RoundConfig,
        welcome: pb.Welcome,
        make: MakeInput,
        task: Task | None,
        bits: int | None,
    ) -> npt.NDArray[Any]:
        """The user's input for this round, made from its task and checked like submit's."""
        try:
            data, bits = await make(task)
        except Failed as failure:
            await self._abort(call, config, welcome.index, failure)
            raise
        problem = local_input_problem(data, bits, config.dim)
        if problem is None and bits is not None and config.bits != bits:
            problem = (
                AbortReason.CONFIG_MISMATCH.value,
                f"the round uses b={config.bits}; this client's input needs b={bits}",
            )
        if problem is not None:
            unfit = Failed(*problem)
            await self._abort(call, config, welcome.index, unfit)
            raise unfit
        return data

    async def _receive_task(self, call: Any, welcome: pb.Welcome, config: RoundConfig) -> Task:
        """Read the round's task (TaskChunk frames right after Welcome)."""
        try:
            assembler = TaskAssembler(
                config.session_id, int(welcome.task_bytes), self._max_task_bytes
            )
        except FrameError as exc:
            failure = Failed(exc.reason.value, exc.detail)
            await self._abort(call, config, welcome.index, failure)
            raise failure from None
        while not assembler.complete:
            frame = await self._read(call, self._timeout)
            kind = frame.WhichOneof("body")
            if kind == "abort":
                raise Failed(frame.abort.reason, frame.abort.detail)
            if kind != "task_chunk":
                raise Failed(DropReason.MALFORMED.value, f"expected TaskChunk, got {kind}")
            try:
                assembler.add(frame.task_chunk)
            except FrameError as exc:
                raise Failed(exc.reason.value, exc.detail) from None
        self._progress(f"received the round's task ({assembler.total} bytes)")
        return Task(assembler.data(), round=int(welcome.round))


def _chunk_bytes(welcome: pb.Welcome, config: RoundConfig) -> int:
    """The chunk size for masked inputs: Welcome's, or a safe one below its message limit."""
    chunk_bytes = int(welcome.chunk_words or 0) * (4 if config.bits <= 32 else 8)
    if chunk_bytes <= 0 or (
        welcome.max_message_bytes and chunk_bytes > welcome.max_message_bytes - 1024
    ):
        chunk_bytes = min(DEFAULT_CHUNK_BYTES, max(4096, int(welcome.max_message_bytes) // 2))
    return chunk_bytes
