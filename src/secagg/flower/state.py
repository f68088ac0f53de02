"""A node's round session between Flower messages, kept in the node's ``Context.state``.

Flower may run consecutive messages of one node on different workers; only ``context.state``
travels with the node. TEMPORARY: until ``ClientSession.save()/restore()`` (branch ``client``)
lands, the session object lives in a module-level dict keyed by node id, which works only while
one worker process serves the node; ``context.state`` already holds the session id.
"""

from __future__ import annotations

from flwr.app import ConfigRecord, Context

from secagg.protocol.client.session import ClientSession

__all__ = ["STATE_KEY", "clear_session", "load_session", "save_session"]

STATE_KEY = "secagg-session"
_SESSIONS: dict[int, ClientSession] = {}  # TEMPORARY, see the module docstring


def save_session(context: Context, session: ClientSession) -> None:
    """Store ``session`` as this node's current round."""
    _SESSIONS[context.node_id] = session
    context.state.config_records[STATE_KEY] = ConfigRecord(
        {"session-id": session.config.session_id}
    )


def load_session(context: Context) -> ClientSession | None:
    """This node's current round session, or None when it has none."""
    record = context.state.config_records.get(STATE_KEY)
    session = _SESSIONS.get(context.node_id)
    if record is None or session is None or record.get("session-id") != session.config.session_id:
        return None
    return session


def clear_session(context: Context) -> None:
    """Forget this node's round (it ended or aborted)."""
    _SESSIONS.pop(context.node_id, None)
    context.state.config_records.pop(STATE_KEY, None)
