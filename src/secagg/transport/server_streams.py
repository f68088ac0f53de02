"""The server's side of each client stream: Challenge and Hello, then frames into driver events.

Every stream has a reader task that parses and validates frames and puts events on the
server's one queue; masked inputs arrive in chunks and are assembled into one array per client
under a semaphore that bounds how many are assembled at once (memory stays O(D)).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc

from secagg.reasons import AbortReason, DropReason
from secagg.transport.clock import Clock, wait_for
from secagg.transport.codec import FrameError, VectorAssembler, client_message, parse_client_frame
from secagg.transport.hello import challenge_frame
from secagg.transport.lobby import ClientConn, Lobby, reject_frame
from secagg.transport.metrics import ServerMetrics
from secagg.transport.server_options import ServerOptions
from secagg.transport.slots import Event, Slots, Upload

__all__ = ["HELLO_TIMEOUT", "StreamsMixin"]

HELLO_TIMEOUT = 10.0


class StreamsMixin:
    """The stream half of :class:`~secagg.transport.server.AggregationServer`."""

    options: ServerOptions
    metrics: ServerMetrics | None
    _lobby: Lobby
    _events: asyncio.Queue[Event]
    _shutdown: str | None
    _slots: Slots | None
    _phase_name: str
    _bytes_in: dict[str, int]
    _assembly: asyncio.Semaphore | None
    _upload_idle: float
    _clock: Clock

    async def _participate(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        conn = ClientConn(context.peer())
        yield challenge_frame(conn.nonce)
        it = requests.__aiter__()
        try:
            first = await wait_for(self._clock, it.__anext__(), HELLO_TIMEOUT)
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
        upload = Upload()
        try:
            while True:
                if upload.holding:
                    # A slot in the assembly semaphore is scarce: an uploader that stalls
                    # mid-vector loses it (and its place in the round) instead of blocking others.
                    try:
                        data = await wait_for(self._clock, anext(it), self._upload_idle)
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

    async def _on_frame(self, conn: ClientConn, data: bytes, upload: Upload) -> None:
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
