"""An in-process Flower Grid for fast tests: each message runs the node's ClientApp directly.

Each node keeps one ``Context`` across messages, as Flower's engine does. ``silent`` nodes
never answer (as if their replies timed out); ``outgoing`` records every reply a node sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import count
from typing import Any

from flwr.app import Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.common.serde import context_from_proto, context_to_proto
from flwr.proto.message_pb2 import Context as ProtoContext
from flwr.serverapp import Grid
from flwr.supercore.task_identity import TaskIdentity

_ids = count(1)


class LocalGrid(Grid):
    def __init__(self, app: ClientApp, node_configs: dict[int, dict[str, Any]]) -> None:
        # Messages are stamped with the process's task identity (Flower's runtime sets it).
        TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1
        self.app = app
        self.contexts = {
            node: Context(
                run_id=1, node_id=node, node_config=cfg, state=RecordDict(), run_config={}
            )
            for node, cfg in node_configs.items()
        }
        self.silent: set[int] = set()
        # True: every message runs on a copy of the node's state made through Flower's own
        # serialization, as when consecutive messages run on different workers.
        self.fresh_workers = False
        self.outgoing: list[Message] = []
        self.calls: list[list[Message]] = []

    def set_run(self, run: Any) -> None:  # pragma: no cover - unused
        pass

    @property
    def run(self) -> Any:  # pragma: no cover - unused
        return None

    def create_message(self, *args: Any, **kwargs: Any) -> Message:  # pragma: no cover
        raise NotImplementedError

    def get_node_ids(self) -> Iterable[int]:
        return list(self.contexts)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:  # pragma: no cover
        raise NotImplementedError

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:  # pragma: no cover
        raise NotImplementedError

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        batch = list(messages)
        self.calls.append(batch)
        replies = []
        for msg in batch:
            assert msg.metadata.reply_to_message_id == ""
            msg.metadata.__dict__["_message_id"] = f"m{next(_ids)}"  # the SuperLink would
            node = msg.metadata.dst_node_id
            if node in self.silent:
                continue
            context = self.contexts[node]
            if self.fresh_workers:
                wire = context_to_proto(context).SerializeToString()
                context = context_from_proto(ProtoContext.FromString(wire))
                self.contexts[node] = context
            try:
                reply = self.app(msg, context)
            except Exception as exc:  # what Flower's engine does too
                reply = Message(Error(code=2, reason=f"{type(exc).__name__}"), reply_to=msg)
            self.outgoing.append(reply)
            replies.append(reply)
        return replies
