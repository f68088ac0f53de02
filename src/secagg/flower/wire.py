"""What secagg puts inside Flower messages: one ConfigRecord under :data:`RECORD_KEY`.

Server to client, step ``setup`` (it rides on the strategy's own train message, next to the
global model and the train config)::

    {"v": 1, "step": "setup", "config": RoundConfig.encode(), "spec": RoundSpec.encode(),
     "index": i, "weight-key": "num-examples", "metrics": [names], "metric-clip": float}

Server to client, every later step: ``{"v": 1, "step": "frames", "frame": ServerFrame bytes}``.
Client to server: ``{"v": 1, "frames": [ClientFrame bytes, ...]}`` (several frames only for a
masked input, chunked by :func:`secagg.transport.codec.masked_input_frames`). The frames are the
``secagg.v1`` protobuf messages of the gRPC service, so both paths share one wire contract.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from flwr.app import ArrayRecord, ConfigRecord, RecordDict

from secagg.errors import MalformedMessageError
from secagg.protocol.config import RoundConfig

__all__ = [
    "RECORD_KEY",
    "STEP_FRAMES",
    "STEP_SETUP",
    "WIRE_VERSION",
    "SetupStep",
    "frames_record",
    "model_tree",
    "only_array_record",
    "parse_frames",
    "parse_setup",
    "secagg_record",
    "setup_record",
]

RECORD_KEY = "secagg"
WIRE_VERSION = 1
STEP_SETUP = "setup"
STEP_FRAMES = "frames"
MAX_METRICS = 64


@dataclass(frozen=True)
class SetupStep:
    """The first step of a round, as a client reads it."""

    config: RoundConfig
    spec: bytes
    index: int
    weight_key: str
    metrics: tuple[str, ...]
    metric_clip: float


def setup_record(step: SetupStep) -> ConfigRecord:
    """The record of the setup step."""
    return ConfigRecord(
        {
            "v": WIRE_VERSION,
            "step": STEP_SETUP,
            "config": step.config.encode(),
            "spec": step.spec,
            "index": step.index,
            "weight-key": step.weight_key,
            "metrics": list(step.metrics),
            "metric-clip": float(step.metric_clip),
        }
    )


def frames_record(frames: list[bytes], *, step: str | None = None) -> ConfigRecord:
    """A record carrying protocol frames: one server frame (``step`` set) or client frames."""
    if step is None:
        return ConfigRecord({"v": WIRE_VERSION, "frames": frames})
    return ConfigRecord({"v": WIRE_VERSION, "step": step, "frame": frames[0]})


def secagg_record(content: RecordDict) -> ConfigRecord | None:
    """The secagg record of a message's content, or None when it carries none."""
    record = content.config_records.get(RECORD_KEY)
    if record is None:
        return None
    if record.get("v") != WIRE_VERSION:
        raise MalformedMessageError(
            f"secagg record version {record.get('v')!r}; this node speaks {WIRE_VERSION}"
        )
    return record


def _field(record: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = record.get(name)
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise MalformedMessageError(
            f"secagg record field {name!r} must be {getattr(kind, '__name__', kind)}, "
            f"got {type(value).__name__}"
        )
    return value


def parse_setup(record: Mapping[str, Any]) -> SetupStep:
    """Validate a setup record; raises :class:`MalformedMessageError` naming the bad field."""
    from secagg.errors import ConfigError

    try:
        config = RoundConfig.decode(_field(record, "config", bytes))
    except ConfigError as exc:
        raise MalformedMessageError(f"secagg setup carries a bad round config: {exc}") from None
    index = _field(record, "index", int)
    if not 1 <= index <= config.num_clients:
        raise MalformedMessageError(f"client index must be in 1..{config.num_clients}")
    metrics = _field(record, "metrics", list)
    if len(metrics) > MAX_METRICS or not all(isinstance(m, str) and m for m in metrics):
        raise MalformedMessageError(f"metrics must be at most {MAX_METRICS} non-empty names")
    metric_clip = float(_field(record, "metric-clip", (int, float)))
    if not (math.isfinite(metric_clip) and metric_clip > 0):
        raise MalformedMessageError("metric-clip must be finite and > 0")
    return SetupStep(
        config=config,
        spec=_field(record, "spec", bytes),
        index=index,
        weight_key=_field(record, "weight-key", str),
        metrics=tuple(metrics),
        metric_clip=metric_clip,
    )


def parse_frames(record: Mapping[str, Any]) -> list[bytes]:
    """The client frames of a reply record."""
    frames = _field(record, "frames", list)
    if not all(isinstance(f, bytes) for f in frames):
        raise MalformedMessageError("a secagg reply must carry a list of frames (bytes)")
    return list(frames)


def only_array_record(content: RecordDict, what: str) -> tuple[str, ArrayRecord]:
    """The single ArrayRecord of ``content`` (FedAvg-family messages carry exactly one)."""
    records = content.array_records
    if len(records) != 1:
        raise MalformedMessageError(f"{what} must hold exactly one ArrayRecord, has {len(records)}")
    key, record = next(iter(records.items()))
    return key, record


def model_tree(
    arrays: Mapping[str, npt.NDArray[Any]],
    metrics: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The pytree a client encodes: its model arrays (and scaled metrics) as float64."""
    tree: dict[str, Any] = {
        "arrays": {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}
    }
    if metrics:
        tree["metrics"] = {k: np.float64(v) for k, v in metrics.items()}
    return tree
