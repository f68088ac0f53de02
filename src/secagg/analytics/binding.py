"""What both sides of an analytics round agree on, bound into the round; the client's refusal.

:class:`AnalyticsRound` is the query plus the release rule (``min_clients``), the DP target and
the largest population (``max_clients``, which with the noise fixes the ring bit width from the
spec alone, so a client can encode before it learns the round's size). Its canonical encoding
is ``{"kind": "analytics-round", "version": 1, "query": {...}, ...}`` (sorted-key JSON) and its
SHA-256 is the round's ``context_digest`` until the round config carries a spec digest of its
own: it enters the session id, hence every key derivation, ciphertext and (malicious mode)
signature, so clients shown different queries or weaker release rules cannot complete a round
together. :func:`round_digest` is the one place that decides this.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from secagg.analytics.privacy import DistributedDP, NoisePlan, plan_noise
from secagg.analytics.query import QUERY_KIND, IntArray, Query, check_positive_int
from secagg.crypto.entropy import RandomSource, default_random
from secagg.crypto.ring import RingArray, to_ring
from secagg.errors import ConfigError, QueryMismatchError
from secagg.protocol.config import RoundConfig

__all__ = [
    "DEFAULT_MAX_CLIENTS",
    "DEFAULT_MIN_CLIENTS",
    "ROUND_KIND",
    "AnalyticsRound",
    "Contributor",
    "round_digest",
]

#: Default release threshold: no answer from fewer contributing clients.
DEFAULT_MIN_CLIENTS = 10
#: Default largest population of a round; it only sets the ring width (32-bit words suffice
#: for capped counts up to here).
DEFAULT_MAX_CLIENTS = 1 << 20
ROUND_KIND = "analytics-round"
_DP_FIELDS = ("epsilon", "delta", "colluders", "wrap_log2")


@dataclass(frozen=True)
class AnalyticsRound:
    """The query, the release threshold, the DP target and the largest population of a round."""

    query: Query
    min_clients: int = DEFAULT_MIN_CLIENTS
    dp: DistributedDP | None = None
    max_clients: int = DEFAULT_MAX_CLIENTS

    def __post_init__(self) -> None:
        if not isinstance(self.query, Query):
            raise ConfigError(f"query must be a secagg.analytics query, got {self.query!r}")
        check_positive_int("min_clients", self.min_clients)
        check_positive_int("max_clients", self.max_clients)
        if self.dp is not None and not isinstance(self.dp, DistributedDP):
            raise ConfigError("dp must be a DistributedDP")
        _ = self.bits  # refuse a spec whose ring would overflow now, not mid-round

    @functools.cached_property
    def noise(self) -> NoisePlan | None:
        """Each client's noise share (None without DP)."""
        if self.dp is None:
            return None
        q = self.query
        return plan_noise(self.dp, q.l1_sensitivity, q.l2_sensitivity, self.min_clients)

    @functools.cached_property
    def headroom(self) -> int:
        """Bound on |noise| of up to ``max_clients`` clients (0 without DP)."""
        if self.noise is None or self.dp is None:
            return 0
        return self.noise.headroom(self.max_clients, self.dp.wrap_log2)

    @property
    def bits(self) -> int:
        """The ring bit width: any sum of up to ``max_clients`` vectors plus noise fits."""
        return self.query.bits(self.max_clients, self.headroom)

    @property
    def window_low(self) -> int:
        """How far below zero a sum can reach (the decoder's window)."""
        return self.query.window_low(self.max_clients, self.headroom)

    def to_dict(self) -> dict[str, Any]:
        """The canonical encoding as a dict."""
        dp = None if self.dp is None else {f: getattr(self.dp, f) for f in _DP_FIELDS}
        return {
            "kind": ROUND_KIND,
            "version": 1,
            "query": self.query.to_dict(),
            "min_clients": self.min_clients,
            "max_clients": self.max_clients,
            "dp": dp,
        }

    def to_json(self) -> str:
        """Sorted keys, no whitespace, ASCII."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)

    def digest(self) -> bytes:
        """SHA-256 of :meth:`to_json`."""
        return hashlib.sha256(self.to_json().encode("utf-8")).digest()

    @staticmethod
    def from_json(text: str | bytes) -> AnalyticsRound:
        """Parse an analytics-round encoding, or a bare query (then with default rules)."""
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"not valid JSON: {exc}") from None
        if isinstance(data, dict) and data.get("kind") == QUERY_KIND:
            return AnalyticsRound(Query.from_dict(data))
        if not isinstance(data, dict) or data.get("kind") != ROUND_KIND:
            raise ConfigError(f"expected kind {ROUND_KIND!r} or {QUERY_KIND!r}")
        if data.get("version") != 1:
            raise ConfigError(f"analytics-round version {data.get('version')!r} is not supported")
        extra = set(data) - {"kind", "version", "query", "min_clients", "max_clients", "dp"}
        if extra:
            raise ConfigError(f"unknown analytics-round fields {sorted(extra)}")
        dp = data.get("dp")
        if dp is not None and (not isinstance(dp, dict) or set(dp) - set(_DP_FIELDS)):
            raise ConfigError(f"dp must be an object with fields from {list(_DP_FIELDS)}")
        try:
            return AnalyticsRound(
                Query.from_dict(data.get("query")),
                min_clients=data.get("min_clients", DEFAULT_MIN_CLIENTS),
                dp=None if dp is None else DistributedDP(**dp),
                max_clients=data.get("max_clients", DEFAULT_MAX_CLIENTS),
            )
        except TypeError as exc:
            raise ConfigError(f"bad analytics-round fields: {exc}") from None


def round_digest(spec: AnalyticsRound) -> bytes:
    """The 32 bytes a round answering ``spec`` binds (today: its ``context_digest``)."""
    return spec.digest()


class Contributor:
    """A client configured with one analytics round; it contributes to that one and no other."""

    def __init__(self, spec: AnalyticsRound, rng: RandomSource | None = None) -> None:
        self.spec = spec
        self._rng = rng or default_random()

    def check(self, shown: AnalyticsRound | RoundConfig) -> None:
        """Raise :class:`QueryMismatchError` unless ``shown`` (a spec, or a round's config)
        is bound to the configured spec."""
        digest = round_digest(shown) if isinstance(shown, AnalyticsRound) else shown.context_digest
        expected = round_digest(self.spec)
        if digest != expected:
            raise QueryMismatchError(expected.hex(), digest.hex())

    def vector(self, values: Sequence[Any], shown: AnalyticsRound | RoundConfig) -> RingArray:
        """The ring vector to submit: capped contributions plus this client's noise share."""
        self.check(shown)
        return to_ring(self.raw(values), self.spec.bits)

    def raw(self, values: Sequence[Any]) -> IntArray:
        """The signed integer vector (contributions + noise) before reduction mod 2^b."""
        vector = self.spec.query.encode(values, self._rng)
        noise = self.spec.noise
        if noise is not None and noise.per_client.mu > 0:
            vector = vector + noise.per_client.sample(vector.size, self._rng)
        return np.asarray(vector, dtype=np.int64)
