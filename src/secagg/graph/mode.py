"""The threat model a round runs under, in the one spelling every layer uses.

``"semi-honest"``: the server follows the protocol but looks at what it sees. ``"malicious"``:
the server may lie to clients (signatures, commit-reveal and the consistency round defend
them). The graph's safe thresholds depend on it, so it lives at this layer; ``RoundConfig``,
the transport, the service and the CLI import it from here.
"""

from __future__ import annotations

from typing import Final, Literal

from secagg.errors import ConfigError

__all__ = ["MODES", "Mode", "check_mode"]

Mode = Literal["semi-honest", "malicious"]
# The wire code of a mode is its position here (RoundConfig): never reorder.
MODES: Final[tuple[Mode, ...]] = ("semi-honest", "malicious")


def check_mode(mode: object) -> Mode:
    """Validate a threat-model mode string; raises :class:`~secagg.errors.ConfigError`."""
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    return mode
