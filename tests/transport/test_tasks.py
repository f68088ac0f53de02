"""secagg.Server and Client.participate over real gRPC on loopback: tasks, callbacks, limits.

Server and clients share one event loop here (each client has its own gRPC connection);
the CLI tests run them as separate processes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import numpy as np
import pytest

import secagg
from secagg.encoding import Encoder, EncodingSpec
from secagg.identity.registry import IdentityRegistryFile, RegistryEntry, generate_identity
from secagg.transport import secagg_pb2 as pb
from secagg.transport.server import AggregationServer, _Slots
from secagg.transport.taskwire import task_frames

FAST = {"join_timeout": 30.0, "phase_timeout": 30.0}


def _encoder() -> Encoder:
    spec = EncodingSpec(clip=4.0, quant_bits=16, weighted=True, max_weight=10.0)
    return Encoder(spec, {"w": np.zeros((3, 2)), "b": np.zeros(2)}, 8)


async def _started(server: secagg.Server, run: asyncio.Task[Any]) -> int:
    while not server.port:
        if run.done():
            run.result()
        await asyncio.sleep(0.01)
    return server.port


def test_rounds_hand_out_the_callbacks_tasks_and_decode_the_weighted_mean() -> None:
    """Each round's clients get the task the callback returned; the callback gets the decoded
    weighted mean; returning None stops the server and the clients' loops end with it."""
    enc = _encoder()
    models: list[dict[str, Any]] = [{"w": np.full((3, 2), 0.5), "b": np.zeros(2)}]
    received: dict[str, list[dict[str, Any]]] = {}
    weights = {"c0": 1.0, "c1": 2.0, "c2": 5.0}

    async def main() -> tuple[list[secagg.RoundOutcome], list[list[secagg.Outcome]]]:
        server = secagg.Server("127.0.0.1:0", clients=3, encoder=enc, insecure=True, **FAST)

        def on_round(outcome: secagg.RoundOutcome) -> dict[str, Any] | None:
            if outcome.round == 3:
                return None
            result = outcome.result
            assert isinstance(result, secagg.encoding.DecodedResult)
            models.append({k: np.asarray(v) * 0.5 for k, v in result.weighted_mean.items()})
            return models[-1]

        run = asyncio.create_task(server.run(on_round, task=models[0]))
        port = await _started(server, run)

        async def client(name: str, offset: float) -> list[secagg.Outcome]:
            c = secagg.Client(f"127.0.0.1:{port}", name=name, insecure=True, wait=10)

            def fn(task: secagg.Task | None) -> tuple[dict[str, Any], float]:
                assert task is not None
                got = task.arrays()
                received.setdefault(name, []).append(got)
                return {"w": got["w"] + offset, "b": got["b"] - offset}, weights[name]

            # More rounds than the server runs: the loop ends at the server's no-round.
            return await c.participate(fn, rounds=5, encoder=enc)

        clients = await asyncio.gather(client("c0", 0.25), client("c1", -0.5), client("c2", 1.0))
        return await run, list(clients)

    outcomes, per_client = asyncio.run(main())
    assert [o.round for o in outcomes] == [1, 2, 3]
    assert all(o.complete and o.included == ["c0", "c1", "c2"] for o in outcomes)
    for name, got in received.items():
        assert len(got) == 3, name
        for model, seen in zip(models, got, strict=True):
            assert np.array_equal(seen["w"], model["w"])
            assert np.array_equal(seen["b"], model["b"])
    offsets = {"c0": 0.25, "c1": -0.5, "c2": 1.0}
    total_w = sum(weights.values())
    for outcome, model in zip(outcomes, models, strict=False):
        result = outcome.result
        assert isinstance(result, secagg.encoding.DecodedResult)
        expect_w = sum(weights[n] * (model["w"] + offsets[n]) for n in weights) / total_w
        assert result.weighted_mean_error_bound is not None
        assert np.max(np.abs(result.weighted_mean["w"] - expect_w)) <= (
            result.weighted_mean_error_bound
        )
        # The digest announced in the round is the digest of what the clients got.
        assert outcome.task_digest == secagg.context_digest(secagg.pack_arrays(model))
    for outs in per_client:
        assert [o.included for o in outs[:3]] == [True] * 3
        assert [o.task_digest for o in outs[:3]] == [o.task_digest.hex() for o in outcomes]
        # The fourth join finds the server done (refused, or already gone): the loop stops.
        assert outs[-1].reason in ("no-round", "server-unreachable")
        assert len(outs) == 4


def test_a_task_larger_than_a_message_arrives_in_chunks() -> None:
    task = bytes(range(256)) * 1200  # 300 KiB against a 64 KiB message limit
    seen: list[bytes] = []

    async def main() -> list[secagg.RoundOutcome]:
        server = secagg.Server(
            "127.0.0.1:0", clients=2, dim=4, bits=16, insecure=True,
            max_message_bytes=64 * 1024, chunk_bytes=32 * 1024, **FAST,
        )  # fmt: skip
        run = asyncio.create_task(server.run(lambda _o: None, task=task))
        port = await _started(server, run)

        def fn(t: secagg.Task | None) -> np.ndarray:
            assert t is not None
            seen.append(t.data)
            return np.arange(4, dtype=np.uint32)

        await asyncio.gather(
            *(
                secagg.Client(
                    f"127.0.0.1:{port}", name=n, insecure=True, dim=4, wait=10
                ).participate(fn, rounds=1)
                for n in ("a", "b")
            )
        )
        return await run

    outcomes = asyncio.run(main())
    assert seen == [task, task]
    assert outcomes[0].complete
    assert outcomes[0].report.bytes_sent["join"] > 2 * len(task)


def test_a_client_refuses_a_task_over_its_limit() -> None:
    async def main() -> list[secagg.Outcome]:
        server = secagg.Server(
            "127.0.0.1:0", clients=2, dim=4, insecure=True, join_timeout=5.0, phase_timeout=5.0
        )
        run = asyncio.create_task(server.run(lambda _o: None, task=b"x" * 5000))
        port = await _started(server, run)
        small = secagg.Client(
            f"127.0.0.1:{port}", name="small", insecure=True, dim=4, max_task_bytes=1000
        )
        other = secagg.Client(f"127.0.0.1:{port}", name="other", insecure=True, dim=4)
        outs = await asyncio.gather(
            small.participate(lambda _t: np.ones(4, np.uint32), rounds=1),
            other.participate(lambda _t: np.ones(4, np.uint32), rounds=1),
        )
        await run
        return [outs[0][0], outs[1][0]]

    small, other = asyncio.run(main())
    assert small.reason == "oversized-message"
    assert "at most 1000" in small.detail
    assert not other.included


def test_overload_refuses_new_clients_with_server_full() -> None:
    """Past max_waiting a joiner gets server-full at once; the round goes on with the others."""

    async def main() -> tuple[secagg.Outcome, list[secagg.Outcome], list[secagg.RoundOutcome]]:
        server = secagg.Server(
            "127.0.0.1:0", clients=3, min_clients=2, dim=4, insecure=True,
            max_waiting=2, join_timeout=4.0, phase_timeout=20.0,
        )  # fmt: skip
        run = asyncio.create_task(server.run(lambda _o: None))
        port = await _started(server, run)
        first = [
            asyncio.create_task(
                secagg.Client(f"127.0.0.1:{port}", name=n, insecure=True).submit(
                    np.full(4, 3, np.uint32)
                )
            )
            for n in ("a", "b")
        ]
        while server.aggregation_server.waiting() < 2:
            await asyncio.sleep(0.01)
        late = await secagg.Client(f"127.0.0.1:{port}", name="late", insecure=True).submit(
            np.ones(4, np.uint32)
        )
        return late, list(await asyncio.gather(*first)), await run

    late, first, outcomes = asyncio.run(main())
    assert late.reason == "server-full"
    assert "already wait" in late.detail
    assert all(o.included for o in first)
    assert outcomes[0].complete
    assert outcomes[0].included == ["a", "b"]
    assert np.array_equal(outcomes[0].total, np.full(4, 6))


class _TwoModels(AggregationServer):
    """A malicious server: one model to odd client indices, another to even ones (same config)."""

    other: bytes = b""

    def _task_frames(self, slots: _Slots, conn: Any) -> list[bytes]:
        if conn.index % 2 == 0:
            return task_frames(slots.config.session_id, self.other, self.options.chunk_bytes)
        return super()._task_frames(slots, conn)


@pytest.mark.adversarial
def test_two_models_to_two_groups_abort_the_malicious_round() -> None:
    """Each client checks the digest of the model it got itself (and signs that one in the
    consistency round): a server splitting the clients between two models gets no sum."""
    names = [f"m{i}" for i in range(6)]
    keys = {n: generate_identity() for n in names}
    registry = IdentityRegistryFile(RegistryEntry(keys[n].public_bytes, name=n) for n in names)
    model_a = secagg.pack_arrays({"w": np.zeros(3)})
    model_b = secagg.pack_arrays({"w": np.ones(3)})  # the same size: only the content differs
    digests: dict[str, str | None] = {}

    async def main() -> tuple[list[secagg.RoundOutcome], list[secagg.Outcome]]:
        server = secagg.Server(
            "127.0.0.1:0", clients=6, dim=3, bits=16, mode="malicious", registry=registry,
            insecure=True, **FAST,
        )  # fmt: skip
        # The same server, with the malicious task hand-out swapped in.
        evil = _TwoModels(server.options, "127.0.0.1:0", on_round=server._after_round)
        evil.other = model_b
        server._server = evil
        run = asyncio.create_task(server.run(lambda _o: None, task=model_a))
        port = await _started(server, run)

        async def client(name: str) -> secagg.Outcome:
            c = secagg.Client(
                f"127.0.0.1:{port}", name=name, insecure=True, identity=keys[name],
                registry=registry, dim=3, wait=10,
            )  # fmt: skip

            def fn(task: secagg.Task | None) -> np.ndarray:
                assert task is not None
                digests[name] = task.digest.hex()
                return np.full(3, 7, np.uint32)

            return (await c.participate(fn, rounds=1))[0]

        outs = await asyncio.gather(*(client(n) for n in names))
        return await run, list(outs)

    outcomes, client_outcomes = asyncio.run(main())
    assert not outcomes[0].complete
    assert outcomes[0].total is None
    assert outcomes[0].report.abort_reason in ("too-few-clients", "too-few-signatures",
                                               "too-few-shares")  # fmt: skip
    assert not any(o.included for o in client_outcomes)
    mismatched = [o for o in client_outcomes if o.reason == "context-mismatch"]
    assert len(mismatched) == 3  # every client given model B refused it itself
    assert {o.task_digest for o in mismatched} == {secagg.context_digest(model_b).hex()}
    # Only the group given model A ran its function; it could not finish with half the clients.
    assert len(digests) == 3
    assert not set(digests) & {o.name for o in mismatched}
    assert {o.index for o in mismatched} == {2, 4, 6}  # the even slots got model B
    assert set(digests.values()) == {secagg.context_digest(model_a).hex()}


def test_pytrees_pack_without_pickle() -> None:
    tree = {"layer": {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, "b": np.int64(3)}
    data = secagg.pack_arrays(tree)
    assert data == secagg.pack_arrays({"b": np.int64(3), "layer": {"w": tree["layer"]["w"]}})
    back = secagg.unpack_arrays(data)
    assert np.array_equal(back["layer"]["w"], tree["layer"]["w"])
    assert back["layer"]["w"].dtype == np.float32
    assert back["b"] == 3
    with pytest.raises(secagg.errors.ConfigError, match="numbers only"):
        secagg.pack_arrays({"x": np.array([object()], dtype=object)})


def test_an_archive_holding_a_pickle_is_refused(tmp_path: Any) -> None:
    path = tmp_path / "evil.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(secagg.errors.ConfigError, match="not an array archive"):
        secagg.unpack_arrays(path.read_bytes())


def test_task_chunks_are_checked() -> None:
    from secagg.transport.codec import FrameError
    from secagg.transport.taskwire import TaskAssembler

    sid = bytes(32)
    frames = [pb.ServerFrame.FromString(f).task_chunk for f in task_frames(sid, b"abcdefg", 3)]
    asm = TaskAssembler(sid, 7, 100)
    asm.add(frames[0])
    with pytest.raises(FrameError, match="offset"):
        asm.add(frames[2])
    asm.add(frames[1])
    asm.add(frames[2])
    assert asm.complete
    assert asm.data() == b"abcdefg"
    with pytest.raises(FrameError, match="another session"):
        TaskAssembler(b"\x01" * 32, 7, 100).add(frames[0])
    with pytest.raises(FrameError, match="does not fit"):
        TaskAssembler(sid, 2, 100).add(frames[0])


def test_health_is_serving_while_accepting_rounds_and_not_serving_when_draining() -> None:
    """finish() (the last round runs on, no new one starts) turns health NOT_SERVING at once,
    while the server still answers, so an orchestrator stops routing new clients to it."""
    health_pb2 = pytest.importorskip("grpc_health.v1.health_pb2", reason="extra 'metrics'")
    from grpc_health.v1 import health_pb2_grpc

    async def check(port: int) -> int:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
            return int(reply.status)

    async def main() -> tuple[int, int, list[secagg.RoundOutcome]]:
        server = secagg.Server("127.0.0.1:0", clients=2, dim=4, insecure=True, join_timeout=30)
        run = asyncio.create_task(server.run(lambda _o: None))
        port = await _started(server, run)
        before = await check(port)
        server.aggregation_server.finish()
        await asyncio.sleep(0)  # the status update is a task on the loop
        after = await check(port)
        server.request_shutdown("test")
        return before, after, await run

    before, after, outcomes = asyncio.run(main())
    assert before == health_pb2.HealthCheckResponse.SERVING
    assert after == health_pb2.HealthCheckResponse.NOT_SERVING
    assert outcomes[0].report.status == "interrupted"
