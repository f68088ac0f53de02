"""A client's stream: reading and writing frames, Hello, leaving a round with an Abort."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable
from typing import Any, NoReturn

import grpc

from secagg.crypto.signing import SigningKey
from secagg.protocol.config import PROTOCOL_VERSION, RoundConfig
from secagg.protocol.messages import (
    AdvertiseKeys,
    ClientMessage,
    ConsistencySignature,
    EncryptedShares,
    MaskedInput,
    RevealNonce,
    Round,
    UnmaskResponse,
)
from secagg.reasons import AbortReason, DropReason, OutcomeReason
from secagg.transport import secagg_pb2 as pb
from secagg.transport.client_outcome import ConnectFailed, Failed, NotReached
from secagg.transport.clock import Clock, wait_for
from secagg.transport.codec import FrameError, client_frame, masked_input_frames, parse_server_frame
from secagg.transport.hello import CHALLENGE_BYTES, hello_frame

__all__ = ["ClientWireMixin"]

_ABORT_GRACE = 5.0  # seconds to let the server read a client's Abort before hanging up

# Status codes of a failed connect that may pass (retried within the client's timeout).
_PASSING = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED}
)

_ROUND_OF: dict[type, Round] = {
    AdvertiseKeys: Round.ADVERTISE_KEYS,
    RevealNonce: Round.ADVERTISE_KEYS,
    EncryptedShares: Round.SHARE_KEYS,
    MaskedInput: Round.MASKED_INPUT,
    ConsistencySignature: Round.CONSISTENCY_CHECK,
    UnmaskResponse: Round.UNMASKING,
}


class ClientWireMixin:
    """The stream half of :class:`~secagg.transport.client.Client`."""

    server: str
    name: str
    _insecure: bool
    _timeout: float
    _progress: Callable[[str], None]
    _stall_at: Round | None
    _identity: SigningKey | None
    _sent: int
    _received: int
    _clock: Clock

    async def _write(self, call: Any, frame: pb.ClientFrame) -> None:
        data = frame.SerializeToString()
        self._sent += len(data)
        await call.write(data)

    async def _read(self, call: Any, timeout: float, *, first: bool = False) -> pb.ServerFrame:
        try:
            data = await wait_for(self._clock, call.read(), timeout)
        except TimeoutError:
            raise Failed(
                DropReason.NO_RESPONSE.value, f"no message from the server in {timeout:.0f}s"
            ) from None
        except grpc.aio.AioRpcError as exc:
            if first:
                raise self._connect_failure(exc) from None
            raise Failed(
                DropReason.TRANSPORT.value, f"{exc.code().name}: {exc.details()}"
            ) from None
        if data is grpc.aio.EOF:
            if first:  # closed before its Challenge: e.g. a server restarting
                raise ConnectFailed(DropReason.TRANSPORT.value, "the server closed the stream")
            raise Failed(DropReason.TRANSPORT.value, "the server closed the stream")
        self._received += len(data)
        try:
            return parse_server_frame(data)
        except FrameError as exc:
            raise Failed(exc.reason.value, exc.detail) from None

    def _connect_failure(self, exc: grpc.aio.AioRpcError) -> Failed:
        """Say in words why the first read failed: nothing listening, TLS on one side only, or a
        failure that may pass (:class:`ConnectFailed`, retried)."""
        details = exc.details() or ""
        raw = f"{exc.code().name}: {details}"
        if exc.code() != grpc.StatusCode.UNAVAILABLE:
            kind = ConnectFailed if exc.code() in _PASSING else Failed
            return kind(DropReason.TRANSPORT.value, raw)
        if "Connection refused" in details or "Failed to connect to remote host" in details:
            return NotReached(
                AbortReason.SERVER_UNREACHABLE.value,
                f"no server is listening at {self.server} (connection refused)",
            )
        if self._insecure and ("Socket closed" in details or "Connection reset" in details):
            return Failed(
                AbortReason.TLS_MISMATCH.value,
                f"the server at {self.server} closed a plaintext connection: it probably "
                "speaks TLS (drop --insecure and give --ca-cert)",
            )
        if not self._insecure and "WRONG_VERSION_NUMBER" in details:
            return Failed(
                AbortReason.TLS_MISMATCH.value,
                f"the server at {self.server} does not speak TLS (a plaintext server needs "
                "--insecure, for loopback testing only)",
            )
        if "CERTIFICATE_VERIFY_FAILED" in details:
            return Failed(
                DropReason.TRANSPORT.value,
                "TLS: the server's certificate does not verify against the trusted CA "
                "(CERTIFICATE_VERIFY_FAILED)",
            )
        return ConnectFailed(DropReason.TRANSPORT.value, raw)

    async def _send_message(self, call: Any, msg: ClientMessage, chunk_bytes: int) -> None:
        round_ = _ROUND_OF.get(type(msg))
        if round_ is not None and self._stall_at is not None and round_ >= self._stall_at:
            self._progress(f"stalling before {round_.label}")
            while True:  # send nothing more, but hear the server out
                heard = await self._read(call, self._timeout)
                if heard.WhichOneof("body") == "abort":
                    raise Failed(heard.abort.reason, heard.abort.detail)
        if isinstance(msg, MaskedInput):
            for frame in masked_input_frames(msg, chunk_bytes):
                await self._write(call, frame)
        else:
            await self._write(call, client_frame(msg))
        if round_ is not None:
            self._progress(f"sent {round_.label}")

    async def _abort(self, call: Any, config: RoundConfig, index: int, failure: Failed) -> None:
        """Tell the server this client leaves the round (before it sent anything of it)."""
        await self._write(
            call,
            pb.ClientFrame(
                abort=pb.Abort(
                    session_id=config.session_id,
                    sender=index,
                    reason=failure.reason,
                    detail=failure.detail[:200],
                )
            ),
        )
        with contextlib.suppress(grpc.aio.AioRpcError):
            await call.done_writing()

    async def _refuse_unsafe(self, call: Any, welcome: pb.Welcome, detail: str) -> NoReturn:
        """Tell the server this client will not take part in a round it judges unsafe."""
        reason = AbortReason.UNSAFE_PARAMETERS.value
        abort = pb.Abort(
            # The session id is the hash of the config's canonical encoding, as sent.
            session_id=hashlib.sha256(welcome.config).digest(),
            sender=welcome.index,
            reason=reason,
            detail=detail[:200],
        )
        await self._write(call, pb.ClientFrame(abort=abort))
        await self._close_after_abort(call)
        raise Failed(reason, detail)

    async def _close_after_abort(self, call: Any) -> None:
        """Half-close and let the server end the stream, so the Abort is read, not cancelled."""
        with contextlib.suppress(grpc.aio.AioRpcError, TimeoutError, asyncio.CancelledError):
            await call.done_writing()
            await wait_for(self._clock, call.read(), _ABORT_GRACE)

    async def _refuse(
        self, call: Any, config: RoundConfig, index: int, reason: str, detail: str
    ) -> NoReturn:
        """Tell the server this client leaves the round (before round 0), then fail."""
        failure = Failed(reason, detail)
        await self._abort(call, config, index, failure)
        raise failure

    async def _hello(self, call: Any, dim: int) -> None:
        """Read the server's Challenge and answer with a (signed, given an identity) Hello."""
        frame = await self._read(call, self._timeout, first=True)
        kind = frame.WhichOneof("body")
        if kind == "reject":
            raise Failed(frame.reject.reason or OutcomeReason.REJECTED.value, frame.reject.detail)
        if kind != "challenge":
            raise Failed(DropReason.MALFORMED.value, f"expected Challenge, got {kind}")
        nonce = bytes(frame.challenge.nonce)
        if len(nonce) != CHALLENGE_BYTES:
            raise Failed(
                DropReason.MALFORMED.value,
                f"the challenge is {len(nonce)} bytes, expected {CHALLENGE_BYTES}",
            )
        await self._write(
            call, hello_frame(PROTOCOL_VERSION, self.name, dim, nonce, self._identity)
        )
