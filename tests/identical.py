"""One definition of "identical to what np.load returns", for every differential test.

``assert_identical(got, expected)`` walks both values together and fails with the
path of the first difference. Two values are identical when they have:

- the same Python type at every level (``list`` is not ``tuple``, ``OrderedDict``
  is not ``dict``, ``np.float64`` is not ``float``, ``bool`` is not ``int``);
- for arrays: the same shape, the same memory order (C/F contiguity), the same
  dtype *including* byte order, field names, titles, offsets, alignment
  (``isalignedstruct``), sub-array shapes and ``metadata``; and the same bytes
  (numeric data) or identical elements (object data, compared recursively);
- for NumPy scalars: the same dtype (as above) and the same bytes;
- for floats and complex numbers: the same bits (``-0.0`` is not ``0.0``; NaN
  equals NaN of the same payload);
- for dicts: the same keys *in the same order* and identical values;
- for sets: equal contents with identical element types.
"""

from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

import safenpz

__all__ = ["assert_identical", "dtype_signature", "np_load_all", "safenpz_load_all"]


def np_load_all(data: bytes) -> Any:
    """The reference: ``np.load(allow_pickle=True, encoding="latin1")``, every
    ``.npz`` member read into a dict (NumPy 2 warns on NumPy 1.x's
    ``numpy.core`` spelling; the warning is silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        got = np.load(io.BytesIO(data), allow_pickle=True, encoding="latin1")
    if isinstance(got, np.lib.npyio.NpzFile):
        with got:
            return {k: got[k] for k in got.files}
    return got


def safenpz_load_all(data: bytes, **kwargs: Any) -> Any:
    """``safenpz.load(data, **kwargs)``, every ``.npz`` member read into a dict."""
    got = safenpz.load(data, **kwargs)
    if isinstance(got, safenpz.NpzFile):
        with got:
            return {k: got[k] for k in got.files}
    return got


def dtype_signature(dt: np.dtype[Any]) -> tuple[Any, ...]:
    """Everything about a dtype that ``==`` may ignore, as a comparable tuple."""
    fields = None
    if dt.fields is not None:
        fields = tuple(
            (key, dtype_signature(spec[0]), *spec[1:])
            for key, spec in dt.fields.items()
        )
    sub = None
    if dt.subdtype is not None:
        sub = (dtype_signature(dt.subdtype[0]), dt.subdtype[1])
    return (
        dt.str,
        dt.byteorder,
        dt.itemsize,
        dt.alignment,
        dt.isalignedstruct,
        dt.names,
        fields,
        sub,
        None if dt.metadata is None else sorted(dt.metadata.items()),
    )


def _float_bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _fail(path: str, msg: str) -> None:
    text = f"at {path or '<root>'}: {msg}"
    raise AssertionError(text)


def _array(got: np.ndarray[Any, Any], exp: np.ndarray[Any, Any], path: str) -> None:
    if dtype_signature(got.dtype) != dtype_signature(exp.dtype):
        _fail(
            path,
            f"dtype {dtype_signature(got.dtype)} != {dtype_signature(exp.dtype)}",
        )
    if got.shape != exp.shape:
        _fail(path, f"shape {got.shape} != {exp.shape}")
    order = (got.flags.c_contiguous, got.flags.f_contiguous)
    exp_order = (exp.flags.c_contiguous, exp.flags.f_contiguous)
    if order != exp_order:
        _fail(path, f"memory order (C, F) {order} != {exp_order}")
    if not got.dtype.hasobject:
        if got.tobytes(order="A") != exp.tobytes(order="A"):
            _fail(path, "array data differ")
        return
    if got.dtype.names is not None:  # structured with object fields
        for name in got.dtype.names:
            _array(got[name], exp[name], f"{path}[{name!r}]")
        return
    for idx in np.ndindex(got.shape):
        assert_identical(got[idx], exp[idx], f"{path}[{', '.join(map(str, idx))}]")


def _mapping(got: dict[Any, Any], exp: dict[Any, Any], path: str) -> None:
    if list(got) != list(exp):
        _fail(path, f"keys (in order) {list(got)!r:.200} != {list(exp)!r:.200}")
    for (kg, vg), (ke, ve) in zip(got.items(), exp.items(), strict=True):
        assert_identical(kg, ke, f"{path}.keys()")
        assert_identical(vg, ve, f"{path}[{kg!r:.40}]")


def _sequence(got: Any, exp: Any, path: str) -> None:
    if len(got) != len(exp):
        _fail(path, f"length {len(got)} != {len(exp)}")
    for i, (g, e) in enumerate(zip(got, exp, strict=True)):
        assert_identical(g, e, f"{path}[{i}]")


def _set(got: Any, exp: Any, path: str) -> None:
    if got != exp:
        _fail(path, f"{got!r:.200} != {exp!r:.200}")
    types = sorted(type(x).__qualname__ for x in got)
    if types != sorted(type(x).__qualname__ for x in exp):
        _fail(path, "set element types differ")


def _scalar(got: np.generic, exp: np.generic, path: str) -> None:
    if dtype_signature(got.dtype) != dtype_signature(exp.dtype):
        _fail(path, f"scalar dtype {got.dtype!r} != {exp.dtype!r}")
    if got.dtype.hasobject:
        assert_identical(got.item(), exp.item(), path)
    elif np.asarray(got).tobytes() != np.asarray(exp).tobytes():
        _fail(path, f"{got!r} != {exp!r}")


def _plain(got: Any, exp: Any, path: str) -> None:
    if isinstance(got, float):
        same = _float_bits(got) == _float_bits(exp)
    elif isinstance(got, complex):
        same = _float_bits(got.real) == _float_bits(exp.real) and _float_bits(
            got.imag
        ) == _float_bits(exp.imag)
    else:
        same = got == exp
    if not same:
        _fail(path, f"{got!r:.200} != {exp!r:.200}")


_BY_KIND: list[tuple[type | tuple[type, ...], Callable[[Any, Any, str], None]]] = [
    (np.ndarray, _array),
    (np.generic, _scalar),
    (dict, _mapping),
    ((list, tuple), _sequence),
    ((set, frozenset), _set),
]


def assert_identical(got: Any, expected: Any, path: str = "") -> None:
    """Fail unless `got` is identical to `expected` (see the module docstring)."""
    if type(got) is not type(expected):
        _fail(path, f"type {type(got).__qualname__} != {type(expected).__qualname__}")
    if isinstance(got, np.dtype):
        if dtype_signature(got) != dtype_signature(expected):
            _fail(path, f"{got!r} != {expected!r}")
        return
    for kind, compare in _BY_KIND:
        if isinstance(got, kind):
            compare(got, expected, path)
            return
    _plain(got, expected, path)
