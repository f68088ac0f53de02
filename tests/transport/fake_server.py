"""A lying aggregation server, run as a process by the client tests.

``python fake_server.py MODE PORT`` serves one stream per client on 127.0.0.1:PORT:

- ``reject-markup``: answers the Hello with a Reject whose reason and detail are rich markup
  and terminal escapes (``[/]``, ``[bold]``, ESC).
- ``abort-markup``: welcomes the client into a semi-honest round of 2 and, once it advertised
  its keys, aborts with markup in the reason and detail.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc

from secagg.protocol.config import RoundConfig
from secagg.transport import secagg_pb2 as pb
from secagg.transport.hello import challenge_frame, new_challenge
from secagg.transport.service import RPC, SERVICE

NASTY_REASON = "[/]"
NASTY_DETAIL = "[/] closing [bold]nothing[/bold] \x1b[31mred\x1b[0m [link=x]y"


def _frame(**body: Any) -> bytes:
    return pb.ServerFrame(**body).SerializeToString()


def handler(mode: str):  # type: ignore[no-untyped-def]
    async def participate(
        requests: AsyncIterator[bytes], _context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        it = requests.__aiter__()
        yield challenge_frame(new_challenge())
        hello = pb.ClientFrame.FromString(await anext(it)).hello
        if mode == "reject-markup":
            yield _frame(reject=pb.Reject(reason=NASTY_REASON, detail=NASTY_DETAIL))
            return
        config = RoundConfig.create(2, int(hello.dim), 32)
        yield _frame(
            welcome=pb.Welcome(
                index=1, config=config.encode(), round=1, phase_timeout=5,
                max_message_bytes=4 << 20, chunk_words=1024,
            )
        )  # fmt: skip
        await anext(it)  # AdvertiseKeys
        yield _frame(
            abort=pb.Abort(
                session_id=config.session_id, sender=0, reason=NASTY_REASON, detail=NASTY_DETAIL
            )
        )

    return participate


async def main(mode: str, port: int) -> None:
    server = grpc.aio.server()
    method = grpc.stream_stream_rpc_method_handler(handler(mode))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {RPC: method}),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("listening", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
