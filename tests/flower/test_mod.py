"""secagg_mod on its own: what it passes through, and what it refuses from a server."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("flwr", reason="the flower extra is not installed")

from flwr.app import ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from secagg.errors import MalformedMessageError, RemoteProtocolError
from secagg.flower import secagg_mod
from secagg.flower.wire import RECORD_KEY, STEP_FRAMES, frames_record
from tests.flower import apps


@pytest.fixture(autouse=True)
def _identity() -> None:
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1


def _context() -> Context:
    return Context(1, 7, {"partition-id": 0, "num-partitions": 1}, RecordDict(), {})


def _call(msg: Message, seen: list[Message]) -> Any:
    def call_next(m: Message, ctx: Context) -> Message:
        seen.append(m)
        return Message(RecordDict({"echo": ConfigRecord({"ok": True})}), reply_to=m)

    return secagg_mod(msg, _context(), call_next)


@pytest.mark.parametrize("kind", [MessageType.EVALUATE, MessageType.QUERY, MessageType.TRAIN])
def test_messages_without_a_secagg_record_pass_through_untouched(kind: str) -> None:
    msg = Message(RecordDict({"arrays": apps.initial_arrays()}), 3, kind)
    seen: list[Message] = []
    reply = _call(msg, seen)
    assert seen == [msg]
    assert reply.content["echo"]["ok"] is True


@pytest.mark.adversarial
@pytest.mark.parametrize(
    "record",
    [
        ConfigRecord({"v": 2, "step": "setup"}),
        ConfigRecord({"v": 1, "step": "setup", "config": b"junk"}),
        ConfigRecord({"v": 1, "step": "teleport"}),
    ],
    ids=["version", "bad-config", "unknown-step"],
)
def test_malformed_setup_steps_raise_a_typed_error_before_training(record: ConfigRecord) -> None:
    msg = Message(RecordDict({"arrays": apps.initial_arrays(), RECORD_KEY: record}), 3, "train")
    seen: list[Message] = []
    with pytest.raises(MalformedMessageError):
        _call(msg, seen)
    assert seen == []  # the user's function never ran


@pytest.mark.adversarial
def test_a_step_for_a_round_this_node_has_no_session_for_is_refused() -> None:
    record = frames_record([b"\x00"], step=STEP_FRAMES)
    msg = Message(RecordDict({RECORD_KEY: record}), 3, "train")
    with pytest.raises(RemoteProtocolError, match="no session"):
        _call(msg, [])
