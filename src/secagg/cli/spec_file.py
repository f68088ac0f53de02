"""``--spec FILE``: read a round spec (JSON) and turn it into its canonical announcement."""

from __future__ import annotations

import json
from pathlib import Path

import click

from secagg.encoding.announce import ENCODING_KIND, encoding_fields, spec_from_fields
from secagg.encoding.round_spec import MAX_SPEC_BYTES, RoundSpec
from secagg.errors import ConfigError

__all__ = ["load_spec_file"]


def load_spec_file(path: Path) -> bytes:
    """The canonical bytes of the spec in ``path`` (any JSON layout; ``1`` and ``1.0`` agree).

    An ``"encoding"`` spec is checked field by field, as a client's Encoder would read it.
    Raises :class:`click.BadParameter` naming the problem.
    """
    try:
        raw = path.read_bytes()
        if len(raw) > MAX_SPEC_BYTES:
            raise ConfigError(f"{len(raw)} bytes; at most {MAX_SPEC_BYTES}")
        obj = json.loads(raw)
        if not isinstance(obj, dict):
            raise ConfigError("expected a JSON object with 'kind' and 'version'")
        if obj.pop("version", None) != 1:
            raise ConfigError("'version' must be 1")
        kind = obj.pop("kind", None)
        spec = RoundSpec(kind, obj)
        if kind == ENCODING_KIND:
            parsed, sizes = spec_from_fields(spec)
            spec = encoding_fields(parsed, **sizes)
        return spec.encode()
    except (OSError, ValueError) as exc:  # ConfigError and JSON errors are ValueErrors
        raise click.BadParameter(f"{path}: {exc}", param_hint="--spec") from None
