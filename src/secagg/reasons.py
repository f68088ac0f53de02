"""Stable reason codes for dropped clients and aborted rounds.

These strings appear in reports and on the wire; never rename a member's value.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["AbortReason", "DropReason", "OutcomeReason", "RejectReason"]


class DropReason(StrEnum):
    """Why the server stopped counting a client."""

    NO_RESPONSE = "no-response"
    MALFORMED = "malformed-message"
    WRONG_SESSION = "wrong-session"
    WRONG_ROUND = "wrong-round"
    DUPLICATE = "duplicate-message"
    WRONG_LENGTH = "wrong-length"
    UNKNOWN_CLIENT = "unknown-client"
    INVALID_KEY = "invalid-key"
    DUPLICATE_KEY = "duplicate-key"
    BAD_SIGNATURE = "bad-signature"
    BAD_SHARES = "bad-shares"
    INCONSISTENT_SHARES = "inconsistent-shares"
    CLIENT_ABORTED = "client-aborted"
    NOT_SELECTED = "not-selected"
    TRANSPORT = "transport-error"
    OVERSIZED = "oversized-message"
    BAD_REVEAL = "bad-reveal"
    NODE_ERROR = "node-error"  # Flower: the node answered a step with an error reply


class AbortReason(StrEnum):
    """Why a round (server side) or a client session ended without a result."""

    TOO_FEW_CLIENTS = "too-few-clients"
    TOO_FEW_NEIGHBOURS = "too-few-neighbours"
    TOO_FEW_SHARES = "too-few-shares"
    INCONSISTENT_SHARES = "inconsistent-shares"
    WRONG_SESSION = "wrong-session"
    UNEXPECTED_MESSAGE = "unexpected-message"
    MALFORMED = "malformed-message"
    INCONSISTENT_SETS = "inconsistent-sets"
    BOTH_SHARES_REQUESTED = "both-shares-requested"
    DUPLICATE_KEY = "duplicate-key"
    INVALID_KEY = "invalid-key"
    BAD_SIGNATURE = "bad-signature"
    TOO_FEW_SIGNATURES = "too-few-signatures"
    UNKNOWN_IDENTITY = "unknown-identity"
    CONTEXT_MISMATCH = "context-mismatch"
    DECRYPTION_FAILED = "decryption-failed"
    SERVER_ABORTED = "server-aborted"
    MODE_MISMATCH = "mode-mismatch"  # a client holding an identity was offered semi-honest mode
    INVALID_INPUT = "invalid-input"  # this client's own vector does not fit the round
    CONFIG_MISMATCH = "config-mismatch"  # the round's D or b differs from what the client expects
    SERVER_UNREACHABLE = "server-unreachable"  # nothing answered at the address (in --wait)
    TLS_MISMATCH = "tls-mismatch"  # plaintext client and TLS server, or the other way round
    SERVER_SHUTDOWN = "server-shutdown"
    TOO_FEW_CONTRIBUTORS = "too-few-contributors"
    MISSING_REVEAL = "missing-reveal"
    BAD_REVEAL = "bad-reveal"
    REPEATED_SESSION = "repeated-session"
    UNSAFE_PARAMETERS = "unsafe-parameters"  # the client's own floor refused n, k, t
    SPEC_MISMATCH = "spec-mismatch"  # the round announces another spec than the client encoded


class RejectReason(StrEnum):
    """Why the server refused a Hello (sent in ``Reject``; a refused client never joined)."""

    NO_ROUND = "no-round"
    DUPLICATE_NAME = "duplicate-name"
    UNSUPPORTED_VERSION = "unsupported-version"
    SERVER_FULL = "server-full"  # the lobby holds max_waiting joiners already (overload)


class OutcomeReason(StrEnum):
    """Why a client's round ended without its input in the sum, when no other enum says it.

    A client :class:`~secagg.transport.client.Outcome` carries one of these or a value of
    :class:`AbortReason`, :class:`DropReason` or :class:`RejectReason`.
    """

    NOT_INCLUDED = "not-included"  # the round completed without this client's input
    REJECTED = "rejected"  # the server refused the Hello and gave no reason
