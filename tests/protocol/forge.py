"""Messages no honest library builds: for tests of a session's own defences.

Messages validate on construction, and everything a peer sends arrives through the codec, which
builds them; so a session never sees a malformed message in production. These helpers skip
the validation (``object.__new__``) to stand in for a buggy or hostile caller handing a session
an object directly, which sessions must still survive (defence in depth).
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def forge(cls: type[T], **fields: Any) -> T:
    """An instance of the message dataclass ``cls`` with ``fields``, unchecked."""
    msg = object.__new__(cls)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in fields:
            value = fields[f.name]
        elif f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            raise TypeError(f"forge({cls.__name__}) needs {f.name}")
        object.__setattr__(msg, f.name, value)
    return msg


def forge_replace(msg: T, **changes: Any) -> T:
    """``dataclasses.replace`` without the validation."""
    values = {f.name: getattr(msg, f.name) for f in dataclasses.fields(msg)}  # type: ignore[arg-type]
    return forge(type(msg), **{**values, **changes})
