"""NumPy dtypes from the state ``numpy.dtype.__reduce__`` pickles, checked.

A pickled dtype is ``numpy.dtype(code, align, copy)`` (see
:func:`safenpz._pickle._constructors`) followed by ``BUILD`` with a state
tuple. The decoder hands the C unpickler a :class:`_DtypeBuilder` instead of
a dtype; its ``__setstate__`` sends the state here. The state is::

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
from typing import Any, NamedTuple

import numpy as np

from .._exceptions import SafenpzError
from ._context import Builder, Context, as_bytes, as_text, check_shape, preview

__all__ = ["_DtypeBuilder", "dtype_from_state", "resolve_dtype"]

_DTYPE_CODE = re.compile(r"^(?:[biufcSUVOMm]\d{0,6}|[?]|b1)$")
_ENDIANS = frozenset({"<", ">", "|", "="})
_DATETIME_UNITS = frozenset(
    {"Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as", "generic"}
)
_ALIGNED_STRUCT = 0x80  # NPY_ALIGNED_STRUCT in a dtype state's flags
_METADATA_LEAVES = (str, int, float, bool, bytes, type(None))
_MAX_FIELDS = 4096
_MAX_METADATA = 1024


# The class name shows in messages ("expected a dtype, got _DtypeBuilder"),
# so it keeps the name it had before the pickle package existed.
class _DtypeBuilder(Builder):
    """Stands for ``numpy.dtype(code, ...)`` until ``BUILD`` gives its state."""

    __slots__ = ("code",)
    kind = "dtype"

    def __init__(self, ctx: Context, code: str) -> None:
        super().__init__(ctx)
        self.code = code

    def __setstate__(self, state: object) -> None:
        if self._built:
            self.ctx.fail("a dtype was built twice")
        self.value = dtype_from_state(self.ctx, self.code, state)
        self._built = True


def resolve_dtype(ctx: Context, obj: object) -> np.dtype[Any]:
    """The finished dtype `obj` stands for (it must be a :class:`_DtypeBuilder`)."""
    if isinstance(obj, _DtypeBuilder):
        value = obj.result()
        assert isinstance(value, np.dtype)
        return value
    ctx.fail(f"expected a dtype, got {type(obj).__name__}")


class _State(NamedTuple):
    """A dtype state whose version, endian, item size and flags are checked."""

    endian: str
    subdescr: object
    names: object
    fields: object
    elsize: int
    flags: int
    extra: object  # the metadata item, or None


def dtype_from_state(ctx: Context, code: str, state: object) -> np.dtype[Any]:
    """Rebuild the dtype ``numpy.dtype(code)`` + ``BUILD(state)`` describes.

    `state` is ``(version, endian, subdescr, names, fields, elsize, alignment,
    flags[, metadata])`` (7 items for version 1, no ``flags``), as in the
    module docstring. NumPy's own errors on checked but inconsistent parts
    become :class:`~safenpz.FormatError`.
    """
    st = _unpack(ctx, state)
    try:
        return _dtype_of(ctx, code, st)
    except SafenpzError:
        raise
    except (TypeError, ValueError, OverflowError) as err:
        ctx.fail(f"invalid dtype: {preview(err)}")


def _unpack(ctx: Context, state: object) -> _State:
    """Check the layout: a tuple of 7, 8 or 9 items, ``version`` in 1-4,
    ``endian`` one of ``< > | =`` (bytes under ``encoding="bytes"``), int
    ``elsize`` and ``flags``."""
    if not isinstance(state, tuple) or len(state) not in (7, 8, 9):
        ctx.fail(f"bad dtype state {preview(state)}")
    if len(state) == 7:  # version 1 (NumPy < 1.1): no flags yet
        state = (*state, 0)
    version, endian, subdescr, names, fields, elsize, _align, flags = state[:8]
    extra = state[8] if len(state) == 9 else None
    endian = as_text(endian)
    if version not in (1, 2, 3, 4) or endian not in _ENDIANS:
        ctx.fail(f"bad dtype state {preview(state)}")
    if type(elsize) is not int or type(flags) is not int:
        ctx.fail("bad dtype item size or flags")
    assert isinstance(endian, str)
    return _State(endian, subdescr, names, fields, elsize, flags, extra)


def _dtype_of(ctx: Context, code: str, st: _State) -> np.dtype[Any]:
    """The one case that applies (structured, sub-array, simple), then the
    metadata NumPy keeps on the dtype."""
    extra = st.extra
    if st.names is not None:
        dt = _structured_dtype(ctx, st.names, st.fields, st.elsize, st.flags)
    elif st.subdescr is not None:
        dt = _subarray_dtype(ctx, st.subdescr)
    else:
        dt, extra = _simple_dtype(ctx, code, st.endian, st.elsize, extra)
    if extra is not None:
        dt = np.dtype(dt, metadata=_metadata(ctx, extra))
    return dt


def _structured_dtype(
    ctx: Context, names: object, fields: object, elsize: int, flags: int
) -> np.dtype[Any]:
    """A structured dtype from the state's ``names``, ``fields``, ``elsize``
    and ``flags``.

    ``names`` is a tuple of at most 4096 distinct ``str`` field names;
    ``fields`` maps each name, and each field's title if it has one, to
    ``(dtype, offset)`` or ``(dtype, offset, title)`` (the title entry is the
    same tuple); nothing else. ``flags & NPY_ALIGNED_STRUCT`` means
    ``align=True``.
    """
    names_t, fields_d = _field_table(ctx, names, fields)
    formats, offsets, titles = [], [], []
    for n in names_t:
        dt, offset, title = _field(ctx, n, fields_d[n], names_t, fields_d)
        formats.append(dt)
        offsets.append(offset)
        titles.append(title)
    # NumPy lists each field under its name and again under its title
    if not set(fields_d) <= set(names_t) | {t for t in titles if t is not None}:
        ctx.fail("a structured dtype lists fields that have no name")
    return np.dtype(
        {
            "names": list(names_t),
            "formats": formats,
            "offsets": offsets,
            "titles": titles,
            "itemsize": elsize,
        },
        align=bool(flags & _ALIGNED_STRUCT),
    )


def _field_table(
    ctx: Context, names: object, fields: object
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
        ctx.fail("bad structured dtype fields")
    return names, fields


def _field(
    ctx: Context,
    name: str,
    spec: object,
    names: tuple[str, ...],
    fields: dict[object, Any],
) -> tuple[np.dtype[Any], int, str | None]:
    """One field's ``(dtype, offset[, title])``: a dtype, an int offset, and
    a title that is a ``str`` naming no field and no other entry."""
    if not (isinstance(spec, tuple) and len(spec) in (2, 3)):
        ctx.fail(f"bad field {preview(name)} in structured dtype")
    if type(spec[1]) is not int:
        ctx.fail(f"bad offset of field {preview(name)} in structured dtype")
    dt = resolve_dtype(ctx, spec[0])
    title = as_text(spec[2]) if len(spec) == 3 else None
    if title is not None:
        if type(title) is not str or title in names:
            ctx.fail(f"bad title of field {preview(name)}")
        if title in fields and fields[title] is not spec:
            ctx.fail(f"the title of field {preview(name)} names another field")
    return dt, spec[1], title


def _subarray_dtype(ctx: Context, subdescr: object) -> np.dtype[Any]:
    """A sub-array dtype from the state's ``subdescr``: ``(base dtype, shape
    tuple)``."""
    if not (isinstance(subdescr, tuple) and len(subdescr) == 2):
        ctx.fail("bad sub-array dtype")
    base = resolve_dtype(ctx, subdescr[0])
    sub_shape = check_shape(ctx, subdescr[1])
    return np.dtype((base, sub_shape))


def _simple_dtype(
    ctx: Context, code: str, endian: str, elsize: int, extra: object
) -> tuple[np.dtype[Any], object]:
    """A dtype named by its type code (``"f8"``, ``"U7"``, ``"M8"`` ...).

    `code` is the argument of ``numpy.dtype``; the state's ``endian`` sets the
    byte order and a positive ``elsize`` the size of a ``S``/``U``/``V``
    type. Returns the dtype and what is left of the state's metadata item
    `extra` (datetimes carry ``(metadata, (unit, num, 1, 1))`` there, see
    :func:`_datetime_dtype`).
    """
    if not _DTYPE_CODE.match(code):
        ctx.fail(f"unsupported dtype code {preview(code)}")
    dt = np.dtype(code)
    if dt.kind in "SUV" and elsize > 0:
        per = 4 if dt.kind == "U" else 1
        dt = np.dtype(f"{dt.kind}{elsize // per}")
    if dt.kind in "Mm":
        dt, extra = _datetime_dtype(ctx, dt.kind, extra)
    if endian in "<>" and dt.itemsize > 1:
        # through the type string, so native order reads "=" as in NumPy
        dt = np.dtype(endian + dt.str[1:])
    return dt, extra


def _datetime_dtype(
    ctx: Context, kind: str, extra: object
) -> tuple[np.dtype[Any], object]:
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
        ctx.fail("datetime dtype without unit metadata")
    unit = as_bytes(ctx, extra[1][0], "datetime unit").decode("latin-1")
    num = extra[1][1]
    if unit not in _DATETIME_UNITS or type(num) is not int or not 0 < num < 2**31:
        ctx.fail(f"bad datetime unit {preview(unit)}")
    return np.dtype(f"{kind}8[{'' if num == 1 else num}{unit}]"), extra[0]


def _metadata(ctx: Context, meta: object) -> dict[str, Any]:
    """dtype metadata: a dict of at most 1024 ``str`` keys to scalars,
    strings or flat lists/tuples of at most 1024 of them (what users attach
    in practice)."""
    if not isinstance(meta, dict) or len(meta) > _MAX_METADATA:
        ctx.fail("dtype metadata must be a small dict")
    for key, value in meta.items():
        values = value if type(value) in (list, tuple) else (value,)
        if type(key) is not str or len(values) > _MAX_METADATA:
            ctx.fail("dtype metadata must have str keys and small values")
        if not all(isinstance(v, _METADATA_LEAVES) for v in values):
            ctx.fail(
                f"dtype metadata {preview(key)} holds a "
                f"{type(value).__name__}; only scalars and strings are supported"
            )
    return meta
