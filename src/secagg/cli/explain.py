"""Why a client was not included, in words, with peer-sent text made safe for the console.

Reasons and details that came from the server are the server's text: they are stripped of
control characters and escaped for rich markup before anything prints them, so a detail such
as ``[/]`` or an ANSI escape shows as itself instead of crashing or repainting the terminal.
"""

from __future__ import annotations

from rich.markup import escape

from secagg.reasons import AbortReason, DropReason, OutcomeReason, RejectReason

__all__ = ["describe", "peer_text"]

_MAX_TEXT = 300

# Stable reason codes (secagg.reasons and the server's Reject reasons) -> what they mean for
# the person running the client. Unknown codes are shown as they came.
_MEANING: dict[str, str] = {
    RejectReason.DUPLICATE_NAME: "another client already joined under this name",
    DropReason.UNKNOWN_CLIENT: "this name is not in the server's identity registry",
    DropReason.BAD_SIGNATURE: "the server could not verify this client's identity signature",
    RejectReason.NO_ROUND: "the server has no round for this client to join",
    AbortReason.TOO_FEW_CLIENTS: "too few clients joined for the round to run",
    DropReason.WRONG_LENGTH: "this client's vector length differs from the round's",
    RejectReason.UNSUPPORTED_VERSION: "the server speaks another protocol version",
    DropReason.OVERSIZED: "a message was larger than the server accepts",
    DropReason.MALFORMED: "a message was malformed",
    DropReason.NO_RESPONSE: "the server stopped answering",
    DropReason.TRANSPORT: "the connection failed",
    AbortReason.SERVER_UNREACHABLE: "no server answered",
    AbortReason.TLS_MISMATCH: "one side speaks TLS and the other plaintext",
    AbortReason.MODE_MISMATCH: "the server offered a weaker threat model than this client requires",
    AbortReason.CONTEXT_MISMATCH: (
        "the server announced another context (model/task) than this client's"
    ),
    AbortReason.CONFIG_MISMATCH: "the round's settings differ from what this client expects",
    AbortReason.INVALID_INPUT: "this client's input does not fit the round",
    AbortReason.UNKNOWN_IDENTITY: "an identity needed for malicious mode is missing",
    AbortReason.INCONSISTENT_SETS: "the server contradicted itself about who takes part",
    AbortReason.TOO_FEW_SIGNATURES: "too few clients confirmed the same view of the round",
    AbortReason.TOO_FEW_NEIGHBOURS: "too few of this client's neighbours stayed in the round",
    AbortReason.SERVER_ABORTED: "the server aborted the round",
    OutcomeReason.NOT_INCLUDED: "the round finished without this client's input",
}


def peer_text(text: object, limit: int = _MAX_TEXT) -> str:
    """``text`` from the other side, safe to print through rich: one line, no control
    characters (shown as ``\\xNN``), markup escaped, cut at ``limit`` characters."""
    raw = str(text)[:limit]
    cleaned = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in raw)
    return escape(cleaned)


def describe(reason: str | None, detail: str) -> str:
    """One escaped line: what ``reason`` means, the code itself and the server's detail."""
    code = reason or "unknown"
    meaning = _MEANING.get(code)
    head = peer_text(code) if meaning is None else f"{meaning} ({peer_text(code)})"
    return f"{head}: {peer_text(detail)}" if detail else head
