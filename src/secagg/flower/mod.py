"""``secagg_mod``: the client side of secure aggregation inside a Flower ClientApp.

The protocol's steps arrive as ``train`` messages carrying a secagg record (see
:mod:`secagg.flower.wire`), because a ClientApp routes only the message types it registered.
On the first step the mod calls the user's train function with the strategy's message, encodes
the returned model (as a difference to the global model it was sent) and the example count with
the round's :class:`~secagg.encoding.Encoder`, and keeps only the masked ring vector: the
user's reply content never leaves the node. Train messages without a secagg record (and every
other message type) pass through untouched.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from flwr.app import Context, Message, MessageType, RecordDict
from flwr.clientapp.typing import ClientAppCallable, Mod

from secagg.encoding import Encoder
from secagg.encoding.announce import spec_from_fields
from secagg.encoding.round_spec import RoundSpec
from secagg.errors import EncodingError, MalformedMessageError, RemoteProtocolError, TransportError
from secagg.flower.state import clear_session, load_session, save_session
from secagg.flower.wire import (
    RECORD_KEY,
    STEP_FRAMES,
    STEP_SETUP,
    SetupStep,
    frames_record,
    model_tree,
    only_array_record,
    parse_setup,
    secagg_record,
)
from secagg.protocol.client.session import ClientSession
from secagg.protocol.messages import ClientMessage, MaskedInput
from secagg.protocol.policy import ClientPolicy
from secagg.reasons import AbortReason
from secagg.transport.codec import (
    DEFAULT_CHUNK_BYTES,
    client_frame,
    masked_input_frames,
    parse_server_frame,
    server_message,
)

__all__ = ["make_secagg_mod", "secagg_mod"]

_log = logging.getLogger(__name__)


def secagg_mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Flower client mod running this node's part of a secure-aggregation round.

    Use as ``ClientApp(mods=[secagg_mod])`` or ``@app.train(mods=[secagg_mod])``. The node
    accepts a round's (n, k, t) only if the default :class:`ClientPolicy` does (see
    :func:`make_secagg_mod` for another floor). Raises a :mod:`secagg.errors` error on a
    malformed step (Flower turns it into an error reply, and the server drops this node).
    """
    return _handle(msg, context, call_next, None)


def make_secagg_mod(*, policy: ClientPolicy | None = None) -> Mod:
    """A :func:`secagg_mod` whose node judges round parameters with its own ``policy``.

    The policy is the node's code, never the server's word: e.g. a small federation whose
    rounds must survive dropouts with n = 10 needs a floor other than the default 2^-40 at
    5% corrupt nodes.
    """

    def mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        return _handle(msg, context, call_next, policy)

    mod.__doc__ = secagg_mod.__doc__
    return mod


def _handle(
    msg: Message, context: Context, call_next: ClientAppCallable, policy: ClientPolicy | None
) -> Message:
    if _category(msg) != MessageType.TRAIN or not msg.has_content():
        return call_next(msg, context)
    record = secagg_record(msg.content)
    if record is None:
        return call_next(msg, context)
    step = record.get("step")
    if step == STEP_SETUP:
        setup = parse_setup(record)
        del msg.content.config_records[RECORD_KEY]  # the user's function never sees it
        reply = call_next(msg, context)
        if reply.has_error():
            clear_session(context)
            return reply  # the server drops this node; nothing of its data was sent
        frames = _start(msg, reply, context, setup, policy)
    elif step == STEP_FRAMES:
        frames = _continue(record, context, policy)
    else:
        raise MalformedMessageError(f"unknown secagg step {step!r}")
    return Message(RecordDict({RECORD_KEY: frames_record(frames)}), reply_to=msg)


def _category(msg: Message) -> str:
    return msg.metadata.message_type.partition(".")[0]


def _start(
    msg: Message, reply: Message, context: Context, setup: SetupStep, policy: ClientPolicy | None
) -> list[bytes]:
    """Encode the user's update, open the round's session and return its first frame."""
    clear_session(context)  # a new round replaces whatever an earlier one left
    _, sent = only_array_record(msg.content, "the train message")
    _, trained = only_array_record(reply.content, "the train function's reply")
    if set(trained.keys()) != set(sent.keys()):
        raise EncodingError(
            "the train function's ArrayRecord has other keys than the global model it was sent"
        )
    base = {k: a.numpy() for k, a in sent.items()}
    delta = {k: _difference(a.numpy(), base[k], k) for k, a in trained.items()}
    weight, metrics = _weight_and_metrics(reply.content, setup)
    tree = model_tree(delta, metrics)
    encoder = Encoder.from_round_spec(setup.spec, tree)
    data = encoder.encode(tree, weight=weight)
    session = ClientSession(
        setup.config, setup.index, data, expected_spec_digest=encoder.spec_digest, policy=policy
    )
    first = session.start()
    if not session.aborted:
        save_session(context, session)
    return _frames(first)


def _difference(trained: npt.NDArray[Any], sent: npt.NDArray[Any], key: str) -> npt.NDArray[Any]:
    if trained.shape != sent.shape:
        raise EncodingError(
            f"array {key!r} of the train function's reply has shape {trained.shape}; the "
            f"global model's has {sent.shape}"
        )
    return np.asarray(trained, dtype=np.float64) - np.asarray(sent, dtype=np.float64)


def _weight_and_metrics(content: RecordDict, setup: SetupStep) -> tuple[float, dict[str, float]]:
    """The example count and the metrics to aggregate securely (scaled into [-clip, clip]).

    Metrics not named by the server are dropped here, never sent: say which, once per round.
    """
    records = content.metric_records
    if len(records) != 1:
        raise EncodingError(
            f"the train function's reply must hold exactly one MetricRecord, has {len(records)}"
        )
    values: Mapping[str, Any] = next(iter(records.values()))
    weight = _scalar(values, setup.weight_key)
    scale = _spec_clip(setup) / setup.metric_clip
    metrics = {name: _scalar(values, name) * scale for name in setup.metrics}
    dropped = sorted(set(values) - {setup.weight_key, *setup.metrics})
    if dropped:
        _log.warning(
            "secagg: metrics %s are not aggregated securely in this round and were not sent "
            "(name them in SecAggGrid(metrics=...) to aggregate them)",
            dropped,
        )
    return weight, metrics


def _scalar(values: Mapping[str, Any], name: str) -> float:
    value = values.get(name)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise EncodingError(f"the train function's reply needs a numeric metric {name!r}")
    return float(value)


def _spec_clip(setup: SetupStep) -> float:
    spec, _ = spec_from_fields(RoundSpec.decode(setup.spec))
    return float(spec.clip)


def _continue(
    record: Mapping[str, Any], context: Context, policy: ClientPolicy | None
) -> list[bytes]:
    """Feed one server frame to this node's session; returns the reply frames."""
    session = load_session(context, policy)
    if session is None:
        raise RemoteProtocolError(
            AbortReason.UNEXPECTED_MESSAGE.value,
            "a secagg step for a round this node has no session for",
        )
    frame = record.get("frame")
    if not isinstance(frame, bytes):
        clear_session(context)
        raise MalformedMessageError("a secagg frames step must carry one frame (bytes)")
    try:
        message = server_message(parse_server_frame(frame))
    except (TransportError, MalformedMessageError) as exc:
        clear_session(context)
        raise MalformedMessageError(f"the server's secagg frame is malformed: {exc}") from None
    reply = session.receive(message)
    if session.aborted or reply is None:
        clear_session(context)
    else:
        save_session(context, session)
    return [] if reply is None else _frames(reply)


def _frames(msg: ClientMessage) -> list[bytes]:
    if isinstance(msg, MaskedInput):
        return [f.SerializeToString() for f in masked_input_frames(msg, DEFAULT_CHUNK_BYTES)]
    return [client_frame(msg).SerializeToString()]
