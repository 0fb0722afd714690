"""Typed entry points: :func:`load_npy`, :func:`load_npz` and the result types.

:func:`safenpz.load` returns whatever the file holds (an array, an
:class:`~safenpz.NpzFile`, a RaggedArray, or any plain data for a bare
pickle), and a path cannot tell a type checker which, so it is typed ``Any``.
When the caller knows the kind of file, these helpers give precise types and
check at run time that the file is of that kind (``FormatError`` otherwise):

==============================  ===========================================
call                            static type
==============================  ===========================================
``load_npy(f)``                 ``numpy.ndarray``
``load_npy(f, ragged=True)``    ``numpy.ndarray | RaggedArray``
``load_npz(f)``                 ``NpzFile[numpy.ndarray]``
``load_npz(f, ragged=True)``    ``NpzFile[numpy.ndarray | RaggedArray]``
==============================  ===========================================

With ``ragged=True`` only 1-D object arrays of numeric rows become
RaggedArrays; numeric members (labels) stay arrays, hence the union: narrow it
with ``isinstance``. The Keras loaders have precise overloads too:
``imdb.load_data()`` is :data:`KerasData`, ``load_data(output="ragged")`` is
:data:`RaggedKerasData`.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias, TypedDict, Unpack, overload

import numpy as np
from numpy.typing import NDArray

from ._exceptions import FormatError
from ._npy import FileLike, load
from ._npzfile import NpzFile
from ._ragged import RaggedArray

__all__ = [
    "KerasData",
    "LoadOptions",
    "RaggedKerasData",
    "load_npy",
    "load_npz",
]

KerasData: TypeAlias = tuple[
    tuple[NDArray[Any], NDArray[Any]], tuple[NDArray[Any], NDArray[Any]]
]
"""``(x_train, y_train), (x_test, y_test)`` as arrays (Keras's types)."""

RaggedKerasData: TypeAlias = tuple[
    tuple[RaggedArray, NDArray[Any]], tuple[RaggedArray, NDArray[Any]]
]
"""``(x_train, y_train), (x_test, y_test)`` with ragged ``x``."""


class LoadOptions(TypedDict, total=False):
    """The keywords of :func:`safenpz.load` besides ``ragged``."""

    mmap_mode: Literal["r", "r+", "c"] | None
    encoding: Literal["latin1", "bytes", "ASCII"]
    max_header_size: int
    max_member_bytes: int
    max_total_bytes: int
    max_ratio: float
    max_depth: int
    max_items: int


def _name(file: FileLike) -> str:
    if isinstance(file, bytes | bytearray | memoryview):
        return "<bytes>"
    return str(getattr(file, "name", file))


def _kind(obj: object) -> str:
    if isinstance(obj, NpzFile):
        return "a .npz archive (use safenpz.load_npz)"
    return f"a pickle of {type(obj).__name__} (use safenpz.load)"


@overload
def load_npy(
    file: FileLike, *, ragged: Literal[False] = ..., **options: Unpack[LoadOptions]
) -> NDArray[Any]: ...
@overload
def load_npy(
    file: FileLike, *, ragged: bool, **options: Unpack[LoadOptions]
) -> NDArray[Any] | RaggedArray: ...
def load_npy(
    file: FileLike, *, ragged: bool = False, **options: Unpack[LoadOptions]
) -> NDArray[Any] | RaggedArray:
    """Load one array (a ``.npy`` file, or a pickle holding one array), typed.

    Parameters
    ----------
    file : path, bytes or binary file object
        As for :func:`safenpz.load`.
    ragged : bool
        Return a 1-D object array of numeric rows as a RaggedArray.
    **options
        The other keywords of :func:`safenpz.load` (``mmap_mode``,
        ``encoding``, limits).

    Returns
    -------
    numpy.ndarray, or with ``ragged=True`` numpy.ndarray or RaggedArray

    Raises
    ------
    FormatError
        The file is a ``.npz`` archive, or a pickle of something else than
        an array; and everything :func:`safenpz.load` raises.

    Examples
    --------
    >>> import io, numpy as np, safenpz
    >>> buf = io.BytesIO()
    >>> np.save(buf, np.array([[1, 2], [3]], dtype=object), allow_pickle=True)
    >>> safenpz.load_npy(buf.getvalue()).tolist()
    [[1, 2], [3]]
    >>> safenpz.load_npy(buf.getvalue(), ragged=True).lengths().tolist()
    [2, 1]
    """
    obj = load(file, ragged=ragged, **options)
    if isinstance(obj, np.ndarray | RaggedArray):
        return obj
    kind = _kind(obj)
    if isinstance(obj, NpzFile):
        obj.close()
    msg = f"{_name(file)} is {kind}, not a single array"
    raise FormatError(msg)


@overload
def load_npz(
    file: FileLike, *, ragged: Literal[False] = ..., **options: Unpack[LoadOptions]
) -> NpzFile[NDArray[Any]]: ...
@overload
def load_npz(
    file: FileLike, *, ragged: bool, **options: Unpack[LoadOptions]
) -> NpzFile[NDArray[Any] | RaggedArray]: ...
def load_npz(
    file: FileLike, *, ragged: bool = False, **options: Unpack[LoadOptions]
) -> NpzFile[NDArray[Any]] | NpzFile[NDArray[Any] | RaggedArray]:
    """Open a ``.npz`` archive, typed: members are arrays (or RaggedArrays).

    Parameters
    ----------
    file : path, bytes or binary file object
        As for :func:`safenpz.load`.
    ragged : bool
        Return 1-D object arrays of numeric rows as RaggedArrays.
    **options
        The other keywords of :func:`safenpz.load` (limits, ``encoding``).

    Returns
    -------
    NpzFile
        ``NpzFile[numpy.ndarray]``; with ``ragged=True``
        ``NpzFile[numpy.ndarray | RaggedArray]``. Use it as a context manager.

    Raises
    ------
    FormatError
        The file is not a ``.npz`` archive; and everything
        :func:`safenpz.load` raises.

    Examples
    --------
    >>> import io, numpy as np, safenpz
    >>> buf = io.BytesIO()
    >>> np.savez(buf, y=np.arange(3))
    >>> with safenpz.load_npz(buf.getvalue()) as f:
    ...     int(f["y"].sum())
    3
    """
    obj = load(file, ragged=ragged, **options)
    if isinstance(obj, NpzFile):
        return obj
    kind = "a .npy array (use safenpz.load_npy)"
    if not isinstance(obj, np.ndarray | RaggedArray):
        kind = _kind(obj)
    msg = f"{_name(file)} is {kind}, not a .npz archive"
    raise FormatError(msg)
