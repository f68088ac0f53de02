"""Who waits to join a round: Hello validation, unique names and a bounded waiting list.

A Hello is checked against what the server declared (protocol version, the round's D, the
registry); no joiner decides anything for the others. Waiting clients are taken first come,
first served; the driver also takes them to fill the slot of a welcomed client that went idle
or vanished before advertising its keys (see :mod:`secagg.transport.server`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from secagg.identity.registry import IdentityRegistryFile
from secagg.protocol.config import PROTOCOL_VERSION, Mode, RoundConfig
from secagg.reasons import DropReason, RejectReason
from secagg.transport import secagg_pb2 as pb
from secagg.transport.codec import MAX_NAME_LENGTH, FrameError, parse_client_frame
from secagg.transport.hello import new_challenge, verify_hello

__all__ = ["ClientConn", "Lobby", "reject_frame"]


def reject_frame(reason: str, detail: str) -> bytes:
    """A serialized ``Reject`` frame."""
    return pb.ServerFrame(reject=pb.Reject(reason=reason, detail=detail)).SerializeToString()


class ClientConn:
    """One client stream: its name, its slot (index) once welcomed, and its outgoing queue."""

    def __init__(self, peer: str) -> None:
        self.peer = peer
        self.name = ""
        self.dim = 0
        self.index: int | None = None
        self.round_no = 0
        self.outq: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.closed = False
        self.config: RoundConfig | None = None
        self.nonce = new_challenge()  # this stream's Challenge, covered by a signed Hello

    def send(self, data: bytes) -> int:
        """Queue ``data`` for the client; returns its size (0 once the stream is closed)."""
        if self.closed:
            return 0
        self.outq.put_nowait(data)
        return len(data)

    def close(self) -> None:
        """End the stream after what is queued."""
        if not self.closed:
            self.closed = True
            self.outq.put_nowait(None)

    def refuse(self, reason: str, detail: str) -> None:
        """Send a Reject and end the stream."""
        self.send(reject_frame(reason, detail))
        self.close()


class Lobby:
    """Validated joiners waiting for a round, and the names in use (lobby or round)."""

    def __init__(
        self,
        *,
        dim: int,
        capacity: int,
        max_message_bytes: int,
        registry: IdentityRegistryFile | None = None,
        mode: Mode = "semi-honest",
        log: Callable[[str], None] = lambda _line: None,
    ) -> None:
        self.dim = dim
        self.mode = mode
        self.capacity = capacity
        self.max_message_bytes = max_message_bytes
        self.registry = registry
        self.log = log
        self.accepting = True
        self.waiting: list[ClientConn] = []
        self.names: set[str] = set()
        self.changed = asyncio.Event()

    def __len__(self) -> int:
        return len(self.waiting)

    def admit(self, conn: ClientConn, data: bytes) -> bytes | None:
        """Validate a Hello and queue ``conn``; returns a Reject frame, or None when admitted."""
        try:
            frame = parse_client_frame(data, self.max_message_bytes)
        except FrameError as exc:
            return reject_frame(exc.reason.value, exc.detail)
        if frame.WhichOneof("body") != "hello":
            return reject_frame(DropReason.MALFORMED.value, "the first frame must be Hello")
        hello = frame.hello
        name = hello.name
        refusal = self._check_hello(conn, hello)
        if refusal is not None:
            return refusal
        if name in self.names:
            self.log(f"rejected a second connection for name {name!r}")
            return reject_frame(
                RejectReason.DUPLICATE_NAME.value, "a client with this name is already registered"
            )
        if not self.accepting:
            return reject_frame(RejectReason.NO_ROUND.value, "the server takes no more clients")
        if len(self.waiting) >= self.capacity:
            self.log(f"refused {name!r}: {len(self.waiting)} clients already wait (server-full)")
            return reject_frame(
                RejectReason.SERVER_FULL.value,
                f"{len(self.waiting)} clients already wait for a round (the server's limit); "
                "retry later",
            )
        conn.name = name
        conn.dim = self.dim  # a Hello with D = 0 or another D was handled above
        self.names.add(name)
        self.waiting.append(conn)
        self.changed.set()
        return None

    def _check_hello(self, conn: ClientConn, hello: pb.Hello) -> bytes | None:
        """A Reject frame for a Hello this server cannot take (version, name, D, identity)."""
        name = hello.name
        if hello.protocol_version != PROTOCOL_VERSION:
            return reject_frame(
                RejectReason.UNSUPPORTED_VERSION.value, f"server speaks version {PROTOCOL_VERSION}"
            )
        if not 1 <= len(name) <= MAX_NAME_LENGTH or not name.isprintable():
            return reject_frame(
                DropReason.MALFORMED.value,
                f"name must be 1..{MAX_NAME_LENGTH} printable characters",
            )
        # 0 means "the round's D": a client encoding with the spec Welcome announces learns D
        # only from Welcome.
        dim = int(hello.dim) or self.dim
        if dim != self.dim:
            # D is the server's declaration, never a joiner's: a wrong D is refused alone.
            return reject_frame(
                DropReason.WRONG_LENGTH.value,
                f"this server sums vectors of D={self.dim}; the Hello says D={hello.dim}",
            )
        entry = None if self.registry is None else self.registry.by_name(name)
        if self.registry is not None and entry is None:
            return reject_frame(DropReason.UNKNOWN_CLIENT.value, "this name is not in the registry")
        # Malicious mode: only the holder of the name's registered key takes the name. Checked
        # before the duplicate check, so an impostor neither takes a name nor learns it is taken.
        if (
            self.mode == "malicious"
            and entry is not None
            and not verify_hello(entry.public_key, conn.nonce, hello)
        ):
            self.log(f"rejected a Hello for name {name!r} not signed by its registered identity")
            return reject_frame(
                DropReason.BAD_SIGNATURE.value,
                "the Hello is not signed over this stream's challenge by the identity key "
                "registered for this name",
            )
        return None

    def remove(self, conn: ClientConn) -> None:
        """Take a waiting client out (its stream ended); frees its name."""
        if conn in self.waiting:
            self.waiting.remove(conn)
            self.names.discard(conn.name)
            self.changed.set()

    def release(self, conn: ClientConn) -> None:
        """Free the name of a client that left a round."""
        self.names.discard(conn.name)

    def take(self, count: int) -> list[ClientConn]:
        """The first ``count`` live waiting clients, taken out of the lobby."""
        taken: list[ClientConn] = []
        while len(taken) < count:
            conn = self.pop()
            if conn is None:
                break
            taken.append(conn)
        return taken

    def pop(self) -> ClientConn | None:
        """The longest-waiting live client, taken out of the lobby (None if nobody waits)."""
        while self.waiting:
            conn = self.waiting.pop(0)
            if not conn.closed:
                return conn
            self.names.discard(conn.name)
        return None

    def live(self) -> int:
        """How many clients wait (a stream that ends is taken out at once, so all are live)."""
        return len(self.waiting)

    def refuse_all(self, reason: str, detail: str) -> None:
        """Send every waiting client a Reject with ``reason`` and empty the lobby."""
        for conn in self.waiting:
            conn.refuse(reason, detail)
            self.names.discard(conn.name)
        self.waiting.clear()
        self.changed.set()
