"""Client session states."""

from __future__ import annotations

from enum import Enum

__all__ = ["ClientState"]


class ClientState(Enum):
    """Where a client is in the round. Each state names the message it waits for next.

    The public name of the state objects of :mod:`secagg.protocol.client.states`: each class
    maps to one value (the semi-honest and malicious variants of a step share it).
    """

    NEW = "new"  # start() not called yet
    AWAIT_COMMITMENTS = "await-commitments"  # malicious: sent AdvertiseKeys, waits for C list
    AWAIT_KEYS = "await-keys"  # sent AdvertiseKeys (malicious: RevealNonce), waits for keys
    AWAIT_SHARES = "await-shares"  # sent EncryptedShares, waits for SharesDelivery
    AWAIT_CONSISTENCY = "await-consistency"  # malicious: sent MaskedInput, waits for U3 to sign
    AWAIT_UNMASK = "await-unmask"  # sent MaskedInput (malicious: its U3 signature), waits for U3
    AWAIT_RESULT = "await-result"  # sent UnmaskResponse
    DONE = "done"  # told it was included
    ABORTED = "aborted"
