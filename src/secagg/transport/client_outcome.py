"""How a client's round ended (:class:`Outcome`), and the failures that end it early."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from secagg.crypto.entropy import default_random

__all__ = [
    "SESSION_MEMORY",
    "ConnectFailed",
    "Failed",
    "NotReached",
    "Outcome",
    "first_time",
    "jitter",
]

# Sessions this process took part in, per client name: a client never joins one session id
# twice. Bounded (oldest forgotten first); the protocol's own binding of every signature to
# the session's fresh nonces and keys is what makes a replay useless, this is a second check.
SESSION_MEMORY = 4096
_joined: OrderedDict[tuple[str, bytes], None] = OrderedDict()
_joined_lock = threading.Lock()


def first_time(name: str, session_id: bytes) -> bool:
    """Record that ``name`` joins ``session_id``; False if it already did in this process."""
    key = (name, session_id)
    with _joined_lock:
        if key in _joined:
            return False
        _joined[key] = None
        while len(_joined) > SESSION_MEMORY:
            _joined.popitem(last=False)
        return True


@dataclass(frozen=True)
class Outcome:
    """How a client's round ended: ``included`` in the sum, or not and why."""

    included: bool
    name: str
    reason: str | None = None
    detail: str = ""
    index: int | None = None
    round_id: str | None = None
    num_clients: int = 0
    num_included: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    seconds: float = 0.0
    round: int = 0  # the server's round number (0: never welcomed)
    task_digest: str | None = None  # hex digest of the task received for the round, if any

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "included": self.included,
            "name": self.name,
            "reason": self.reason,
            "detail": self.detail,
            "index": self.index,
            "round_id": self.round_id,
            "num_clients": self.num_clients,
            "num_included": self.num_included,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "seconds": self.seconds,
            "round": self.round,
            "task_digest": self.task_digest,
        }


class Failed(Exception):  # noqa: N818 - internal control flow
    """The round ended for this client with ``reason`` (a reason code) and ``detail``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class NotReached(Failed):
    """No server frame arrived because nothing answered at the address (worth a retry)."""


class ConnectFailed(NotReached):
    """The connection failed before the server's first frame, for a reason that may pass
    (overload, a reset): nothing of a round happened yet, so it is retried."""


def jitter() -> float:
    """A factor in [0.5, 1.0) from the OS CSPRNG, so that many waiting clients spread out."""
    return 0.5 + int.from_bytes(default_random().random_bytes(4), "big") / 2**33
