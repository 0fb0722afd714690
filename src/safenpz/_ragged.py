"""Ragged arrays: rows of different lengths as two flat NumPy arrays.

Layout
------
A :class:`RaggedArray` with ``n`` rows is exactly two arrays:

``values``
    1-D, any dtype except ``object`` and structured (``void``) dtypes: the
    rows laid end to end. It is kept as given (no copy), so it may be a
    memory map or a read-only buffer.
``offsets``
    ``int64``, length ``n + 1``, with ``offsets[0] == 0``, never decreasing,
    and ``offsets[-1] == len(values)``. Row ``i`` is
    ``values[offsets[i]:offsets[i + 1]]``.

This is Arrow's ``large_list`` layout without a validity bitmap (there are no
null rows) and awkward's ``ListOffsetArray`` with ``offsets[0] == 0``. The
constructor checks every rule and raises :class:`~safenpz.FormatError` naming
the first index that breaks one, because offsets usually come from a file
and a bad one would otherwise surface later as a wrong row or an
``IndexError`` deep inside a gather.

The exposed ``offsets`` array is read-only; ``values`` is left as it is.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal, SupportsIndex, TypeVar, overload

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from safenpz import _infer, _interop, _pad, _select, _transform
from safenpz._exceptions import FormatError
from safenpz._gc import no_gc
from safenpz._infer import check_plain_dtype

if TYPE_CHECKING:
    from typing import Self

__all__ = ["RaggedArray"]

_INT64_MAX = int(np.iinfo(np.int64).max)
_PREVIEW_ROWS = 3
_PREVIEW_ITEMS = 6

_Method = TypeVar("_Method", bound=Callable[..., Any])


def _doc_from(impl: Callable[..., Any]) -> Callable[[_Method], _Method]:
    """Give a delegating method the docstring kept with its implementation.

    The behaviours (padding, inference, interop, value transforms) document
    themselves next to their code, in the words of the public method.
    """

    def set_doc(method: _Method) -> _Method:
        method.__doc__ = impl.__doc__
        return method

    return set_doc


class RaggedArray:
    """Rows of different lengths stored as flat ``values`` plus ``offsets``.

    Parameters
    ----------
    values : array_like
        1-D array holding every row end to end. Any dtype except ``object``
        and structured dtypes. Not copied.
    offsets : array_like of int
        ``n + 1`` integers: ``offsets[0] == 0``, never decreasing,
        ``offsets[-1] == len(values)``. Converted to ``int64`` (no copy when
        it already is); the RaggedArray exposes it read-only, so do not
        modify the array you passed in afterwards.
    validate : bool, default True
        Check that the offsets never decrease (one pass over ``offsets``).
        Pass ``False`` only for offsets you built yourself; the cheap checks
        (dimensions, dtypes, first and last offset) always run.

    Raises
    ------
    FormatError
        If ``values`` or ``offsets`` break a rule of the layout; the message
        names the first failing index and its value.

    See Also
    --------
    RaggedArray.from_lists : Build from a list of sequences.

    Examples
    --------
    >>> import numpy as np
    >>> from safenpz import RaggedArray
    >>> r = RaggedArray(np.arange(1, 7, dtype=np.int64), np.array([0, 1, 3, 6]))
    >>> r
    <RaggedArray [[1], [2, 3], [4, 5, 6]] rows=3 values=6 dtype=int64>
    >>> r[1].tolist()
    [2, 3]
    >>> r.lengths().tolist()
    [1, 2, 3]
    >>> r.to_lists()
    [[1], [2, 3], [4, 5, 6]]

    The invariants, which every RaggedArray satisfies (the constructor checks
    them, and every operation builds offsets that keep them):

    >>> off = r.offsets
    >>> off.dtype, off.ndim, len(off) == len(r) + 1, off.flags.writeable
    (dtype('int64'), 1, True, False)
    >>> int(off[0]), int(off[-1]) == len(r.values), bool((r.stops >= r.starts).all())
    (0, True, True)
    >>> all(r[i].tolist() == r.values[off[i] : off[i + 1]].tolist() for i in range(3))
    True

    A broken rule raises FormatError naming the first failing index:

    >>> RaggedArray(np.arange(3), [0, 2, 1, 3])
    Traceback (most recent call last):
    safenpz.FormatError: offsets must not decrease: offsets[1]=2 > offsets[2]=1
    >>> RaggedArray(np.arange(3), [1, 3])
    Traceback (most recent call last):
    safenpz.FormatError: offsets must start at 0: offsets[0]=1
    >>> RaggedArray(np.arange(3), [0, 2])
    Traceback (most recent call last):
    safenpz.FormatError: offsets must end at len(values)=3: offsets[1]=2
    >>> RaggedArray(np.zeros((2, 2)), [0, 2])
    Traceback (most recent call last):
    safenpz.FormatError: RaggedArray values must be 1-D, got shape (2, 2)
    """

    __slots__ = ("_offsets", "_values")

    _values: NDArray[Any]
    _offsets: NDArray[np.int64]

    def __init__(
        self, values: ArrayLike, offsets: ArrayLike, *, validate: bool = True
    ) -> None:
        vals = _check_values(np.asarray(values))
        offs = _check_offsets(np.asarray(offsets), len(vals), validate=validate)
        if offs.flags.writeable:
            offs = offs.view()
            offs.flags.writeable = False
        self._values = vals
        self._offsets = offs

    # ------------------------------------------------------------------ basics

    @property
    def values(self) -> NDArray[Any]:
        """The flat 1-D array of all rows laid end to end."""
        return self._values

    @property
    def offsets(self) -> NDArray[np.int64]:
        """Read-only ``int64`` array of length ``len(self) + 1``."""
        return self._offsets

    @property
    def starts(self) -> NDArray[np.int64]:
        """Where each row starts in `values` (``offsets[:-1]``, a view)."""
        return self._offsets[:-1]

    @property
    def stops(self) -> NDArray[np.int64]:
        """Where each row stops in `values` (``offsets[1:]``, a view)."""
        return self._offsets[1:]

    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype of `values`."""
        return self._values.dtype

    @property
    def nbytes(self) -> int:
        """Bytes held by `values` and `offsets` together."""
        return int(self._values.nbytes + self._offsets.nbytes)

    def lengths(self) -> NDArray[np.int64]:
        """Return the length of every row as a new ``int64`` array.

        Examples
        --------
        >>> from safenpz import RaggedArray
        >>> RaggedArray.from_lists([[1, 2], [], [3]]).lengths().tolist()
        [2, 0, 1]
        """
        return np.diff(self._offsets)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __iter__(self) -> Iterator[NDArray[Any]]:
        values = self._values
        for start, stop in itertools.pairwise(self._offsets.tolist()):
            yield values[start:stop]

    def __repr__(self) -> str:
        n = len(self)
        shown = [
            _preview_row(self._values[start:stop])
            for start, stop in itertools.pairwise(
                self._offsets[: _PREVIEW_ROWS + 1].tolist()
            )
        ]
        if n > _PREVIEW_ROWS:
            shown.append("...")
        return (
            f"<RaggedArray [{', '.join(shown)}] rows={n} "
            f"values={len(self._values)} dtype={self.dtype}>"
        )

    def equals(self, other: object) -> bool:
        """Return True if `other` is a RaggedArray with the same rows and dtype.

        NaNs in the same places count as equal. ``==`` keeps Python's
        identity meaning; this is the value comparison.

        Examples
        --------
        >>> from safenpz import RaggedArray
        >>> a = RaggedArray.from_lists([[1, 2], [3]])
        >>> a.equals(RaggedArray.from_lists([[1, 2], [3]]))
        True
        >>> a.equals(RaggedArray.from_lists([[1], [2, 3]]))
        False
        """
        if not isinstance(other, RaggedArray):
            return False
        if self.dtype != other.dtype:
            return False
        if not np.array_equal(self._offsets, other._offsets):
            return False
        equal_nan = self.dtype.kind in "fc"
        return bool(np.array_equal(self._values, other._values, equal_nan=equal_nan))

    # -------------------------------------------------------------- selection

    @overload
    def __getitem__(self, index: SupportsIndex) -> NDArray[Any]: ...

    @overload
    def __getitem__(self, index: slice | ArrayLike) -> RaggedArray: ...

    def __getitem__(self, index: Any) -> NDArray[Any] | RaggedArray:
        """Return a row (for an integer) or a RaggedArray of rows.

        An integer gives a 1-D view of `values`; a slice gives a RaggedArray
        (a view when the step is 1); an integer array gives the rows in that
        order (see `take`); a boolean mask keeps the rows where it is True.
        """
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step == 1:
                new = _select.contiguous(
                    self._values, self._offsets, start, max(start, stop)
                )
            else:
                rows = np.arange(start, stop, step, dtype=np.int64)
                new = _select.gather(self._values, self._offsets, rows)
            return RaggedArray(*new, validate=False)
        if (
            isinstance(index, np.ndarray)
            and index.ndim == 0
            and index.dtype.kind in "iu"
        ):
            index = index.item()
        if isinstance(index, (bool, np.bool_)):
            msg = "a RaggedArray row index must be an integer, not a bool"
            raise TypeError(msg)
        if not isinstance(index, np.ndarray) and hasattr(index, "__index__"):
            i = _select.row_number(operator.index(index), len(self))
            return self._values[int(self._offsets[i]) : int(self._offsets[i + 1])]
        return self.take(index)

    @_doc_from(_select.take)
    def take(self, indices: ArrayLike) -> RaggedArray:
        new = _select.take(self._values, self._offsets, indices)
        return RaggedArray(*new, validate=False)

    @_doc_from(_select.filter_rows)
    def filter(self, mask: ArrayLike) -> RaggedArray:
        new = _select.filter_rows(self._values, self._offsets, mask)
        return RaggedArray(*new, validate=False)

    def split(self, index: SupportsIndex) -> tuple[RaggedArray, RaggedArray]:
        """Return ``(self[:index], self[index:])``, both views of `self`.

        Examples
        --------
        >>> from safenpz import RaggedArray
        >>> head, tail = RaggedArray.from_lists([[1], [2, 3], [4]]).split(2)
        >>> head.to_lists(), tail.to_lists()
        ([[1], [2, 3]], [[4]])
        """
        i = operator.index(index)
        return self[:i], self[i:]

    # ------------------------------------------------------------ new values

    @_doc_from(_transform.map_values)
    def map_values(
        self, func_or_table: Callable[[NDArray[Any]], ArrayLike] | ArrayLike
    ) -> RaggedArray:
        new = _transform.map_values(self._values, func_or_table)
        return RaggedArray(new, self._offsets, validate=False)

    @_doc_from(_transform.with_values)
    def with_values(self, values: ArrayLike) -> RaggedArray:
        new = _transform.with_values(self._values, values)
        return RaggedArray(new, self._offsets, validate=False)

    def astype(self, dtype: DTypeLike) -> RaggedArray:
        """Return a copy with `values` cast to `dtype` (NumPy casting rules).

        Examples
        --------
        >>> from safenpz import RaggedArray
        >>> RaggedArray.from_lists([[1, 2], [3]]).astype("int32").dtype
        dtype('int32')
        """
        check_plain_dtype(np.dtype(dtype), "astype")
        return RaggedArray(self._values.astype(dtype), self._offsets, validate=False)

    @_doc_from(_transform.prepend)
    def prepend(self, value: Any) -> RaggedArray:
        new = _transform.prepend(self._values, self._offsets, value)
        return RaggedArray(*new, validate=False)

    @classmethod
    def concatenate(cls, arrays: Iterable[RaggedArray]) -> RaggedArray:
        """Join RaggedArrays row-wise (values dtype as `np.concatenate` gives).

        Raises
        ------
        ValueError
            If `arrays` is empty.
        TypeError
            If an item is not a RaggedArray.

        Examples
        --------
        >>> from safenpz import RaggedArray
        >>> a = RaggedArray.from_lists([[1], [2, 3]])
        >>> b = RaggedArray.from_lists([[4]])
        >>> RaggedArray.concatenate([a, b]).to_lists()
        [[1], [2, 3], [4]]
        """
        parts = list(arrays)
        if not parts:
            msg = "need at least one RaggedArray to concatenate"
            raise ValueError(msg)
        for i, part in enumerate(parts):
            if not isinstance(part, RaggedArray):
                msg = (
                    f"concatenate() item {i} is a {type(part).__name__}, "
                    "not a RaggedArray"
                )
                raise TypeError(msg)
        values = np.concatenate([p._values for p in parts])
        shifts = np.cumsum([0] + [len(p._values) for p in parts[:-1]])
        offsets = np.concatenate(
            [parts[0]._offsets[:1]]
            + [
                p._offsets[1:] + shift
                for p, shift in zip(parts, shifts.tolist(), strict=True)
            ]
        )
        return cls(values, offsets, validate=False)

    # ---------------------------------------------------------- from / to lists

    @classmethod
    @_doc_from(_infer.from_rows)
    def from_lists(
        cls, rows: Iterable[Iterable[Any]] | ArrayLike, dtype: DTypeLike | None = None
    ) -> Self:
        return cls(*_infer.from_rows(rows, dtype), validate=False)

    def to_lists(self) -> list[list[Any]]:
        """Return the rows as Python lists of Python scalars.

        Examples
        --------
        >>> from safenpz import RaggedArray
        >>> rows = RaggedArray.from_lists([[1, 2], [], [3]]).to_lists()
        >>> rows, type(rows[0][0])
        ([[1, 2], [], [3]], <class 'int'>)
        """
        with no_gc():
            flat = self._values.tolist()
            return [
                flat[start:stop]
                for start, stop in itertools.pairwise(self._offsets.tolist())
            ]

    def to_object_array(self, *, keep_1d: bool = False) -> NDArray[np.object_]:
        """Return what ``np.array(self.to_lists(), dtype=object)`` returns.

        That is NumPy's (and Keras's) rule: a 1-D object array of Python
        lists, except that rows of equal length give a 2-D object array of
        Python scalars, shape ``(n, length)`` (``(n, 0)`` when every row is
        empty); no rows give shape ``(0,)``.

        Parameters
        ----------
        keep_1d : bool, default False
            Always return a 1-D object array of lists, whatever the lengths.

        Examples
        --------
        >>> from safenpz import RaggedArray
        >>> RaggedArray.from_lists([[1, 2], [3]]).to_object_array()
        array([list([1, 2]), list([3])], dtype=object)
        >>> RaggedArray.from_lists([[1, 2], [3, 4]]).to_object_array().shape
        (2, 2)
        >>> RaggedArray.from_lists([[1, 2], [3, 4]]).to_object_array(keep_1d=True)
        array([list([1, 2]), list([3, 4])], dtype=object)
        """
        n = len(self)
        if n == 0:
            return np.empty(0, dtype=object)
        if not keep_1d:
            lengths = self.lengths()
            width = int(lengths[0])
            if bool((lengths == width).all()):
                with no_gc():
                    flat = np.array(self._values.tolist(), dtype=object)
                return flat.reshape(n, width)
        rows = self.to_lists()
        with no_gc():
            return np.fromiter(rows, dtype=object, count=n)

    # ------------------------------------------------------------------ padding

    @_doc_from(_pad.pad)
    def pad(
        self,
        maxlen: int | None = None,
        dtype: DTypeLike | None = "int32",
        padding: Literal["pre", "post"] = "pre",
        truncating: Literal["pre", "post"] = "pre",
        value: Any = 0.0,
    ) -> NDArray[Any]:
        return _pad.pad(
            self._values, self._offsets, maxlen, dtype, padding, truncating, value
        )

    # -------------------------------------------------------------------- Arrow

    @_doc_from(_interop.to_torch)
    def to_torch(
        self, *, layout: Literal["jagged", "padded"] = "jagged", **pad_options: Any
    ) -> Any:
        return _interop.to_torch(self._values, self._offsets, layout, **pad_options)

    @_doc_from(_interop.to_arrow)
    def to_arrow(self, *, large: bool | None = None) -> Any:
        return _interop.to_arrow(self._values, self._offsets, large=large)

    @classmethod
    @_doc_from(_interop.from_arrow)
    def from_arrow(cls, array: Any) -> Self:
        return cls(*_interop.from_arrow(array))


# ---------------------------------------------------------------------- helpers


def _check_values(values: NDArray[Any]) -> NDArray[Any]:
    if values.ndim != 1:
        msg = f"RaggedArray values must be 1-D, got shape {values.shape}"
        raise FormatError(msg)
    if values.dtype.kind in "OV":
        msg = (
            f"RaggedArray values must be plain data, not dtype {values.dtype}; "
            "build from Python rows with RaggedArray.from_lists()"
        )
        raise FormatError(msg)
    return values


def _check_offsets(
    offsets: NDArray[Any], n_values: int, *, validate: bool
) -> NDArray[np.int64]:
    if offsets.ndim != 1:
        msg = f"offsets must be 1-D, got shape {offsets.shape}"
        raise FormatError(msg)
    if offsets.size == 0:
        msg = "offsets must have at least one element (offsets[0] == 0)"
        raise FormatError(msg)
    if offsets.dtype.kind not in "iu":
        msg = f"offsets must be integers, got dtype {offsets.dtype}"
        raise FormatError(msg)
    if offsets.dtype.kind == "u" and offsets.dtype.itemsize == 8:
        i = int(np.argmax(offsets))
        if int(offsets[i]) > _INT64_MAX:
            msg = f"offsets must fit in int64: offsets[{i}]={offsets[i]}"
            raise FormatError(msg)
    offs = offsets.astype(np.int64, copy=False)
    if offs[0] != 0:
        msg = f"offsets must start at 0: offsets[0]={offs[0]}"
        raise FormatError(msg)
    last = len(offs) - 1
    if offs[last] != n_values:
        msg = (
            f"offsets must end at len(values)={n_values}: offsets[{last}]={offs[last]}"
        )
        raise FormatError(msg)
    if validate and last > 0:
        decreasing = offs[1:] < offs[:-1]
        if decreasing.any():
            i = int(np.argmax(decreasing))
            msg = (
                f"offsets must not decrease: offsets[{i}]={offs[i]} > "
                f"offsets[{i + 1}]={offs[i + 1]}"
            )
            raise FormatError(msg)
    return offs


def _preview_row(row: NDArray[Any]) -> str:
    items = [repr(x) for x in row[:_PREVIEW_ITEMS].tolist()]
    if len(row) > _PREVIEW_ITEMS:
        items.append("...")
    return "[" + ", ".join(items) + "]"
