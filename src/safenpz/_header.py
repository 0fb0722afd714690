"""The ``.npy`` header: the byte format, parsed and validated before any data.

The format (NumPy's ``lib/format.py`` is the reference)::

    b"\\x93NUMPY" major minor  header_len  header  data
                  1 byte 1 byte  2 bytes (v1) / 4 bytes (v2, v3), little endian

``header`` is the text of a Python dict with exactly the keys ``descr``,
``fortran_order`` and ``shape``, padded with spaces and ending in ``\\n``
(latin-1 in v1/v2, UTF-8 in v3). Python 2 on 64-bit Windows wrote longs
(``'shape': (2L,)``); for versions up to 2.0 a trailing ``L`` is accepted, as
NumPy does. For a numeric dtype, ``data`` is exactly ``prod(shape) *
itemsize`` bytes; for ``dtype=object`` it is a pickle stream of the whole
array (decoded by :mod:`safenpz._decode`).

Checks, each failing with :class:`~safenpz.FormatError` (the header size with
:class:`~safenpz.LimitError`): the magic, a known version, a header no larger
than ``max_header_size`` and fully present, a literal dict with exactly the
three keys, a shape of non-negative ints (checked without multiplying huge
ints), a ``bool`` ``fortran_order`` and a ``descr`` NumPy accepts. Bytes after
the data are an error, not ignored (:func:`check_data_size`).
"""

from __future__ import annotations

import ast
import io
import math
import tokenize
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._exceptions import FormatError, Where
from ._limits import DEFAULT_LIMITS, Limits
from ._preview import preview as _preview
from ._preview import shape_problem
from ._sniff import is_npy

__all__ = ["NPY", "Header", "check_data_size", "check_pickled", "parse_header"]

# version -> (width of header_len, encoding of the header text)
_HEADER_STRUCT = {(1, 0): (2, "latin-1"), (2, 0): (4, "latin-1"), (3, 0): (4, "utf-8")}
_KEYS = {"descr", "fortran_order", "shape"}
_PARSE_ERRORS = (
    UnicodeDecodeError,
    ValueError,
    SyntaxError,
    TypeError,
    MemoryError,
    RecursionError,
    tokenize.TokenError,
)


@dataclass(frozen=True)
class Header:
    """A parsed ``.npy`` header."""

    version: tuple[int, int]
    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    fortran_order: bool
    data_offset: int

    @property
    def count(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Size of the raw data of a numeric array."""
        return self.count * self.dtype.itemsize


#: where a header is when the caller does not say
NPY = Where(source="<npy>")


def parse_header(
    prefix: bytes | bytearray | memoryview,
    *,
    where: Where = NPY,
    limits: Limits = DEFAULT_LIMITS,
) -> Header:
    """Parse and validate a ``.npy`` header from the start of `prefix`.

    Parameters
    ----------
    prefix : bytes-like
        At least the whole header (the data may follow).
    where : Where
        Where the header is (a file's name as ``source``, or an archive
        member's as ``member``); every error carries it.
    limits : Limits
        ``max_header_size`` is applied.

    Returns
    -------
    Header

    Raises
    ------
    FormatError
        Wrong magic, unknown version, truncated or malformed header.
    LimitError
        Header larger than ``max_header_size``.

    Examples
    --------
    >>> import io, numpy as np
    >>> buf = io.BytesIO(); np.save(buf, np.zeros((2, 3)))
    >>> parse_header(buf.getvalue()).shape
    (2, 3)
    """
    version, raw, start = _header_bytes(prefix, where, limits)
    known = _PARSED.get((version, raw))
    if known is None:
        known = _parse(version, raw, where)
    return Header(version, *known, start + len(raw))


#: Headers parsed already (the members of an archive share a few): the same
#: text gives the same fields. Only valid headers are kept, and only short
#: ones (what ``np.save`` writes is 118 bytes), at most ``_PARSED_MAX``, and
#: not those of structured dtypes (whose field names can be set in place: a
#: dtype handed out is never shared with another load).
_PARSED: dict[
    tuple[tuple[int, int], bytes], tuple[np.dtype[Any], tuple[int, ...], bool]
]
_PARSED = {}
_PARSED_MAX = 256
_PARSED_BYTES = 512


def _parse(
    version: tuple[int, int], raw: bytes, where: Where
) -> tuple[np.dtype[Any], tuple[int, ...], bool]:
    """The dtype, shape and order the header text `raw` gives (checked)."""
    _, encoding = _HEADER_STRUCT[version]
    try:
        text = raw.decode(encoding)
        fields = _literal(text, python2=version <= (2, 0))
    except _PARSE_ERRORS as err:
        msg = f"unreadable .npy header {raw[:60]!r}: {err}"
        raise FormatError(msg, where=where) from err
    known = _check_fields(fields, text, where)
    if len(raw) <= _PARSED_BYTES and known[0].names is None:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[version, raw] = known
    return known


def _header_bytes(
    prefix: bytes | bytearray | memoryview, where: Where, limits: Limits
) -> tuple[tuple[int, int], bytes, int]:
    """The version, the header text's bytes and where they start."""
    head = bytes(prefix[:12])
    if len(head) < 8 or not is_npy(head):
        msg = f"not a .npy file (starts with {head[:8]!r})"
        raise FormatError(msg, where=where)
    version = (head[6], head[7])
    if version not in _HEADER_STRUCT:
        msg = f"unsupported .npy format version {version[0]}.{version[1]}"
        raise FormatError(msg, where=where)
    width, _ = _HEADER_STRUCT[version]
    if len(head) < 8 + width:
        msg = "truncated .npy header"
        raise FormatError(msg, where=where)
    hlen = int.from_bytes(head[8 : 8 + width], "little")
    limits.check("max_header_size", hlen, where, what=".npy header")
    start = 8 + width
    raw = bytes(prefix[start : start + hlen])
    if len(raw) != hlen:
        msg = f"truncated .npy header ({len(raw)} of {hlen} bytes)"
        raise FormatError(msg, where=where)
    return version, raw, start


def _check_fields(
    fields: Any, text: str, where: Where
) -> tuple[np.dtype[Any], tuple[int, ...], bool]:
    """The dtype, shape and order of a header dict, checked."""
    if not isinstance(fields, dict) or set(fields) != _KEYS:
        msg = (
            "the .npy header must be a dict with exactly the keys 'descr', "
            f"'fortran_order' and 'shape', got {text[:120]!r}"
        )
        raise FormatError(msg, where=where)
    shape = fields["shape"]
    problem = shape_problem(shape)
    if problem is not None:
        msg = f"bad shape in .npy header ({problem}): {_preview(shape)}"
        raise FormatError(msg, where=where)
    fortran = fields["fortran_order"]
    if type(fortran) is not bool:
        msg = f"bad fortran_order in .npy header: {_preview(fortran)}"
        raise FormatError(msg, where=where)
    try:
        dtype = np.lib.format.descr_to_dtype(fields["descr"])
    except Exception as err:  # numpy raises TypeError/ValueError/KeyError...
        msg = f"bad descr in .npy header: {_preview(fields['descr'])}"
        raise FormatError(msg, where=where) from err
    return dtype, shape, fortran


def _literal(text: str, *, python2: bool) -> Any:
    """Evaluate a header dict literal.

    Python 2 on 64-bit Windows wrote longs in headers (``'shape': (2L,)``);
    as NumPy does for format versions up to 2.0, an ``L`` right after a number
    is dropped before the header is evaluated again.
    """
    try:
        return ast.literal_eval(text)
    except SyntaxError:
        if not python2:
            raise
    tokens: list[tokenize.TokenInfo] = []
    after_number = False
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if not (after_number and tok.type == tokenize.NAME and tok.string in "Ll"):
            tokens.append(tok)
        after_number = tok.type == tokenize.NUMBER
    return ast.literal_eval(tokenize.untokenize(tokens))


def check_data_size(where: Where, header: Header, available: int) -> None:
    """Check that exactly the ``header.nbytes`` bytes of data are present."""
    if available < header.nbytes:
        msg = (
            f"truncated: shape {header.shape} and dtype {header.dtype} need "
            f"{header.nbytes} bytes of data, the file has {available}"
        )
        raise FormatError(msg, where=where)
    if available > header.nbytes:
        msg = (
            f"{available - header.nbytes} unexpected bytes after the array data "
            f"(shape {header.shape}, dtype {header.dtype})"
        )
        raise FormatError(msg, where=where)


def check_pickled(
    where: Where, header: Header, kind: str, shape: object = None, dtype: object = None
) -> None:
    """Check that the pickle of an object ``.npy`` holds what the header
    promises: an array (`kind` ``"ndarray"``) of the header's `shape` and
    `dtype`. `kind` is the type name of what the pickle holds (the decoded
    object's, or the one the static scan found); the loader and
    ``safenpz scan`` refuse alike."""
    if kind == "ndarray" and dtype == header.dtype and shape == header.shape:
        return
    what = (
        f"an array of shape {shape} and dtype {dtype}"
        if kind == "ndarray"
        else f"a {kind}"
    )
    msg = (
        f"the header promises an array of shape {header.shape} and dtype "
        f"{header.dtype}, the pickle holds {what}"
    )
    raise FormatError(msg, where=where)
