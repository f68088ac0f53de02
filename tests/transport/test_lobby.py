"""Round-0 slots: a welcomed client that vanishes before advertising keys is replaced."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np

import secagg
from secagg.transport import AggregationServer, RoundReport, ServerOptions
from secagg.transport import secagg_pb2 as pb
from secagg.transport.service import METHOD


def test_a_slot_lost_before_round_0_goes_to_a_waiting_client() -> None:
    options = ServerOptions(clients=3, dim=8, bits=16, phase_timeout=30, join_timeout=30)
    vectors = {n: np.arange(8, dtype=np.uint32) * (i + 1) for i, n in enumerate(["u0", "u1"])}
    vectors["late"] = np.full(8, 7, dtype=np.uint32)

    async def run() -> tuple[RoundReport, list[bool]]:
        server = AggregationServer(options, "127.0.0.1:0")
        port = await server.start()
        running = asyncio.create_task(server.run())
        target = f"127.0.0.1:{port}"

        def submit(name: str) -> asyncio.Task[secagg.Outcome]:
            client = secagg.Client(target, name=name, insecure=True, timeout=30)
            return asyncio.create_task(client.submit(vectors[name]))

        async with grpc.aio.insecure_channel(target) as channel:
            ghost = channel.stream_stream(METHOD)()
            challenge = pb.ServerFrame.FromString(await asyncio.wait_for(ghost.read(), 30))
            assert challenge.WhichOneof("body") == "challenge"  # every stream starts with one
            hello = pb.Hello(protocol_version=1, name="ghost", dim=8)
            await ghost.write(pb.ClientFrame(hello=hello).SerializeToString())
            honest = [submit("u0"), submit("u1")]
            welcome = pb.ServerFrame.FromString(await asyncio.wait_for(ghost.read(), 30))
            assert welcome.WhichOneof("body") == "welcome"
            honest.append(submit("late"))
            while server.waiting() < 1:  # "late" waits in the lobby: the round is full
                await asyncio.sleep(0.01)
            ghost.cancel()  # vanishes before advertising keys
        outcomes = await asyncio.wait_for(asyncio.gather(*honest), 60)
        reports = await asyncio.wait_for(running, 60)
        return reports[0], [o.included for o in outcomes]

    report, included = asyncio.run(run())
    assert included == [True, True, True]
    assert report.status == "complete"
    assert report.included == ["late", "u0", "u1"]
    assert report.rejected == {"ghost": "transport-error"}
    assert report.total is not None
    expected = sum(v.astype(np.uint64) for v in vectors.values()) % 2**16
    assert np.array_equal(report.total.astype(np.uint64), expected)
