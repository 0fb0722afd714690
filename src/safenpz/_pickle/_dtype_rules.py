"""NumPy dtypes from the state ``numpy.dtype.__reduce__`` pickles, checked
(for the decoder and the static scanner alike, see :mod:`safenpz._pickle._rules`).

A pickled dtype is ``numpy.dtype(code, align, copy)`` (see
:func:`safenpz._pickle._constructors`) followed by ``BUILD`` with a state
tuple. The decoder hands the C unpickler a ``_DtypeBuilder`` instead of a
dtype, whose ``__setstate__`` sends the state here; the scanner sends the
state it reads from the stream. The state is::

    (version, endian, subdescr, names, fields, elsize, alignment, flags[, metadata])

=============  ============================================================
``version``    3 (4 when ``metadata`` follows; NumPy before 1.1 wrote
               version 1 with seven items: no ``flags``)
``endian``     ``"<"``, ``">"``, ``"|"`` or ``"="``
``subdescr``   ``None``, or ``(base dtype, shape)`` for a sub-array dtype
``names``      ``None``, or the tuple of field names of a structured dtype
``fields``     ``None``, or name (and title) -> ``(dtype, offset[, title])``
``elsize``     the item size (``-1`` for fixed-size types)
``alignment``  ignored (NumPy recomputes it)
``flags``      NumPy's dtype flags; only ``NPY_ALIGNED_STRUCT`` is used
``metadata``   a dict, or for datetimes ``(dict or None, (unit, num, 1, 1))``
=============  ============================================================

Exactly one case applies, in this order: structured (``names`` is not
``None``, :func:`_structured_dtype`), sub-array (``subdescr`` is not
``None``, :func:`_subarray_dtype`), or simple (:func:`_simple_dtype`, with
:func:`_datetime_dtype` for ``M8``/``m8``). Metadata is checked by
:func:`_metadata`. Every dtype is finally made by ``numpy.dtype`` itself from
checked parts; nothing named in the state is imported or called.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple, NoReturn

import numpy as np

from ._rules import Refused, Resolve, as_bytes, as_text, check_shape, preview

__all__ = ["dtype_from_state"]

_DTYPE_CODE = re.compile(r"^(?:[biufcSUVOMm]\d{0,6}|[?]|b1)$")
_ENDIANS = frozenset({"<", ">", "|", "="})
_DATETIME_UNITS = frozenset(
    {"Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as", "generic"}
)
_ALIGNED_STRUCT = 0x80  # NPY_ALIGNED_STRUCT in a dtype state's flags
_METADATA_LEAVES = (str, int, float, bool, bytes, type(None))
_MAX_FIELDS = 4096
_MAX_METADATA = 1024


def _refuse(message: str) -> NoReturn:
    raise Refused(message)


class _State(NamedTuple):
    """A dtype state whose version, endian, item size and flags are checked."""

    endian: str
    subdescr: object
    names: object
    fields: object
    elsize: int
    flags: int
    extra: object  # the metadata item, or None


def dtype_from_state(code: str, state: object, resolve: Resolve) -> np.dtype[Any]:
    """Rebuild the dtype ``numpy.dtype(code)`` + ``BUILD(state)`` describes.

    `state` is ``(version, endian, subdescr, names, fields, elsize, alignment,
    flags[, metadata])`` (7 items for version 1, no ``flags``), as in the
    module docstring; `resolve` gives the finished dtype of each dtype
    reference in it. NumPy's own errors on checked but inconsistent parts
    are refused too.
    """
    st = _unpack(state)
    try:
        return _dtype_of(code, st, resolve)
    except Refused:
        raise
    except (TypeError, ValueError, OverflowError) as err:
        _refuse(f"invalid dtype: {preview(err)}")


def _unpack(state: object) -> _State:
    """Check the layout: a tuple of 7, 8 or 9 items, ``version`` in 1-4,
    ``endian`` one of ``< > | =`` (bytes under ``encoding="bytes"``), int
    ``elsize`` and ``flags``."""
    if not isinstance(state, tuple) or len(state) not in (7, 8, 9):
        _refuse(f"bad dtype state {preview(state)}")
    if len(state) == 7:  # version 1 (NumPy < 1.1): no flags yet
        state = (*state, 0)
    version, endian, subdescr, names, fields, elsize, _align, flags = state[:8]
    extra = state[8] if len(state) == 9 else None
    endian = as_text(endian)
    if version not in (1, 2, 3, 4) or type(endian) is not str or endian not in _ENDIANS:
        _refuse(f"bad dtype state {preview(state)}")
    if type(elsize) is not int or type(flags) is not int:
        _refuse("bad dtype item size or flags")
    assert isinstance(endian, str)
    return _State(endian, subdescr, names, fields, elsize, flags, extra)


def _dtype_of(code: str, st: _State, resolve: Resolve) -> np.dtype[Any]:
    """The one case that applies (structured, sub-array, simple), then the
    metadata NumPy keeps on the dtype."""
    extra = st.extra
    if st.names is not None:
        dt = _structured_dtype(st, resolve)
    elif st.subdescr is not None:
        dt = _subarray_dtype(st.subdescr, resolve)
    else:
        dt, extra = _simple_dtype(code, st.endian, st.elsize, extra)
    if extra is not None:
        dt = np.dtype(dt, metadata=_metadata(extra))
    return dt


def _structured_dtype(st: _State, resolve: Resolve) -> np.dtype[Any]:
    """A structured dtype from the state's ``names``, ``fields``, ``elsize``
    and ``flags``.

    ``names`` is a tuple of at most 4096 distinct ``str`` field names;
    ``fields`` maps each name, and each field's title if it has one, to
    ``(dtype, offset)`` or ``(dtype, offset, title)`` (the title entry is the
    same tuple); nothing else. ``flags & NPY_ALIGNED_STRUCT`` means
    ``align=True``.
    """
    names_t, fields_d = _field_table(st.names, st.fields)
    formats, offsets, titles = [], [], []
    for n in names_t:
        dt, offset, title = _field(n, fields_d[n], names_t, fields_d, resolve)
        formats.append(dt)
        offsets.append(offset)
        titles.append(title)
    # NumPy lists each field under its name and again under its title
    if not set(fields_d) <= set(names_t) | {t for t in titles if t is not None}:
        _refuse("a structured dtype lists fields that have no name")
    return np.dtype(
        {
            "names": list(names_t),
            "formats": formats,
            "offsets": offsets,
            "titles": titles,
            "itemsize": st.elsize,
        },
        align=bool(st.flags & _ALIGNED_STRUCT),
    )


def _field_table(
    names: object, fields: object
) -> tuple[tuple[str, ...], dict[object, Any]]:
    """``names`` (a tuple of distinct ``str``) and ``fields`` (a dict holding
    every name), with Python 2 byte strings read as text."""
    if isinstance(names, tuple):
        names = tuple(as_text(n) for n in names)
    if isinstance(fields, dict):
        fields = {as_text(k): v for k, v in fields.items()}
    if not (
        isinstance(names, tuple)
        and isinstance(fields, dict)
        and all(type(n) is str for n in names)
        and len(set(names)) == len(names) <= _MAX_FIELDS
        and set(names) <= set(fields)
    ):
        _refuse("bad structured dtype fields")
    return names, fields


def _field(
    name: str,
    spec: object,
    names: tuple[str, ...],
    fields: dict[object, Any],
    resolve: Resolve,
) -> tuple[np.dtype[Any], int, str | None]:
    """One field's ``(dtype, offset[, title])``: a dtype, an int offset, and
    a title that is a ``str`` naming no field and no other entry."""
    if not (isinstance(spec, tuple) and len(spec) in (2, 3)):
        _refuse(f"bad field {preview(name)} in structured dtype")
    if type(spec[1]) is not int:
        _refuse(f"bad offset of field {preview(name)} in structured dtype")
    dt = resolve(spec[0])
    title = as_text(spec[2]) if len(spec) == 3 else None
    if title is not None:
        if type(title) is not str or title in names:
            _refuse(f"bad title of field {preview(name)}")
        if title in fields and fields[title] is not spec:
            _refuse(f"the title of field {preview(name)} names another field")
    return dt, spec[1], title


def _subarray_dtype(subdescr: object, resolve: Resolve) -> np.dtype[Any]:
    """A sub-array dtype from the state's ``subdescr``: ``(base dtype, shape
    tuple)``."""
    if not (isinstance(subdescr, tuple) and len(subdescr) == 2):
        _refuse("bad sub-array dtype")
    base = resolve(subdescr[0])
    sub_shape = check_shape(subdescr[1])
    return np.dtype((base, sub_shape))


def _simple_dtype(
    code: str, endian: str, elsize: int, extra: object
) -> tuple[np.dtype[Any], object]:
    """A dtype named by its type code (``"f8"``, ``"U7"``, ``"M8"`` ...).

    `code` is the argument of ``numpy.dtype``; the state's ``endian`` sets the
    byte order and a positive ``elsize`` the size of a ``S``/``U``/``V``
    type. Returns the dtype and what is left of the state's metadata item
    `extra` (datetimes carry ``(metadata, (unit, num, 1, 1))`` there, see
    :func:`_datetime_dtype`).
    """
    if not _DTYPE_CODE.match(code):
        _refuse(f"unsupported dtype code {preview(code)}")
    dt = np.dtype(code)
    if dt.kind in "SUV" and elsize > 0:
        per = 4 if dt.kind == "U" else 1
        dt = np.dtype(f"{dt.kind}{elsize // per}")
    if dt.kind in "Mm":
        dt, extra = _datetime_dtype(dt.kind, extra)
    if endian in "<>" and dt.itemsize > 1:
        # through the type string, so native order reads "=" as in NumPy
        dt = np.dtype(endian + dt.str[1:])
    return dt, extra


def _datetime_dtype(kind: str, extra: object) -> tuple[np.dtype[Any], object]:
    """A ``datetime64`` (`kind` ``"M"``) or ``timedelta64`` (``"m"``) dtype
    from the state's metadata item ``(metadata, (unit, num, 1, 1))``: a unit
    NumPy knows (bytes or latin-1 text) and ``0 < num < 2**31``. Returns the
    dtype and ``metadata`` (a dict or None)."""
    if not (
        isinstance(extra, tuple)
        and len(extra) == 2
        and isinstance(extra[1], tuple)
        and len(extra[1]) == 4
    ):
        _refuse("datetime dtype without unit metadata")
    unit = as_bytes(extra[1][0], "datetime unit").decode("latin-1")
    num = extra[1][1]
    if unit not in _DATETIME_UNITS or type(num) is not int or not 0 < num < 2**31:
        _refuse(f"bad datetime unit {preview(unit)}")
    return np.dtype(f"{kind}8[{'' if num == 1 else num}{unit}]"), extra[0]


def _metadata(meta: object) -> dict[str, Any]:
    """dtype metadata: a dict of at most 1024 ``str`` keys to scalars,
    strings or flat lists/tuples of at most 1024 of them (what users attach
    in practice)."""
    if not isinstance(meta, dict) or len(meta) > _MAX_METADATA:
        _refuse("dtype metadata must be a small dict")
    for key, value in meta.items():
        values = value if type(value) in (list, tuple) else (value,)
        if type(key) is not str or len(values) > _MAX_METADATA:
            _refuse("dtype metadata must have str keys and small values")
        if not all(isinstance(v, _METADATA_LEAVES) for v in values):
            _refuse(
                f"dtype metadata {preview(key)} holds a "
                f"{type(value).__name__}; only scalars and strings are supported"
            )
    return meta
