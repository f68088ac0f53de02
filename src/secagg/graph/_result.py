"""GraphParameters: a (degree, threshold) choice with the failure bounds it achieves."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["GraphParameters"]


@dataclass(frozen=True, slots=True)
class GraphParameters:
    """A neighbour degree and threshold, with the failure bounds they achieve.

    ``*_failure_log2`` are log2 of upper bounds on the probability that the round leaks an
    individual input (privacy) or aborts (correctness) under the finder's model; ``-inf`` when
    the event is impossible under it. ``meets_correctness`` is false when no parameters reach
    the correctness target: the finder then returns the most robust private choice and says so
    here instead of failing (the round will abort with about ``abort_probability``).
    """

    degree: int
    threshold: int
    complete: bool
    privacy_failure_log2: float
    correctness_failure_log2: float
    meets_correctness: bool = True

    @property
    def abort_probability(self) -> float:
        """Upper bound on the probability that a round with these parameters aborts."""
        return float(2.0**self.correctness_failure_log2)

    @property
    def privacy_failure(self) -> float:
        """Upper bound on the probability that a round leaks an individual input."""
        return float(2.0**self.privacy_failure_log2)

    def describe(self) -> str:
        """One line for logs and the CLI, e.g. ``k=30, t=17; privacy failure <= 2^-41.2; ...``."""
        graph = " (complete graph)" if self.complete else ""
        text = (
            f"k={self.degree}, t={self.threshold}{graph}; privacy failure <= "
            f"{_log2_text(self.privacy_failure_log2)}; abort probability <= "
            f"{_log2_text(self.correctness_failure_log2)}"
        )
        if not self.meets_correctness:
            text += " (above the correctness target)"
        return text


def _log2_text(log2: float) -> str:
    if log2 == -math.inf:
        return "0"
    if log2 > -10:
        return f"{100 * 2.0**log2:.3g}%"
    return f"2^{log2:.1f}"
