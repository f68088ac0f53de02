"""ClientPolicy: what a client accepts as round parameters, decided by the client.

The server announces n, k and t; a malicious server can announce parameters that let it and a
few colluders rebuild one client's secrets (k = 2, t = 1, or a degree too small for n). So a
client judges the announced (n, k, t) itself, with its own assumptions about how many clients
are corrupt and how many drop out, using the parameter finder's independent-draws model
(:func:`secagg.graph.evaluate_parameters`): the privacy failure probability must be at most
2^-privacy_bits. The defaults (5% corrupt, 5% dropout, 2^-40) are the finder's defaults, so a
server running with default settings always passes.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from secagg.errors import ConfigError, UnsafeParametersError
from secagg.graph import check_parameters, evaluate_parameters, find_parameters
from secagg.protocol.config import RoundConfig

__all__ = ["ClientPolicy"]


def _check_rate(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be a number in [0, 1), got {value!r}")
    if not (math.isfinite(float(value)) and 0.0 <= float(value) < 1.0):
        raise ConfigError(f"{name} must be in [0, 1), got {value!r}")


@dataclass(frozen=True, slots=True)
class ClientPolicy:
    """A client's floor on the round parameters it takes part in.

    ``corrupt_rate`` and ``dropout_rate`` are the fractions of clients this client assumes
    corrupt and dropping (each client independently); ``privacy_bits`` is its budget: the
    probability that the round leaks an individual input must be at most 2^-privacy_bits.

    ``allow_weak_parameters=True`` skips the floor (parameters the client's model calls unsafe
    are accepted); it is an explicit, loudly named opt-out for experiments. It never relaxes
    the mode's threshold rule (t > (k + 1)/2, malicious t > 2(k + 1)/3): that needs
    ``allow_unsafe=True`` as well.
    """

    corrupt_rate: float = 0.05
    dropout_rate: float = 0.05
    privacy_bits: float = 40
    allow_weak_parameters: bool = False
    allow_unsafe: bool = False

    def __post_init__(self) -> None:
        _check_rate("corrupt_rate", self.corrupt_rate)
        _check_rate("dropout_rate", self.dropout_rate)
        bits: object = self.privacy_bits
        if (
            isinstance(bits, bool)
            or not isinstance(bits, numbers.Real)
            or not 0 < float(bits) <= 256
        ):
            raise ConfigError(f"privacy_bits must be a number in (0, 256], got {bits!r}")

    def check(self, config: RoundConfig) -> None:
        """Raise :class:`UnsafeParametersError` unless this client accepts ``config``.

        The message gives the numbers: the achieved privacy failure bound against the
        client's budget, and what the parameter finder would choose for this n.
        """
        n, k, t, mode = config.num_clients, config.degree, config.threshold, config.mode
        check_parameters(n, k, t, mode, allow_unsafe=self.allow_unsafe)
        if self.allow_weak_parameters:
            return
        achieved = evaluate_parameters(
            n, k, t, mode, dropout_rate=self.dropout_rate, corrupt_rate=self.corrupt_rate
        )
        if achieved.privacy_failure_log2 <= -self.privacy_bits:
            return
        wanted = find_parameters(
            n,
            dropout_rate=self.dropout_rate,
            corrupt_rate=self.corrupt_rate,
            mode=mode,
            privacy_bits=self.privacy_bits,
        )
        raise UnsafeParametersError(
            f"announced parameters n = {n}, k = {k}, t = {t} ({mode}) are too weak for this "
            f"client: privacy failure probability <= 2^{achieved.privacy_failure_log2:.1f}, "
            f"above this client's budget of 2^-{self.privacy_bits:g} (assuming "
            f"{100 * self.corrupt_rate:g}% corrupt and {100 * self.dropout_rate:g}% dropping "
            f"clients); for n = {n} the parameter finder would choose k = {wanted.degree}, "
            f"t = {wanted.threshold}",
            override="pass allow_weak_parameters=True to accept weaker ones",
        )
