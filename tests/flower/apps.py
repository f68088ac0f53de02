"""A tiny Flower app for the tests: each node's "training" is a known function of its partition.

Node ``p`` returns the global model plus ``update(p)`` and reports ``weight(p)`` examples, so
the tests can compute the plain weighted mean of the included nodes on their own. Partitions
in ``fail_at`` raise at the given secagg step (1: in training, 2..4: at a later protocol step),
through a mod placed before ``secagg_mod``. The failure plan lives in the app's closures, since
Flower's engine ships the app to worker processes.
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


def train(msg: Message, context: Context, fail_at: dict[int, int]) -> Message:
    # The mod hands the user's function the strategy's message without secagg's record.
    assert "secagg" not in msg.content.config_records
    p = _partition(context)
    if fail_at.get(p) == 1:
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


def make_client_app(
    *, fail_at: dict[int, int] | None = None, mods: list[Any] | None = None
) -> ClientApp:
    plan = dict(fail_at or {})

    def failing_mod(msg: Message, context: Context, call_next: Any) -> Message:
        """Counts this node's train messages in its state and raises at the planned one."""
        steps = context.state.config_records.setdefault("test-steps", ConfigRecord({"n": 0}))
        steps["n"] = int(steps["n"]) + 1
        if plan.get(_partition(context), 0) == int(steps["n"]) > 1:
            raise RuntimeError("this node crashed mid-round")
        return call_next(msg, context)

    def train_fn(msg: Message, context: Context) -> Message:
        return train(msg, context, plan)

    app = ClientApp(mods=[failing_mod, *(mods or []), make_secagg_mod(policy=TEST_POLICY)])
    app.train()(train_fn)
    return app


def expected_mean(included: list[int], base: ArrayRecord) -> dict[str, np.ndarray]:
    total = sum(weight(p) for p in included)
    return {
        k: base[k].numpy().astype(np.float64)
        + sum(weight(p) * update(p)[k] for p in included) / total
        for k in SHAPES
    }
