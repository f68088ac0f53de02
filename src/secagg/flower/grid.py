"""``SecAggGrid``: runs a secure-aggregation round for a strategy's train messages.

Wraps the Grid a ServerApp's ``main`` receives. ``send_and_receive`` of train messages runs one
round over the inner grid (one Flower round trip per protocol step, see
:mod:`secagg.flower.wire`) and returns one reply: the securely aggregated weighted mean of the
included nodes' models and, under the strategy's weight key, their total weight. Every other
call goes to the inner grid unchanged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from flwr.app import Array, ArrayRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.supercore.run import Run

from secagg.encoding import Encoder, EncodingSpec
from secagg.encoding.pytree import PyTree
from secagg.errors import ConfigError, RoundAbortedError
from secagg.flower.replies import feed_replies
from secagg.flower.strategies import calling_strategy, check_strategy
from secagg.flower.wire import (
    RECORD_KEY,
    STEP_FRAMES,
    SetupStep,
    frames_record,
    model_tree,
    only_array_record,
    setup_record,
)
from secagg.graph import Mode
from secagg.protocol.config import RoundConfig
from secagg.protocol.messages import Round
from secagg.protocol.server.session import ServerSession
from secagg.protocol.server.state import ServerPhase
from secagg.reasons import DropReason
from secagg.transport.codec import server_frame

__all__ = ["FlowerRoundReport", "SecAggGrid"]

_log = logging.getLogger(__name__)
_END = (ServerPhase.DONE, ServerPhase.ABORTED)


@dataclass
class FlowerRoundReport:
    """What one secure round did, in Flower's node ids (kept in :attr:`SecAggGrid.reports`)."""

    group_id: str
    nodes: tuple[int, ...]
    included: tuple[int, ...] = ()
    dropped: dict[int, tuple[Round, DropReason, str]] = field(default_factory=dict)
    total_weight: float | None = None
    mean_error_bound: float | None = None  # per coordinate of the returned weighted mean
    aborted: str | None = None  # why no aggregate was returned, if none was
    steps: int = 0  # Flower round trips the round took


class SecAggGrid(Grid):  # type: ignore[misc]  # flwr is untyped for mypy without the extra
    """A Grid whose train round trips are secure-aggregation rounds.

    Options: ``clip`` (per-coordinate bound of each node's model change, i.e. its trained
    model minus the global model it was sent), ``quant_bits``, ``max_weight`` (largest example
    count a node may report; larger ones make the node fail and be dropped), ``mode``
    (``"semi-honest"``; malicious mode needs node identities, not available over Flower yet),
    ``degree``/``threshold`` (else the parameter finder's safe choice for the round's n and
    ``dropout_rate``), ``step_timeout`` (seconds per protocol step; default: the strategy's
    timeout), ``metrics`` (names of the nodes' train metrics to aggregate securely as weighted
    means, each within ``[-metric_clip, metric_clip]``; all other metrics are dropped on the
    nodes, never sent), ``min_clients`` (fewer train messages: no round, empty reply list) and
    ``strategy`` (checked at once; otherwise the strategy calling ``send_and_receive`` is
    checked on its first train call).
    """

    def __init__(
        self,
        grid: Grid,
        *,
        clip: float = 1.0,
        quant_bits: int = 20,
        max_weight: float = 10_000.0,
        mode: Mode = "semi-honest",
        degree: int | None = None,
        threshold: int | None = None,
        dropout_rate: float = 0.05,
        step_timeout: float | None = None,
        metrics: Sequence[str] = (),
        metric_clip: float = 100.0,
        min_clients: int = 2,
        strategy: object | None = None,
    ) -> None:
        if mode != "semi-honest":
            raise ConfigError(
                f"mode={mode!r}: secagg.flower runs semi-honest rounds; malicious mode needs an "
                "identity key per node and a registry, which the Flower adapter does not carry yet"
            )
        if step_timeout is not None and not (math.isfinite(step_timeout) and step_timeout > 0):
            raise ConfigError(f"step_timeout must be finite and > 0, got {step_timeout!r}")
        if not (isinstance(metric_clip, int | float) and math.isfinite(metric_clip)) or (
            metric_clip <= 0
        ):
            raise ConfigError(f"metric_clip must be finite and > 0, got {metric_clip!r}")
        if isinstance(min_clients, bool) or not isinstance(min_clients, int) or min_clients < 2:
            raise ConfigError(f"min_clients must be an integer >= 2, got {min_clients!r}")
        self.spec = EncodingSpec(
            clip=clip, quant_bits=quant_bits, weighted=True, max_weight=max_weight
        )
        self._grid = grid
        self.mode: Mode = mode
        self.degree = degree
        self.threshold = threshold
        self.dropout_rate = dropout_rate
        self.step_timeout = step_timeout
        self.metrics = tuple(metrics)
        self.metric_clip = float(metric_clip)
        self.min_clients = min_clients
        self._strategy_checked = strategy is not None
        self._strategy = strategy
        if strategy is not None:
            check_strategy(strategy)
        self.reports: list[FlowerRoundReport] = []

    # -- the Grid interface, delegated -----------------------------------------------------------

    def set_run(self, run: Run) -> None:
        self._grid.set_run(run)

    @property
    def run(self) -> Run:
        return self._grid.run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return self._grid.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self) -> Iterable[int]:
        return self._grid.get_node_ids()

    def get_nodes(self) -> Iterable[Any]:
        return self._grid.get_nodes()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self._grid.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self._grid.pull_messages(message_ids)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """Train messages: one secure round, one aggregate reply (or none if it aborted).

        Anything else, and an empty list, goes to the inner grid unchanged.
        """
        batch = list(messages)
        train = [m for m in batch if _category(m) == MessageType.TRAIN]
        if not train:
            return self._grid.send_and_receive(batch, timeout=timeout)
        if len(train) != len(batch):
            raise ConfigError(
                "send_and_receive got train and non-train messages together; secure "
                "aggregation runs on a list of train messages only"
            )
        if not self._strategy_checked:
            strategy = calling_strategy()
            if strategy is not None:
                check_strategy(strategy)
            self._strategy_checked = True
        return self._secure_round(batch, self.step_timeout or timeout)

    # -- one round ------------------------------------------------------------------------------

    def _secure_round(self, batch: list[Message], timeout: float | None) -> list[Message]:
        node_ids = [m.metadata.dst_node_id for m in batch]
        if len(set(node_ids)) != len(node_ids):
            raise ConfigError("the train messages name one node twice")
        group_id = batch[0].metadata.group_id
        report = FlowerRoundReport(group_id=group_id, nodes=tuple(sorted(node_ids)))
        self.reports.append(report)
        if len(batch) < self.min_clients:
            report.aborted = f"{len(batch)} train messages; min_clients is {self.min_clients}"
            _log.warning("secagg: no round: %s", report.aborted)
            return []
        base = _global_model(batch)
        weight_key = _weight_key(calling_strategy() or self._strategy)
        ordered = sorted(batch, key=lambda m: m.metadata.dst_node_id)
        node_of = {i: m.metadata.dst_node_id for i, m in enumerate(ordered, start=1)}
        template = model_tree(base, dict.fromkeys(self.metrics, 0.0))
        encoder = Encoder(self.spec, template, len(batch))
        config = RoundConfig.create(
            len(batch),
            encoder.dim,
            encoder.bits,
            degree=self.degree,
            threshold=self.threshold,
            mode=self.mode,
            dropout_rate=self.dropout_rate,
            spec_digest=encoder.spec_digest,
        )
        session = ServerSession(config)
        setup = self._setup_messages(ordered, config, encoder, weight_key, timeout)
        self._exchange(session, ordered, setup, report, timeout)
        report.dropped = {node_of[i]: d for i, d in session.dropped().items()}
        try:
            result = session.result
        except RoundAbortedError as exc:
            report.aborted = str(exc)
            _log.warning("secagg: round %s aborted: %s", group_id, exc)
            return []
        report.included = tuple(node_of[i] for i in result.included)
        decoded = encoder.decode(result.total, len(result.included), spec_digest=config.spec_digest)
        mean = decoded.weighted_mean_value
        if mean is None:
            report.aborted = "the included nodes' total weight is zero"
            _log.warning("secagg: round %s: %s", group_id, report.aborted)
            return []
        report.total_weight = decoded.total_weight_value
        report.mean_error_bound = decoded.weighted_mean_bound
        _log.info(
            "secagg: round %s aggregated %d of %d nodes securely (%d steps)",
            group_id,
            len(report.included),
            len(batch),
            report.steps,
        )
        content = self._reply_content(base, mean, decoded.total_weight_value, weight_key)
        return [Message(content, reply_to=ordered[0])]

    def _setup_messages(
        self,
        ordered: list[Message],
        config: RoundConfig,
        encoder: Encoder,
        weight_key: str,
        timeout: float | None,
    ) -> dict[int, Message]:
        """The first step's messages, by client index: each node's train content plus its setup."""
        spec_bytes = encoder.round_spec.encode()
        outgoing: dict[int, Message] = {}
        for i, m in enumerate(ordered, start=1):
            content = RecordDict(dict(m.content.items()))
            content[RECORD_KEY] = setup_record(
                SetupStep(config, spec_bytes, i, weight_key, self.metrics, self.metric_clip)
            )
            outgoing[i] = _message_like(m, content, timeout)
        return outgoing

    def _exchange(
        self,
        session: ServerSession,
        ordered: list[Message],
        outgoing: dict[int, Message],
        report: FlowerRoundReport,
        timeout: float | None,
    ) -> None:
        """Send and receive steps until the session ends (client i is ``ordered[i - 1]``)."""
        index_of = {m.metadata.dst_node_id: i for i, m in enumerate(ordered, start=1)}
        while True:
            report.steps += 1
            replies = self._grid.send_and_receive(list(outgoing.values()), timeout=timeout)
            feed_replies(session, replies, index_of, set(outgoing))
            outbox = session.advance()
            if session.phase in _END:
                return
            outgoing = {
                i: _message_like(
                    ordered[i - 1],
                    RecordDict(
                        {
                            RECORD_KEY: frames_record(
                                [server_frame(outbox[i]).SerializeToString()], step=STEP_FRAMES
                            )
                        }
                    ),
                    timeout,
                )
                for i in sorted(session.expected())
                if i in outbox
            }

    def _reply_content(
        self,
        base: dict[str, npt.NDArray[Any]],
        mean: PyTree,
        total_weight: float | None,
        weight_key: str,
    ) -> RecordDict:
        """The aggregate reply: the weighted mean model and metrics, and the total weight."""
        arrays = ArrayRecord({k: Array(_restore(base[k], mean["arrays"][k])) for k in base})
        scale = self.metric_clip / self.spec.clip
        metric_values: dict[str, int | float | list[int] | list[float]] = {
            weight_key: float(total_weight or 0.0)
        }
        metric_values.update({m: float(mean["metrics"][m]) * scale for m in self.metrics})
        return RecordDict({"arrays": arrays, "metrics": MetricRecord(metric_values)})


def _category(msg: Message) -> str:
    return str(msg.metadata.message_type).partition(".")[0]


def _message_like(template: Message, content: RecordDict, ttl: float | None) -> Message:
    """A fresh instruction message to the template's node, of its type and group."""
    return Message(
        content,
        template.metadata.dst_node_id,
        template.metadata.message_type,
        group_id=template.metadata.group_id,
        ttl=ttl,
    )


def _global_model(batch: list[Message]) -> dict[str, npt.NDArray[Any]]:
    """The model every train message carries (the round sums changes to this one model)."""
    first = batch[0].content
    _, record = only_array_record(first, "a train message")
    base = {k: a.numpy() for k, a in record.items()}
    for m in batch[1:]:
        if m.content is first:
            continue
        _, other = only_array_record(m.content, "a train message")
        if list(other.keys()) != list(base) or not all(
            np.array_equal(other[k].numpy(), base[k]) for k in base
        ):
            raise ConfigError(
                "the train messages carry different models; secure aggregation sums changes "
                "to one global model"
            )
    return base


def _weight_key(strategy: object | None) -> str:
    key = getattr(strategy, "weighted_by_key", None)
    return key if isinstance(key, str) and key else "num-examples"


def _restore(base: npt.NDArray[Any], change: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
    """The global array plus the mean change, in the global array's dtype."""
    out = base.astype(np.float64) + change
    if base.dtype.kind in "iu":
        out = np.rint(out)
    return out.astype(base.dtype)
