"""The query base class: what client and server share about an analytics question.

A query is a value. It says how a client turns its raw values into an integer vector
(contributions capped), how the server turns the (noisy) sum of those vectors into an answer,
how wide each coordinate can get (so the ring never wraps) and how far one client can move
the sum (its L1/L2 sensitivity, which calibrates the DP noise).

Its canonical encoding is JSON with sorted keys, no whitespace, ASCII only:
``{"kind": "query", "version": 1, "type": "<histogram|...>", ...parameters}``; ``digest()`` is
SHA-256 of those bytes. Both sides compute the digest themselves, so a server cannot show a
client one question and decode the answer to another.
"""

from __future__ import annotations

import hashlib
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from secagg.crypto.entropy import RandomSource
from secagg.errors import ConfigError

__all__ = [
    "QUERY_KIND",
    "QUERY_VERSION",
    "IntArray",
    "Label",
    "Query",
    "check_bounds",
    "check_finite",
    "check_positive_int",
]

QUERY_KIND = "query"
QUERY_VERSION = 1
#: Ring words are at most 64 bits wide (PROTOCOL.md).
_MAX_BITS = 64

Label = str | int | tuple[str | int, ...]
IntArray = npt.NDArray[np.int64]

_TYPES: dict[str, type[Query]] = {}


def check_positive_int(name: str, value: object) -> int:
    """``value`` as an int >= 1, or a ConfigError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


class Query(ABC):
    """An analytics question both sides agree on; see the module docstring."""

    #: The ``"type"`` of the canonical encoding; each concrete class sets its own.
    type_name: ClassVar[str] = ""
    max_contributions: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.type_name:
            _TYPES[cls.type_name] = cls

    # What each concrete query defines -------------------------------------------------------

    @property
    @abstractmethod
    def dim(self) -> int:
        """Length D of a client's vector."""

    @property
    @abstractmethod
    def labels(self) -> tuple[Label, ...]:
        """The keys of the answer's counts, in order."""

    @abstractmethod
    def coordinate_bounds(self) -> tuple[int, int]:
        """(lowest, highest) integer one client can put in any coordinate (lowest <= 0)."""

    @property
    @abstractmethod
    def l1_sensitivity(self) -> float:
        """Largest L1 norm of one client's vector (how far one client moves the sum)."""

    @property
    @abstractmethod
    def l2_sensitivity(self) -> float:
        """Largest L2 norm of one client's vector."""

    @abstractmethod
    def encode(self, values: Sequence[Any], rng: RandomSource) -> IntArray:
        """One client's raw values as its capped integer vector of length ``dim``."""

    @abstractmethod
    def decode(self, totals: IntArray) -> dict[Label, float]:
        """The counts (label -> value) from the summed integer vector."""

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """The parameters of the canonical encoding (JSON values)."""

    def scales(self) -> tuple[float, ...]:
        """Per label: how many answer units one unit of its summed coordinate is worth."""
        return (1.0,) * len(self.labels)

    def answer(
        self, counts: Mapping[Label, float], totals: IntArray, noise_variance: float = 0.0
    ) -> dict[str, float]:
        """Derived statistics (a mean, quantiles, error bounds); empty for plain counts.

        ``noise_variance`` is the DP noise variance per summed coordinate (0 without DP).
        """
        return {}

    # Shared behaviour ------------------------------------------------------------------------

    def bits(self, n_clients: int, noise_headroom: int = 0) -> int:
        """Smallest ring bit width b holding any sum of up to ``n_clients`` vectors plus noise.

        Any sum of n of them lies in [n*lo - a, n*hi + a] (a = ``noise_headroom``), so
        2^b > n*(hi - lo) + 2a values suffice. Raises ConfigError beyond 64 bits.
        """
        n = check_positive_int("n_clients", n_clients)
        low, high = self.coordinate_bounds()
        span = n * (high - low) + 2 * int(noise_headroom)
        bits = max(1, span.bit_length())
        if bits > _MAX_BITS:
            raise ConfigError(
                f"{n} clients of this query (coordinates in {low}..{high}) plus noise headroom "
                f"{noise_headroom} need {bits} bits; the ring has at most {_MAX_BITS}: lower "
                "max_contributions, the resolution, or the number of clients"
            )
        return bits

    def window_low(self, n_clients: int, noise_headroom: int = 0) -> int:
        """How far below zero a sum of up to ``n_clients`` vectors plus noise can reach."""
        low, _ = self.coordinate_bounds()
        return n_clients * -low + int(noise_headroom)

    def to_dict(self) -> dict[str, Any]:
        """The canonical encoding as a dict."""
        return {
            **self.params(),
            "kind": QUERY_KIND,
            "version": QUERY_VERSION,
            "type": self.type_name,
        }

    def to_json(self) -> str:
        """The canonical encoding: sorted keys, no whitespace, ASCII."""
        return json.dumps(
            self.to_dict(),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
            allow_nan=False,
        )

    def digest(self) -> bytes:
        """SHA-256 of :meth:`to_json` (UTF-8)."""
        return hashlib.sha256(self.to_json().encode("utf-8")).digest()

    @staticmethod
    def from_json(text: str | bytes) -> Query:
        """Parse a canonical (or any equivalent) JSON encoding, validating every field."""
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"query is not valid JSON: {exc}") from None
        return Query.from_dict(data)

    @staticmethod
    def from_dict(data: object) -> Query:
        """Build a query from :meth:`to_dict` output, validating every field."""
        if not isinstance(data, dict):
            raise ConfigError(f"a query must be a JSON object, got {type(data).__name__}")
        fields = dict(data)
        kind = fields.pop("kind", None)
        version = fields.pop("version", None)
        type_name = fields.pop("type", None)
        if kind != QUERY_KIND:
            raise ConfigError(f"expected kind {QUERY_KIND!r}, got {kind!r}")
        if version != QUERY_VERSION:
            raise ConfigError(f"query version {version!r} is not supported (this is 1)")
        cls = _TYPES.get(type_name) if isinstance(type_name, str) else None
        if cls is None:
            raise ConfigError(f"unknown query type {type_name!r}; expected one of {sorted(_TYPES)}")
        try:
            return cls(**fields)
        except TypeError as exc:
            raise ConfigError(f"bad parameters for a {type_name} query: {exc}") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Query) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(self.to_json())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_json()})"


def check_finite(name: str, value: object) -> float:
    """``value`` as a finite float, or a ConfigError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def check_bounds(bounds: object) -> tuple[float, float]:
    """``(low, high)`` with low < high, both finite."""
    if not isinstance(bounds, Sequence) or isinstance(bounds, str) or len(bounds) != 2:
        raise ConfigError(f"bounds must be a pair (low, high), got {bounds!r}")
    low, high = check_finite("bounds[0]", bounds[0]), check_finite("bounds[1]", bounds[1])
    if not low < high:
        raise ConfigError(f"bounds must have low < high, got {bounds!r}")
    return low, high
