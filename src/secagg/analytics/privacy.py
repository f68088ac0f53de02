"""Distributed DP for analytics: Skellam noise from each client, calibrated from (epsilon, delta).

Each client adds Poisson(mu) - Poisson(mu) per coordinate (``secagg.encoding.dp``'s sampler);
the sum of the included clients' noise is Skellam with variance 2 mu n. The accountant is the
Renyi-DP bound of the Skellam mechanism (Agarwal, Kairouz, Liu, NeurIPS 2021, Thm 3.5): for
aggregate per-coordinate variance V, integer order a > 1 and integer vectors whose one-client
change has L1 norm D1 and L2 norm D2,

    eps_a <= a D2^2 / (2V) + min(((2a - 1) D2^2 + 6 D1) / (4 V^2), 3 D1 / (2V)),

converted to (epsilon, delta) with eps = min_a eps_a + log((a-1)/a) - (log delta + log a)/(a-1)
(Canonne, Kamath, Steinke 2020). :func:`calibrate_variance` finds the smallest V meeting the
target.

What is guaranteed (add/remove one client, its contribution capped by the query): whenever at
least ``floor`` clients are included, the noise of the included clients *other than* the one
in question and other than ``colluders`` clients who may know their own noise is at least V,
so the release is (epsilon, delta)-DP. Each client therefore adds V / (floor - 1 - colluders).
The release rule (``min_clients``) is the floor, so a result with fewer contributors is never
released and dropouts never leave less noise than promised; more contributors than the floor
only add noise (the reported stddev is the noise actually present).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from secagg.encoding.dp import SkellamNoise
from secagg.errors import ConfigError

__all__ = [
    "DEFAULT_DELTA",
    "DistributedDP",
    "NoisePlan",
    "calibrate_variance",
    "plan_noise",
    "skellam_epsilon",
]

DEFAULT_DELTA = 1e-6
_ORDERS = tuple(range(2, 256)) + tuple(range(256, 4097, 16))


@dataclass(frozen=True)
class DistributedDP:
    """The privacy target of one analytics release.

    ``confidence``: level of the reported intervals. ``colluders``: clients (besides the one
    protected) whose noise the adversary may know. ``wrap_log2``: the bit width leaves room
    for the noise except with probability 2^-wrap_log2 per coordinate.
    """

    epsilon: float
    delta: float = DEFAULT_DELTA
    confidence: float = 0.95
    colluders: int = 0
    wrap_log2: int = 40

    def __post_init__(self) -> None:
        if not (isinstance(self.epsilon, int | float) and 0 < self.epsilon < math.inf):
            raise ConfigError(f"epsilon must be finite and > 0, got {self.epsilon!r}")
        if not (isinstance(self.delta, int | float) and 0 < self.delta < 1):
            raise ConfigError(f"delta must be in (0, 1), got {self.delta!r}")
        if not (isinstance(self.confidence, int | float) and 0 < self.confidence < 1):
            raise ConfigError(f"confidence must be in (0, 1), got {self.confidence!r}")
        if isinstance(self.colluders, bool) or not isinstance(self.colluders, int):
            raise ConfigError("colluders must be an integer")
        if self.colluders < 0:
            raise ConfigError(f"colluders must be >= 0, got {self.colluders}")
        if isinstance(self.wrap_log2, bool) or not isinstance(self.wrap_log2, int):
            raise ConfigError("wrap_log2 must be an integer")
        if not 1 <= self.wrap_log2 <= 128:
            raise ConfigError(f"wrap_log2 must be in 1..128, got {self.wrap_log2}")

    @property
    def z(self) -> float:
        """Half-width of the intervals in standard deviations (normal approximation)."""
        return NormalDist().inv_cdf(0.5 + self.confidence / 2.0)


def _rdp(order: int, variance: float, l1: float, l2: float) -> float:
    a, v = order, variance
    tail = min(((2 * a - 1) * l2 * l2 + 6 * l1) / (4 * v * v), 3 * l1 / (2 * v))
    return a * l2 * l2 / (2 * v) + tail


def skellam_epsilon(variance: float, l1: float, l2: float, delta: float) -> float:
    """epsilon of the Skellam mechanism with aggregate per-coordinate ``variance`` at ``delta``."""
    if variance <= 0:
        return math.inf
    log_delta = math.log(delta)
    return min(
        _rdp(a, variance, l1, l2) + math.log((a - 1) / a) - (log_delta + math.log(a)) / (a - 1)
        for a in _ORDERS
    )


def calibrate_variance(epsilon: float, delta: float, l1: float, l2: float) -> float:
    """Smallest aggregate variance (to 0.1%) whose :func:`skellam_epsilon` is <= ``epsilon``."""
    if l1 <= 0 or l2 <= 0:
        raise ConfigError("sensitivities must be > 0")
    low, high = 0.0, max(l2 * l2, 1.0)
    while skellam_epsilon(high, l1, l2, delta) > epsilon:
        low, high = high, high * 2.0
        if high > 1e30:
            raise ConfigError(f"epsilon={epsilon} is unreachable at delta={delta}")
    while high - low > 1e-3 * high:
        mid = (low + high) / 2.0
        if skellam_epsilon(mid, l1, l2, delta) > epsilon:
            low = mid
        else:
            high = mid
    return high


@dataclass(frozen=True)
class NoisePlan:
    """How much noise each client adds, and what the sum carries."""

    target_variance: float
    floor: int
    per_client: SkellamNoise

    def variance(self, n_included: int) -> float:
        """Per-coordinate noise variance of the sum of ``n_included`` clients' vectors."""
        return self.per_client.variance * n_included

    def headroom(self, n_clients: int, wrap_log2: int) -> int:
        """Bound on |noise| of up to ``n_clients`` clients, except w.p. 2^-wrap_log2."""
        return self.per_client.headroom(n_clients, wrap_log2)


def plan_noise(dp: DistributedDP, l1: float, l2: float, floor: int) -> NoisePlan:
    """Per-client noise so that ``floor`` included clients give ``dp`` (module docstring)."""
    honest_others = floor - 1 - dp.colluders
    if honest_others < 1:
        raise ConfigError(
            f"distributed DP needs min_clients >= colluders + 2 = {dp.colluders + 2} (the noise "
            f"of the other included clients protects each one), got {floor}"
        )
    target = calibrate_variance(dp.epsilon, dp.delta, l1, l2)
    return NoisePlan(target, floor, SkellamNoise(mu=target / honest_others / 2.0))
