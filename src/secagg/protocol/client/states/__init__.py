"""The client's round states, one class per state (PROTOCOL.md, "Client states").

Semi-honest chain: New -> AwaitKeys -> AwaitShares -> AwaitUnmask -> AwaitResult -> Done.
Malicious chain: NewSigned -> AwaitCommitments -> AwaitSignedKeys -> AwaitSharesSigned ->
AwaitConsistency -> AwaitSignedUnmask -> AwaitResult -> Done. Any state may end in Aborted.
"""

from secagg.protocol.client.states.advertise import AwaitCommitments, New, NewSigned
from secagg.protocol.client.states.base import Aborted, Done, State, Step
from secagg.protocol.client.states.masked_input import AwaitShares, AwaitSharesSigned
from secagg.protocol.client.states.share_keys import AwaitKeys, AwaitSignedKeys
from secagg.protocol.client.states.unmasking import (
    AwaitConsistency,
    AwaitResult,
    AwaitSignedUnmask,
    AwaitUnmask,
)

__all__ = [
    "Aborted",
    "AwaitCommitments",
    "AwaitConsistency",
    "AwaitKeys",
    "AwaitResult",
    "AwaitShares",
    "AwaitSharesSigned",
    "AwaitSignedKeys",
    "AwaitSignedUnmask",
    "AwaitUnmask",
    "Done",
    "New",
    "NewSigned",
    "State",
    "Step",
]
