"""ClientPolicy: clients decide what is safe, not the server (security advisory, issue 10)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.crypto.entropy import DeterministicRandom
from secagg.errors import ConfigError, UnsafeParametersError
from secagg.graph import MODES, Mode
from secagg.protocol.client.session import ClientSession
from secagg.protocol.client.state import ClientState
from secagg.protocol.config import RoundConfig
from secagg.protocol.messages import Abort
from secagg.protocol.policy import ClientPolicy
from secagg.reasons import AbortReason


def _config(n: int, k: int, t: int, mode: Mode = "semi-honest", **kw: bool) -> RoundConfig:
    rng = DeterministicRandom(f"{n}/{k}/{t}")
    # Malicious mode: the graph seed is the clients' (commit-reveal), so the config's is zero.
    seed = bytes(32) if mode == "malicious" else rng.random_bytes(32)
    return RoundConfig(n, t, k, 4, 16, mode, rng.random_bytes(16), seed, **kw)


@pytest.mark.adversarial
def test_break2_parameters_are_refused_with_numbers() -> None:
    # n = 100, k = 2, t = 3, malicious: accepted by the mode's rule (t > 2(k + 1)/3), and a
    # server that picks the graph seed isolates a victim between two colluders.
    config = _config(100, 2, 3, "malicious")
    with pytest.raises(UnsafeParametersError) as caught:
        ClientPolicy().check(config)
    message = str(caught.value)
    assert "n = 100, k = 2, t = 3 (malicious)" in message
    assert "privacy failure probability <= 2^0.0" in message  # a certain failure
    assert "budget of 2^-40" in message
    assert "5% corrupt and 5% dropping" in message
    assert "k = 48, t = 35" in message  # what the finder chooses for n = 100


@pytest.mark.adversarial
def test_break2_client_session_aborts_before_making_keys() -> None:
    config = _config(100, 2, 3, "malicious")
    from secagg.crypto.signing import SigningKey
    from secagg.protocol.identity import MappingRegistry

    key = SigningKey.generate(DeterministicRandom("id"))
    session = ClientSession(
        config,
        7,
        np.zeros(4, dtype=np.uint16),
        identity=key,
        registry=MappingRegistry({7: key.public_bytes}),
    )
    first = session.start()
    assert isinstance(first, Abort)
    assert first.reason == AbortReason.UNSAFE_PARAMETERS.value == "unsafe-parameters"
    assert "budget of 2^-40" in first.detail
    assert session.state is ClientState.ABORTED
    assert session.abort_reason is AbortReason.UNSAFE_PARAMETERS
    # Nothing was made, nothing can be revealed: the aborted state holds only its reason.
    held = [f.name for f in dataclasses.fields(session._state)]  # type: ignore[arg-type]
    assert held == ["graph", "reason", "detail"]


@pytest.mark.adversarial
@pytest.mark.parametrize("mode", MODES)
def test_complete_graph_threshold_too_low_for_the_assumed_corruption_is_refused(
    mode: Mode,
) -> None:
    # n = 20, complete graph: the rule's smallest t lets 11 (semi-honest) or 8 (malicious, 2t -
    # 20) corrupt clients of 20 rebuild an honest client's secrets: with 5% independent
    # corruption that happens with probability 2^-30.8 (malicious 2^-18.4), above 2^-40.
    low = 11 if mode == "semi-honest" else 14
    bound = "2^-30.8" if mode == "semi-honest" else "2^-18.4"
    with pytest.raises(
        UnsafeParametersError, match=r"n = 20, k = 19, t = \d+ .*budget of 2\^-40"
    ) as e:
        ClientPolicy().check(_config(20, 19, low, mode))
    assert f"privacy failure probability <= {bound}," in str(e.value)
    good = RoundConfig.create(20, 4, 16, mode=mode)
    assert good.is_complete_graph
    assert good.threshold > low
    ClientPolicy().check(good)
    with pytest.raises(UnsafeParametersError):
        ClientPolicy().check(_config(20, 19, good.threshold - 1, mode))


@settings(max_examples=40, deadline=None)
@given(
    st.integers(2, 3000),
    st.sampled_from(MODES),
    st.integers(5, 30).map(lambda r: r / 100),
    st.integers(5, 30).map(lambda r: r / 100),
)
def test_server_defaults_pass_the_default_floor(
    n: int, mode: Mode, dropout: float, corrupt: float
) -> None:
    # A server assuming at least the client's default rates always builds acceptable configs.
    config = RoundConfig.create(n, 4, 16, mode=mode, dropout_rate=dropout, corrupt_rate=corrupt)
    ClientPolicy().check(config)


def test_a_client_assuming_more_corruption_asks_for_more() -> None:
    config = RoundConfig.create(1000, 4, 16)  # the server assumes 5% corrupt: k = 30, t = 18
    ClientPolicy().check(config)
    with pytest.raises(UnsafeParametersError, match="assuming 10% corrupt and 5% dropping"):
        ClientPolicy(corrupt_rate=0.10).check(config)


def test_opt_outs_are_explicit_and_separate() -> None:
    weak = _config(100, 2, 3, "malicious")
    ClientPolicy(allow_weak_parameters=True).check(weak)
    below_rule = _config(100, 2, 1, "malicious", allow_unsafe=True)
    # The floor's opt-out never relaxes the mode's threshold rule ...
    with pytest.raises(UnsafeParametersError, match="t = 1 is unsafe in malicious mode"):
        ClientPolicy(allow_weak_parameters=True).check(below_rule)
    # ... that takes allow_unsafe as well, deliberately.
    ClientPolicy(allow_weak_parameters=True, allow_unsafe=True).check(below_rule)


def test_decoding_a_config_below_the_rule_is_an_unsafe_parameters_error() -> None:
    encoded = _config(3, 2, 1, "malicious", allow_unsafe=True).encode()
    with pytest.raises(UnsafeParametersError, match="t = 1 is unsafe"):
        RoundConfig.decode(encoded)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"corrupt_rate": 1.0}, r"corrupt_rate must be in \[0, 1\), got 1.0"),
        ({"dropout_rate": -0.1}, r"dropout_rate must be in \[0, 1\), got -0.1"),
        ({"corrupt_rate": "5%"}, "corrupt_rate must be a number"),
        ({"privacy_bits": 0}, r"privacy_bits must be a number in \(0, 256\], got 0"),
        ({"privacy_bits": True}, "privacy_bits must be a number"),
    ],
)
def test_policy_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ClientPolicy(**kwargs)  # type: ignore[arg-type]
