"""A node's round session between Flower messages, kept in the node's ``Context.state``.

Flower may run consecutive messages of one node on different workers (Ray actors); only
``context.state`` travels with the node, so the session is stored there as the versioned bytes of
:meth:`ClientSession.save` and restored for each step. The bytes of a live session hold the
round's secrets: ``context.state`` is node-local ("never leaves the system it's running from").
Only the newest snapshot is kept (a stored step number that would go backwards is refused),
since answering a step twice from an older snapshot could reveal both shares of a neighbour.
"""

from __future__ import annotations

from flwr.app import ConfigRecord, Context

from secagg.errors import SavedSessionError
from secagg.protocol.client.session import ClientSession
from secagg.protocol.policy import ClientPolicy

__all__ = ["STATE_KEY", "clear_session", "load_session", "save_session"]

STATE_KEY = "secagg-session"


def save_session(context: Context, session: ClientSession) -> None:
    """Store ``session`` as this node's current round."""
    record = context.state.config_records.get(STATE_KEY)
    if record is not None and record.get("session-id") == session.config.session_id:
        held = record.get("session")
        if isinstance(held, bytes) and ClientSession.saved_step(held) > session.step:
            raise SavedSessionError(
                "refusing to store an older snapshot of this node's session over a newer one"
            )
    context.state.config_records[STATE_KEY] = ConfigRecord(
        {"session-id": session.config.session_id, "session": session.save()}
    )


def load_session(context: Context, policy: ClientPolicy | None = None) -> ClientSession | None:
    """This node's current round session, or None when it has none."""
    record = context.state.config_records.get(STATE_KEY)
    if record is None:
        return None
    blob = record.get("session")
    if not isinstance(blob, bytes):
        raise SavedSessionError("this node's stored secagg session is not bytes")
    return ClientSession.restore(blob, policy=policy)


def clear_session(context: Context) -> None:
    """Forget this node's round (it ended or aborted)."""
    context.state.config_records.pop(STATE_KEY, None)
