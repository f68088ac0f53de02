"""Misbehaving network peers, run as separate processes by the transport tests.

``python adversary.py MODE HOST:PORT`` exits 0 when the server reacted as expected:

- ``tcp-garbage``: raw TCP bytes that are not HTTP/2.
- ``grpc-garbage-hello``: a gRPC stream whose first frame is not a ClientFrame: gets Reject.
- ``oversized-hello``: a first frame larger than the server's limit: stream refused.
- ``garbage-after-welcome NAME DIM``: registers, then sends bytes that are no ClientFrame.
- ``oversized-after-welcome NAME DIM``: registers, then sends a frame over the limit
  (100 kB; the tests run the server with a 64 KiB limit).
- ``wrong-sender NAME DIM``: registers, then advertises keys under another client's index.
- ``duplicate NAME DIM``: joins honestly as NAME and, once in, opens a second stream as NAME,
  which must be rejected with ``duplicate-name`` while the first is still included.
- ``impostor NAME DIM [KEYFILE]``: says Hello as NAME, unsigned or signed over the challenge
  with the identity in KEYFILE (not NAME's); must be rejected with ``bad-signature``.
- ``vanish NAME DIM``: registers, then sends half a masked-input and cuts the stream.
- ``stall-upload NAME DIM``: registers, sends half a masked-input and then nothing.
- ``squat NAME DIM``: says Hello and then nothing, reading (and printing) every frame it gets
  until the server closes the stream; exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys

import grpc
import numpy as np

from secagg.identity.registry import load_identity
from secagg.protocol.config import RoundConfig
from secagg.protocol.policy import ClientPolicy
from secagg.transport import secagg_pb2 as pb
from secagg.transport.client import Client
from secagg.transport.hello import hello_frame
from secagg.transport.service import METHOD


def _hello(name: str, dim: int) -> bytes:
    return pb.ClientFrame(
        hello=pb.Hello(protocol_version=1, name=name, dim=dim)
    ).SerializeToString()


async def _open(address: str) -> tuple[grpc.aio.Channel, grpc.aio.StreamStreamCall]:
    channel = grpc.aio.insecure_channel(address)
    return channel, channel.stream_stream(METHOD)()


async def _read(call: grpc.aio.StreamStreamCall) -> pb.ServerFrame | None:
    try:
        data = await asyncio.wait_for(call.read(), 60)
    except grpc.aio.AioRpcError as exc:
        print(f"stream error {exc.code().name}", flush=True)
        return None
    if data is grpc.aio.EOF:
        print("stream closed", flush=True)
        return None
    frame = pb.ServerFrame.FromString(data)
    kind = frame.WhichOneof("body")
    reason = getattr(frame, kind).reason if kind in ("abort", "reject") else ""
    print(f"got {kind} {reason}".rstrip(), flush=True)
    return frame


async def _after_challenge(call: grpc.aio.StreamStreamCall) -> pb.ServerFrame | None:
    """The server's first frame is always a Challenge: skip it, return the next one."""
    frame = await _read(call)
    if frame is None or frame.WhichOneof("body") != "challenge":
        return frame
    return await _read(call)


async def _registered(address: str, name: str, dim: int):  # type: ignore[no-untyped-def]
    channel, call = await _open(address)
    first = await _read(call)
    assert first is not None
    assert first.WhichOneof("body") == "challenge", first
    await call.write(_hello(name, dim))
    frame = await _read(call)
    assert frame is not None
    assert frame.WhichOneof("body") == "welcome", frame
    config = RoundConfig.decode(frame.welcome.config, allow_unsafe=True)
    return channel, call, frame.welcome.index, config


async def _until_closed(call: grpc.aio.StreamStreamCall) -> None:
    while True:
        frame = await _read(call)
        if frame is None:
            return


async def main(mode: str, address: str, args: list[str]) -> int:
    if mode == "tcp-garbage":
        host, port = address.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(os.urandom(4096))
            sock.sendall(b"GET / HTTP/1.1\r\n\r\n" + b"\xff" * 1000)
            sock.settimeout(5)
            with contextlib.suppress(TimeoutError, ConnectionError):
                sock.recv(1024)
        return 0
    if mode == "grpc-garbage-hello":
        channel, call = await _open(address)
        await call.write(b"\xff\xff\xff\x07garbage" + os.urandom(100))
        frame = await _after_challenge(call)
        await channel.close()
        return 0 if frame is not None and frame.WhichOneof("body") == "reject" else 1
    if mode == "oversized-hello":
        channel, call = await _open(address)
        with contextlib.suppress(grpc.aio.AioRpcError):
            await call.write(_hello("big", 10) + os.urandom(300_000))
        frame = await _after_challenge(call)
        await channel.close()
        return 0 if frame is None or frame.WhichOneof("body") == "reject" else 1
    name, dim = args[0], int(args[1])
    if mode == "impostor":
        channel, call = await _open(address)
        challenge = await _read(call)
        assert challenge is not None
        identity = load_identity(args[2]) if len(args) > 2 else None
        hello = hello_frame(1, name, dim, challenge.challenge.nonce, identity)
        await call.write(hello.SerializeToString())
        frame = await _read(call)
        await channel.close()
        reason = None if frame is None else frame.reject.reason
        print(f"impostor {name}: {reason}", flush=True)
        return 0 if reason == "bad-signature" else 1
    if mode == "squat":
        channel, call = await _open(address)
        await call.write(_hello(name, dim))
        await _until_closed(call)
        await channel.close()
        return 0
    if mode == "duplicate":
        second: list[str] = []

        async def intrude() -> None:
            channel, call = await _open(address)
            await call.write(_hello(name, dim))
            frame = await _after_challenge(call)
            second.append("" if frame is None else frame.reject.reason)
            await channel.close()

        tasks: list[asyncio.Task[None]] = []

        def progress(line: str) -> None:
            if line.startswith("joined") and not tasks:
                tasks.append(asyncio.get_running_loop().create_task(intrude()))

        client = Client(
            address,
            name=name,
            insecure=True,
            progress=progress,
            timeout=60,
            policy=ClientPolicy(allow_weak_parameters=True),  # the test's t = 5 of 9
        )
        outcome = await client.submit(np.arange(dim, dtype=np.uint32))
        await asyncio.gather(*tasks)
        print(f"first {outcome.included} {outcome.reason}; second {second}", flush=True)
        return 0 if outcome.included and second == ["duplicate-name"] else 1
    channel, call, index, config = await _registered(address, name, dim)
    if mode == "garbage-after-welcome":
        await call.write(b"\x0a\xff\xff\xff\xff\x0f" + os.urandom(64))
    elif mode == "oversized-after-welcome":
        with contextlib.suppress(grpc.aio.AioRpcError):
            await call.write(os.urandom(100_000))
    elif mode == "wrong-sender":
        keys = pb.PublicKeys(enc_public=os.urandom(32), mask_public=os.urandom(32))
        other = 1 if index != 1 else 2
        frame = pb.ClientFrame(
            advertise_keys=pb.AdvertiseKeys(session_id=config.session_id, sender=other, keys=keys)
        )
        await call.write(frame.SerializeToString())
    elif mode == "stall-upload":
        chunk = pb.MaskedInputChunk(
            session_id=config.session_id, sender=index, dim=dim, word_bytes=4, offset=0,
            words=bytes(4 * (dim // 2)),
        )  # fmt: skip
        await call.write(pb.ClientFrame(masked_input=chunk).SerializeToString())
    elif mode == "vanish":
        chunk = pb.MaskedInputChunk(
            session_id=config.session_id,
            sender=index,
            dim=dim,
            word_bytes=4,
            offset=0,
            words=bytes(4 * (dim // 2)),
        )
        await call.write(pb.ClientFrame(masked_input=chunk).SerializeToString())
        await channel.close()
        return 0
    else:
        print(f"unknown mode {mode}", file=sys.stderr)
        return 2
    await _until_closed(call)
    await channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3:])))
