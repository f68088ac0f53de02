"""The public surface of secagg.encoding."""

from __future__ import annotations

import types

import secagg.encoding


def test_all_is_exactly_what_is_exported() -> None:
    public = {
        name
        for name, value in vars(secagg.encoding).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(secagg.encoding.__all__) == public
    assert len(secagg.encoding.__all__) == len(set(secagg.encoding.__all__))
