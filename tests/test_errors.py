"""The one exception hierarchy: everything derives from SecAggError; __all__ is complete."""

from __future__ import annotations

import inspect

import pytest

import secagg.errors as errors
from secagg.errors import (
    ConfigError,
    CryptoError,
    DecryptionError,
    InconsistentSharesError,
    RemoteProtocolError,
    RoundAbortedError,
    SecAggError,
    ShareError,
)
from secagg.reasons import AbortReason


def _public_classes() -> set[str]:
    return {
        name
        for name, obj in vars(errors).items()
        if inspect.isclass(obj) and obj.__module__ == errors.__name__ and not name.startswith("_")
    }


def test_all_matches_public_classes() -> None:
    assert set(errors.__all__) == _public_classes()
    assert len(errors.__all__) == len(set(errors.__all__))


@pytest.mark.parametrize("name", errors.__all__)
def test_every_exported_error_derives_from_secagg_error(name: str) -> None:
    cls = getattr(errors, name)
    assert inspect.isclass(cls)
    assert issubclass(cls, SecAggError)
    assert issubclass(cls, Exception)


def test_hierarchy() -> None:
    assert issubclass(ConfigError, ValueError)
    assert issubclass(DecryptionError, CryptoError)
    assert issubclass(InconsistentSharesError, ShareError)
    assert issubclass(ShareError, CryptoError)


def test_decryption_error_message_is_fixed() -> None:
    assert str(DecryptionError()) == "ciphertext failed authentication"


def test_inconsistent_shares_error_keeps_sorted_points() -> None:
    exc = InconsistentSharesError("bad", [9, 2, 5])
    assert exc.bad_points == (2, 5, 9)
    assert InconsistentSharesError("bad").bad_points == ()


def test_reasoned_errors_carry_reason_and_detail() -> None:
    remote = RemoteProtocolError("bad_signature", "share from client 3")
    assert (remote.reason, remote.detail) == ("bad_signature", "share from client 3")
    assert str(remote) == "bad_signature: share from client 3"
    aborted = RoundAbortedError("too-few-clients", "2 < 3")
    assert aborted.reason is AbortReason.TOO_FEW_CLIENTS
    assert "too-few-clients" in str(aborted)
    assert RoundAbortedError(AbortReason.MISSING_REVEAL, "x").reason is AbortReason.MISSING_REVEAL


def test_a_round_abort_reason_is_always_an_abort_reason() -> None:
    """A free string is a caller bug: every reason is an enum value (secagg.reasons)."""
    with pytest.raises(ValueError, match="AbortReason"):
        RoundAbortedError("too_few_clients", "2 < 3")
