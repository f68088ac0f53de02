"""Files a client is handed on the command line, checked before anything connects.

Each problem is one :class:`click.BadParameter` line naming the file and what is wrong: a
``.npz`` archive, text, a pickle, a header claiming more values than the file holds or than a
round can take, a non-integer or multi-dimensional array; a CA file without a PEM certificate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np
import numpy.typing as npt
from cryptography import x509

__all__ = ["MAX_INPUT_VALUES", "load_ca_certificates", "load_input_vector"]

MAX_INPUT_VALUES = 2**31  # the largest D a round can have (the server's --max-dim ceiling)
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"


def _bad(path: Path, problem: str, hint: str) -> click.BadParameter:
    return click.BadParameter(f"{path}: {problem}", param_hint=hint)


def load_input_vector(
    path: Path, hint: str = "--input", *, floats: bool = False
) -> npt.NDArray[Any]:
    """The 1-D integer (or, with ``floats``, numeric) vector in the ``.npy`` file at ``path``."""
    try:
        with path.open("rb") as fh:
            start = fh.read(len(_NPY_MAGIC))
            if start.startswith(_ZIP_MAGIC):
                raise _bad(path, "is a .npz archive; save one vector with numpy.save", hint)
            if start != _NPY_MAGIC:
                raise _bad(path, "is not a .npy file (no NumPy header)", hint)
            fh.seek(0)
            try:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, _order, dtype = np.lib.format.read_array_header_1_0(fh)
                elif version == (2, 0):
                    shape, _order, dtype = np.lib.format.read_array_header_2_0(fh)
                else:  # 3.0 exists only for structured dtypes with non-Latin-1 field names
                    raise _bad(path, f"uses .npy format {version}, expected 1.0 or 2.0", hint)
            except (ValueError, SyntaxError, TypeError) as exc:
                raise _bad(path, f"has a malformed .npy header ({exc})", hint) from None
            header_end = fh.tell()
            fh.seek(0, 2)
            size = fh.tell()
    except OSError as exc:
        raise _bad(path, f"cannot be read ({exc.strerror or exc})", hint) from None
    if dtype.hasobject or dtype.kind not in ("iuf" if floats else "iu"):
        raise _bad(path, f"must hold {'numbers' if floats else 'integers'}, not {dtype}", hint)
    if len(shape) != 1 or shape[0] < 1:
        raise _bad(path, f"must hold a non-empty 1-D vector, not shape {shape}", hint)
    count = int(shape[0])
    if count > MAX_INPUT_VALUES:
        raise _bad(path, f"claims {count} values; a round takes at most {MAX_INPUT_VALUES}", hint)
    if size - header_end < count * dtype.itemsize:
        raise _bad(
            path,
            f"claims {count} values of {dtype.itemsize} bytes but holds only "
            f"{size - header_end} bytes of data",
            hint,
        )
    try:
        vector = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise _bad(path, f"cannot be read as .npy ({exc})", hint) from None
    return np.asarray(vector)


def load_ca_certificates(path: Path, hint: str = "--ca-cert") -> bytes:
    """The PEM bytes at ``path``, once they parse as at least one X.509 certificate."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _bad(path, f"cannot be read ({exc.strerror or exc})", hint) from None
    try:
        x509.load_pem_x509_certificates(data)
    except ValueError:
        raise _bad(
            path, "holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)", hint
        ) from None
    return data
