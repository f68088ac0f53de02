"""Federated analytics over secure aggregation: histograms, counts, sums, means, quantiles,
group-by counts and count sketches, with contribution caps, a release threshold and
distributed DP.

    query = Histogram(domain=["a", "b", "c"], max_contributions=1)
    result = run(query, [["a"], ["b", "a"], ...], min_clients=10, dp=DistributedDP(epsilon=1.0))
    result.counts, result.stddev, result.intervals, result.epsilon

A query is a value both sides share (``to_json``/``Query.from_json``, ``digest``); a client
(:class:`Contributor`) refuses to contribute to a round whose :class:`AnalyticsRound` (query,
release threshold, DP target) differs from the one it was configured with
(:class:`~secagg.errors.QueryMismatchError`).
"""

from secagg.analytics.binding import (
    DEFAULT_MAX_CLIENTS,
    DEFAULT_MIN_CLIENTS,
    AnalyticsRound,
    Contributor,
    round_digest,
)
from secagg.analytics.caps import cap_counts
from secagg.analytics.histogram import GroupBy, Histogram
from secagg.analytics.numeric import Count, Mean, Quantiles, Sum
from secagg.analytics.prefix import HeavyHitters, discover_heavy_hitters
from secagg.analytics.privacy import (
    DEFAULT_DELTA,
    DistributedDP,
    NoisePlan,
    calibrate_variance,
    plan_noise,
    skellam_epsilon,
)
from secagg.analytics.query import Label, Query
from secagg.analytics.release import release, withheld
from secagg.analytics.result import AnalyticsResult
from secagg.analytics.run import run
from secagg.analytics.sketch import CountSketch

__all__ = [
    "DEFAULT_DELTA",
    "DEFAULT_MAX_CLIENTS",
    "DEFAULT_MIN_CLIENTS",
    "AnalyticsResult",
    "AnalyticsRound",
    "Contributor",
    "Count",
    "CountSketch",
    "DistributedDP",
    "GroupBy",
    "HeavyHitters",
    "Histogram",
    "Label",
    "Mean",
    "NoisePlan",
    "Quantiles",
    "Query",
    "Sum",
    "calibrate_variance",
    "cap_counts",
    "discover_heavy_hitters",
    "plan_noise",
    "release",
    "round_digest",
    "run",
    "skellam_epsilon",
    "withheld",
]
