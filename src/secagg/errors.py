"""The one exception hierarchy of secagg.

Every error secagg raises derives from :class:`SecAggError`. Messages say what was wrong and
what was expected; they never contain key, seed, share or vector contents.
"""

from __future__ import annotations

from collections.abc import Iterable

from secagg.reasons import AbortReason

__all__ = [
    "ConfigError",
    "CryptoError",
    "DecryptionError",
    "EncodingError",
    "InconsistentSharesError",
    "InsufficientSharesError",
    "InvalidKeyError",
    "KeyAgreementError",
    "LocalProtocolError",
    "MalformedMessageError",
    "OutputError",
    "ProtocolError",
    "QueryMismatchError",
    "RemoteProtocolError",
    "RoundAbortedError",
    "SavedSessionError",
    "SecAggError",
    "ShareError",
    "SignatureError",
    "SpecMismatchError",
    "TransportError",
    "UnsafeParametersError",
    "UnsupportedStrategyError",
]


class SecAggError(Exception):
    """Base class of every error raised by secagg."""


class ConfigError(SecAggError, ValueError):
    """A parameter is out of its allowed range or parameters contradict each other."""


class UnsafeParametersError(ConfigError):
    """Round parameters are weaker than a safety rule or a client's own floor allows.

    ``problem`` says what is unsafe without naming how to override it, so that each interface
    (Python keyword, CLI flag) can add its own way; ``override`` is the Python way, appended
    to the message.
    """

    def __init__(
        self, problem: str, *, override: str | None = "pass allow_unsafe=True to use it anyway"
    ) -> None:
        super().__init__(problem if override is None else f"{problem} ({override})")
        self.problem = problem


class SavedSessionError(ConfigError):
    """Saved client-session bytes cannot be restored: not a saved session, an unknown format
    version, truncated, trailing or garbled data, or restore arguments that do not fit them."""


class OutputError(SecAggError):
    """A result or report file could not be written."""


class EncodingError(SecAggError, ValueError):
    """Input cannot be encoded or decoded as asked (shape, dtype, range, wrap-around risk)."""


class SpecMismatchError(EncodingError):
    """Vectors or a sum would be read with another spec than the round announced."""


class CryptoError(SecAggError):
    """Base class of cryptographic failures."""


class InvalidKeyError(CryptoError, ValueError):
    """Key material has the wrong length or is not a valid key."""


class KeyAgreementError(CryptoError):
    """X25519 agreement gave a low-order (all-zero) shared secret."""


class DecryptionError(CryptoError):
    """A ciphertext failed to open. Deliberately says nothing about why."""

    def __init__(self) -> None:
        super().__init__("ciphertext failed authentication")


class SignatureError(CryptoError):
    """A signature did not verify under the given public key."""


class ShareError(CryptoError):
    """Base class of Shamir secret-sharing failures."""


class InsufficientSharesError(ShareError):
    """Fewer shares than the threshold were given."""


class InconsistentSharesError(ShareError):
    """Shares do not lie on one polynomial of the threshold's degree.

    ``bad_points`` names the evaluation points whose shares disagree with the polynomial that
    most shares agree on; it is empty when too few shares arrived to tell which are bad.
    """

    def __init__(self, message: str, bad_points: Iterable[int] = ()) -> None:
        super().__init__(message)
        self.bad_points: tuple[int, ...] = tuple(sorted(bad_points))


class ProtocolError(SecAggError):
    """Base class of protocol violations."""


class LocalProtocolError(ProtocolError):
    """The caller used a session object wrongly (e.g. an action illegal in its current state)."""


class RemoteProtocolError(ProtocolError):
    """A peer sent something the protocol forbids; ``reason`` is a stable reason code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class MalformedMessageError(ProtocolError, ValueError):
    """A message (built from a peer's bytes or fields) is not well formed: wrong types, sizes,
    ranges or shapes. Sessions catch exactly this to blame the peer; any other exception out of
    a handler is a bug in this library and propagates."""


class RoundAbortedError(SecAggError):
    """The round ended without a result; ``reason`` is an :class:`~secagg.reasons.AbortReason`.

    A reason given as its string value is converted; one that is no AbortReason value raises
    ValueError (a bug in the caller: every reason is an enum value).
    """

    def __init__(self, reason: AbortReason | str, detail: str) -> None:
        self.reason = AbortReason(reason)
        super().__init__(f"round aborted ({self.reason.value}): {detail}")
        self.detail = detail


class QueryMismatchError(SecAggError):
    """A client was shown an analytics query other than the one it was configured with.

    Carries only the two digests (hex), never the client's values.
    """

    def __init__(self, expected: str, shown: str) -> None:
        super().__init__(
            f"refusing to contribute: the round's query has digest {shown}, expected the "
            f"configured query's digest {expected}"
        )
        self.expected = expected
        self.shown = shown


class TransportError(SecAggError):
    """The network layer failed (connection, deadline, message framing)."""


class UnsupportedStrategyError(ConfigError):
    """A federated-learning strategy needs individual client updates, which secure aggregation
    never reveals (e.g. median, trimmed mean, Krum, Bulyan); only weighted-mean strategies
    run on a securely aggregated reply."""
