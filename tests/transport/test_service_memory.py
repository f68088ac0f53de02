"""Silent joiners with a huge D cost the server no O(D) memory (issue 11.6), over real gRPC."""

from __future__ import annotations

import asyncio
import tracemalloc

import grpc

from secagg.transport import AggregationServer, ServerOptions
from secagg.transport import secagg_pb2 as pb
from secagg.transport.service import METHOD

DIM = 2**24


async def _silent_joiners(port: int, names: list[str]) -> list[str]:
    """Say Hello with D = DIM, then nothing; returns what each stream was told last."""

    async def join(name: str) -> str:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.stream_stream(METHOD)()
            hello = pb.Hello(protocol_version=1, name=name, dim=DIM)
            await call.write(pb.ClientFrame(hello=hello).SerializeToString())
            last = ""
            async for data in call:
                frame = pb.ServerFrame.FromString(data)
                last = frame.WhichOneof("body")
            return last

    return list(await asyncio.gather(*(join(n) for n in names)))


def test_two_silent_joiners_with_a_huge_dim_abort_without_allocating_it() -> None:
    options = ServerOptions(
        clients=2, dim=DIM, max_dim=DIM, bits=32, phase_timeout=0.5, join_timeout=30
    )

    async def run() -> tuple[str, list[str]]:
        server = AggregationServer(options, "127.0.0.1:0")
        port = await server.start()
        running = asyncio.create_task(server.run())
        told = await asyncio.wait_for(_silent_joiners(port, ["s1", "s2"]), 60)
        reports = await asyncio.wait_for(running, 60)
        return str(reports[0].abort_reason), told

    tracemalloc.start()
    try:
        reason, told = asyncio.run(run())
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reason == "too-few-clients"
    assert told == ["abort", "abort"]
    assert peak < DIM  # the 64 MiB sum (or any D-sized buffer) was never allocated
