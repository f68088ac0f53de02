"""A tiny Flower app for the tests: each node's "training" is a known function of its partition.

Node ``p`` returns the global model plus ``update(p)`` and reports ``weight(p)`` examples, so
the tests can compute the plain weighted mean of the included nodes on their own. Partitions
in ``FAIL_AT`` raise at the given secagg step (1: in training, 2..4: at a later protocol step),
through a mod placed before ``secagg_mod``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from secagg.flower import make_secagg_mod
from secagg.protocol.policy import ClientPolicy

# Ten nodes of which two fail need t < k + 1 = 10; the default floor (2^-40 at 5% corrupt
# nodes) refuses every such (n = 10, k, t), so the test nodes opt out of it explicitly.
TEST_POLICY = ClientPolicy(allow_weak_parameters=True)

SHAPES = {"w": (6, 5), "b": (5,)}
FAIL_AT: dict[int, int] = {}


def initial_arrays() -> ArrayRecord:
    rng = np.random.default_rng(0)
    return ArrayRecord(
        {k: _array(rng.normal(0, 0.5, s).astype(np.float32)) for k, s in SHAPES.items()}
    )


def _array(a: np.ndarray) -> Any:
    from flwr.app import Array

    return Array(a)


def update(partition: int) -> dict[str, np.ndarray]:
    """What partition ``partition`` adds to the global model (within [-0.3, 0.3])."""
    rng = np.random.default_rng(1000 + partition)
    return {k: rng.uniform(-0.3, 0.3, s) for k, s in SHAPES.items()}


def weight(partition: int) -> int:
    return 10 + 7 * partition


def loss(partition: int) -> float:
    return 2.0 + 0.25 * partition


def _partition(context: Context) -> int:
    return int(context.node_config["partition-id"])


def train(msg: Message, context: Context) -> Message:
    p = _partition(context)
    if FAIL_AT.get(p) == 1:
        raise RuntimeError("this node's training crashed")
    arrays = msg.content["arrays"]
    delta = update(p)
    trained = {
        k: (arrays[k].numpy().astype(np.float64) + delta[k]).astype(np.float32) for k in arrays
    }
    content = RecordDict(
        {
            "arrays": ArrayRecord({k: _array(v) for k, v in trained.items()}),
            "metrics": MetricRecord(
                {"num-examples": weight(p), "train_loss": loss(p), "private-stat": 1234.5}
            ),
        }
    )
    return Message(content, reply_to=msg)


def failing_mod(msg: Message, context: Context, call_next: Any) -> Message:
    """Counts this node's secagg steps in its state and raises at the configured one."""
    state = context.state.config_records.setdefault("test-steps", ConfigRecord({"n": 0}))
    state["n"] = int(state["n"]) + 1
    if FAIL_AT.get(_partition(context), 0) == int(state["n"]) > 1:
        raise RuntimeError("this node crashed mid-round")
    return call_next(msg, context)


def make_client_app(*, fail_at: dict[int, int] | None = None) -> ClientApp:
    if fail_at is not None:
        FAIL_AT.clear()
        FAIL_AT.update(fail_at)
    app = ClientApp(mods=[failing_mod, make_secagg_mod(policy=TEST_POLICY)])
    app.train()(train)
    return app


def expected_mean(included: list[int], base: ArrayRecord) -> dict[str, np.ndarray]:
    total = sum(weight(p) for p in included)
    return {
        k: base[k].numpy().astype(np.float64)
        + sum(weight(p) * update(p)[k] for p in included) / total
        for k in SHAPES
    }
