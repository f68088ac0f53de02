"""SecAggGrid and secagg_mod over an in-process grid: aggregation, dropouts, pass-through,
strategies, metrics and what leaves a node."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("flwr", reason="the flower extra is not installed")

from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import strategy as fs

from secagg.errors import ConfigError, UnsupportedStrategyError
from secagg.flower import SecAggGrid, check_strategy
from secagg.reasons import DropReason
from tests.flower import apps
from tests.flower.local_grid import LocalGrid

NODES = {500 + 3 * p: {"partition-id": p, "num-partitions": 10} for p in range(10)}
NODE_OF = {cfg["partition-id"]: node for node, cfg in NODES.items()}


def _grid(fail_at: dict[int, int] | None = None, **options: Any) -> tuple[LocalGrid, SecAggGrid]:
    inner = LocalGrid(apps.make_client_app(fail_at=fail_at), NODES)
    options.setdefault("clip", 0.5)
    options.setdefault("degree", 9)
    options.setdefault("threshold", 6)
    return inner, SecAggGrid(inner, **options)


def _start(strategy: Any, grid: Any, rounds: int = 1) -> Any:
    return strategy.start(grid=grid, initial_arrays=apps.initial_arrays(), num_rounds=rounds)


def _assert_mean_of(partitions: list[int], arrays: ArrayRecord, bound: float) -> None:
    expected = apps.expected_mean(partitions, apps.initial_arrays())
    for key, want in expected.items():
        got = arrays[key].numpy().astype(np.float64)
        assert np.max(np.abs(got - want)) <= bound + 2.0**-22  # + float32 rounding


@pytest.mark.parametrize(
    ("fail_at", "step_name"),
    [({3: 1, 7: 2}, "keys"), ({3: 1, 7: 3}, "masked input"), ({3: 1, 7: 4}, "unmasking")],
)
def test_two_failing_nodes_leave_the_weighted_mean_of_the_rest(
    fail_at: dict[int, int], step_name: str
) -> None:
    _inner, grid = _grid(fail_at)
    result = _start(fs.FedAvg(fraction_evaluate=0.0), grid)
    (report,) = grid.reports
    assert report.aborted is None
    assert set(report.dropped) == {NODE_OF[3], NODE_OF[7]}
    assert {d[1] for d in report.dropped.values()} == {DropReason.NODE_ERROR}
    included = sorted(p for p in range(10) if p not in fail_at)
    if fail_at[7] == 4:
        # Its masked input is in the sum: it stays included, its unmask answer is not needed.
        included = sorted([*included, 7])
    assert report.included == tuple(NODE_OF[p] for p in included)
    assert report.total_weight == pytest.approx(sum(apps.weight(p) for p in included), abs=0.1)
    assert report.mean_error_bound is not None
    _assert_mean_of(included, result.arrays, report.mean_error_bound)


def test_a_node_that_never_answers_is_dropped_and_the_round_completes() -> None:
    inner, grid = _grid()
    inner.silent = {NODE_OF[4]}
    result = _start(fs.FedAvg(fraction_evaluate=0.0), grid)
    (report,) = grid.reports
    assert report.dropped[NODE_OF[4]][1] is DropReason.NO_RESPONSE
    included = [p for p in range(10) if p != 4]
    assert report.mean_error_bound is not None
    _assert_mean_of(included, result.arrays, report.mean_error_bound)


def test_too_few_survivors_abort_and_the_strategy_keeps_its_model() -> None:
    _inner, grid = _grid(dict.fromkeys(range(5), 1))
    result = _start(fs.FedAvg(fraction_evaluate=0.0), grid)
    (report,) = grid.reports
    assert report.aborted is not None
    assert "too-few" in report.aborted
    assert len(result.arrays) == 0  # FedAvg got no reply: no new model


def test_metrics_named_are_aggregated_securely_and_the_others_never_leave() -> None:
    _inner, grid = _grid(metrics=["train_loss"])
    result = _start(fs.FedAvg(fraction_evaluate=0.0), grid)
    (report,) = grid.reports
    metrics = result.train_metrics_clientapp[1]
    assert set(metrics) == {"train_loss"}
    total = sum(apps.weight(p) for p in range(10))
    want = sum(apps.weight(p) * apps.loss(p) for p in range(10)) / total
    assert report.mean_error_bound is not None
    assert abs(metrics["train_loss"] - want) <= 100.0 / 0.5 * report.mean_error_bound


def test_no_plaintext_update_or_metric_leaves_a_node() -> None:
    """Every message the nodes sent during a round: no arrays, no metrics, no update bytes."""
    inner, grid = _grid()
    _start(fs.FedAvg(fraction_evaluate=0.0), grid)
    assert grid.reports[0].included == tuple(sorted(NODES))
    assert len(inner.outgoing) == 40  # 10 nodes x 4 steps
    base = apps.initial_arrays()
    secrets: list[bytes] = []
    for p in range(10):
        update = apps.update(p)
        for k in apps.SHAPES:
            trained = (base[k].numpy().astype(np.float64) + update[k]).astype(np.float32)
            # any row of the trained model or of the update, in float32 or float64
            for a in (trained, update[k], update[k].astype(np.float32)):
                secrets += [row.tobytes() for row in np.atleast_2d(a)]
        secrets += [np.float64(apps.loss(p)).tobytes(), np.float64(1234.5).tobytes()]
    for reply in inner.outgoing:
        content = reply.content
        assert len(content.array_records) == 0
        assert len(content.metric_records) == 0
        assert list(content.config_records) == ["secagg"]
        blobs = list(content["secagg"]["frames"])
        for blob in blobs:
            assert not any(s in blob for s in secrets)


def test_empty_send_and_receive_passes_through_to_the_inner_grid() -> None:
    inner, grid = _grid()
    assert list(grid.send_and_receive([], timeout=1.0)) == []
    assert inner.calls == [[]]
    # Strategy.start with evaluation off calls it with [] every round.
    _start(fs.FedAvg(fraction_evaluate=0.0), grid, rounds=2)
    assert sum(1 for call in inner.calls if call == []) == 3
    assert len(grid.reports) == 2


def test_evaluate_messages_pass_through_unchanged() -> None:
    inner, grid = _grid()
    msgs = [
        Message(RecordDict({"config": ConfigRecord({"x": 1})}), node, MessageType.EVALUATE)
        for node in list(NODES)[:2]
    ]
    replies = list(grid.send_and_receive(msgs, timeout=1.0))
    assert inner.calls == [msgs]
    assert all(r.has_error() for r in replies)  # the test app registered no evaluate function
    assert grid.reports == []


def test_train_and_evaluate_messages_in_one_call_are_refused() -> None:
    inner, grid = _grid()
    record = RecordDict({"arrays": apps.initial_arrays()})
    nodes = list(NODES)
    msgs = [
        Message(record, nodes[0], MessageType.TRAIN),
        Message(record, nodes[1], MessageType.EVALUATE),
    ]
    with pytest.raises(ConfigError, match="train and non-train"):
        grid.send_and_receive(msgs)
    assert inner.calls == []


def _refused() -> list[Any]:
    return [
        fs.FedMedian(),
        fs.FedTrimmedAvg(),
        fs.Krum(),
        fs.MultiKrum(),
        fs.Bulyan(),
        fs.QFedAvg(client_learning_rate=0.1),
        fs.DifferentialPrivacyServerSideFixedClipping(
            fs.FedAvg(), noise_multiplier=1.0, clipping_norm=1.0, num_sampled_clients=10
        ),
    ]


@pytest.mark.parametrize("strategy", _refused(), ids=lambda s: type(s).__name__)
def test_strategies_that_need_individual_updates_are_refused(strategy: Any) -> None:
    inner, grid = _grid()
    with pytest.raises(UnsupportedStrategyError, match=type(strategy).__name__):
        _start(strategy, grid)
    assert inner.calls == []  # refused before any message left
    with pytest.raises(UnsupportedStrategyError):
        SecAggGrid(inner, strategy=strategy)


@pytest.mark.parametrize(
    "strategy",
    [
        fs.FedAvg(fraction_evaluate=0.0),
        fs.FedProx(fraction_evaluate=0.0, proximal_mu=0.1),
        fs.FedAvgM(fraction_evaluate=0.0, server_momentum=0.5),
        fs.FedAdagrad(fraction_evaluate=0.0),
        fs.FedAdam(fraction_evaluate=0.0),
        fs.FedYogi(fraction_evaluate=0.0),
    ],
    ids=lambda s: type(s).__name__,
)
def test_mean_based_strategies_run_on_the_secure_aggregate(strategy: Any) -> None:
    check_strategy(strategy)
    _inner, grid = _grid()
    result = _start(strategy, grid, rounds=2)
    assert len(grid.reports) == 2
    assert all(r.aborted is None for r in grid.reports)
    base = apps.initial_arrays()
    for key in apps.SHAPES:
        got = result.arrays[key].numpy()
        assert np.all(np.isfinite(got))
        assert not np.array_equal(got, base[key].numpy())
    if type(strategy) in (fs.FedAvg, fs.FedProx):
        # Round 2 started from round 1's mean; each node adds the same update again.
        total = sum(apps.weight(p) for p in range(10))
        mean = {k: sum(apps.weight(p) * apps.update(p)[k] for p in range(10)) / total for k in base}
        bound = 2 * max(r.mean_error_bound or 0.0 for r in grid.reports) + 2.0**-21
        for key in apps.SHAPES:
            want = base[key].numpy().astype(np.float64) + 2 * mean[key]
            assert np.max(np.abs(result.arrays[key].numpy() - want)) <= bound


def test_a_user_subclass_that_overrides_aggregate_train_is_refused() -> None:
    class Mine(fs.FedAvg):
        def aggregate_train(self, server_round: int, replies: Any) -> Any:
            return super().aggregate_train(server_round, replies)

    with pytest.raises(UnsupportedStrategyError, match="Mine"):
        check_strategy(Mine())


@pytest.mark.adversarial
def test_a_node_without_the_mod_is_dropped_and_its_plaintext_reply_never_reaches_the_strategy() -> (
    None
):
    """A misconfigured node answers the setup step with its plain model: dropped, discarded."""
    inner, grid = _grid()
    plain_app = ClientApp()

    @plain_app.train()
    def plain_train(msg: Message, ctx: Any) -> Message:
        # A train function that ignores the record it does not know (apps.train insists it
        # never sees it) and answers with its plain model and metrics.
        del msg.content.config_records["secagg"]
        return apps.train(msg, ctx, {})

    real = inner.app

    class Router:
        def __call__(self, msg: Message, ctx: Any) -> Message:
            if msg.metadata.dst_node_id == NODE_OF[5]:
                return plain_app(msg, ctx)
            return real(msg, ctx)

    inner.app = Router()  # type: ignore[assignment]
    result = _start(fs.FedAvg(fraction_evaluate=0.0), grid)
    (report,) = grid.reports
    assert report.dropped[NODE_OF[5]][1] is DropReason.MALFORMED
    included = [p for p in range(10) if p != 5]
    assert report.mean_error_bound is not None
    _assert_mean_of(included, result.arrays, report.mean_error_bound)


def test_options_are_checked() -> None:
    inner = LocalGrid(apps.make_client_app(), NODES)
    with pytest.raises(ConfigError, match="malicious"):
        SecAggGrid(inner, mode="malicious")
    with pytest.raises(ConfigError, match="step_timeout"):
        SecAggGrid(inner, step_timeout=0)
    with pytest.raises(ConfigError, match="clip"):
        SecAggGrid(inner, clip=-1.0)
    with pytest.raises(ConfigError, match="min_clients"):
        SecAggGrid(inner, min_clients=1)


def test_the_session_lives_in_context_state_as_bytes_and_survives_serialization() -> None:
    """Every message runs on a context rebuilt from its wire form (a fresh worker each time)."""
    inner, grid = _grid({3: 1, 7: 3})
    inner.fresh_workers = True
    seen: list[bytes] = []
    real = inner.app

    def app(msg: Message, ctx: Any) -> Message:
        reply = real(msg, ctx)
        record = ctx.state.config_records.get("secagg-session")
        if record is not None:
            assert isinstance(record["session"], bytes)
            seen.append(record["session"])
        return reply

    inner.app = app  # type: ignore[assignment]
    result = _start(fs.FedAvg(fraction_evaluate=0.0), grid)
    (report,) = grid.reports
    assert len(seen) >= 8 * 3
    included = [p for p in range(10) if p not in (3, 7)]
    assert report.mean_error_bound is not None
    _assert_mean_of(included, result.arrays, report.mean_error_bound)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fail_at=st.dictionaries(st.integers(0, 9), st.integers(1, 4), max_size=4),
    silent=st.sets(st.integers(0, 9), max_size=1),
)
def test_any_dropout_schedule_gives_the_mean_of_the_included_or_no_reply(
    fail_at: dict[int, int], silent: set[int]
) -> None:
    inner, grid = _grid(fail_at)
    inner.silent = {NODE_OF[p] for p in silent}
    result = _start(fs.FedAvg(fraction_evaluate=0.0), grid)
    (report,) = grid.reports
    if report.aborted is not None:
        assert len(result.arrays) == 0
        return
    partition_of = {node: p for p, node in NODE_OF.items()}
    included = sorted(partition_of[node] for node in report.included)
    gone = set(fail_at) | silent
    # only nodes that failed after sending their masked input (step 4) may still be included
    assert all(fail_at.get(p) == 4 for p in set(included) & gone)
    assert report.mean_error_bound is not None
    _assert_mean_of(included, result.arrays, report.mean_error_bound)
