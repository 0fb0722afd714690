"""Converting legacy pickled ``.npy``/``.npz`` files to pickle-free formats.

:func:`convert` reads the source with the safe reader (so a hostile source is
refused before anything is written) and writes either

* a pickle-free ``.npz`` (:func:`safenpz.save` layout, readable by plain
  ``np.load(..., allow_pickle=False)``), or
* Parquet (needs the ``parquet`` extra). Ragged columns become
  ``list<int32>`` (``list<int64>``, or ``list<uint64>`` for unsigned values
  beyond int64, when a value does not fit; ``list<double>`` for floats);
  numeric 1-D columns stay numeric; 2-D arrays become fixed-size lists.

Parquet layout
--------------
A Parquet table needs columns of equal length, so :func:`parquet_layout`
(pure) decides which file gets which column:

1. **Splits.** When every array is named ``<column>_<split>`` and every split
   has the same columns, each of equal length (Keras's ``x_train``,
   ``y_train``, ``x_test``, ``y_test``), `dst` is a directory with one file per
   split, ``<split>.parquet``, whose columns are the bare names (``x``, ``y``).
   This is the layout Hugging Face ``datasets`` (``load_dataset("parquet",
   data_dir=dst)``), DuckDB, Polars, Dask and Spark read as one dataset of
   several splits.
2. **One table.** Otherwise, when all arrays have the same length, `dst` is
   one Parquet file whose columns are the array names; when `dst` ends in
   ``/`` or is a directory, the file is ``dst/<source stem>.parquet``.
3. **Groups.** Otherwise `dst` is a directory with one file per length,
   named after the common ``_suffix`` of its members, else ``a+b.parquet``
   (at most three names), else ``group<i>.parquet``.

File names come from the source's array names, which are untrusted: a name
that is not a plain ``[A-Za-z0-9._+-]`` word falls back to ``group<i>``.

Writes are atomic: each output is written to a temporary file beside it and
renamed into place only when complete.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ._exceptions import FormatError, SafenpzError, UnstorableError, Where
from ._npy import load
from ._npzfile import NpzFile
from ._preview import preview
from ._ragged import RaggedArray
from ._save import atomic_write, save_arrays

__all__ = ["convert", "output_format", "parquet_layout", "to_arrow_table"]

Format = Literal["npz", "parquet"]

_SUFFIX_FORMATS: dict[str, Format] = {
    ".npz": "npz",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_SAFE_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
_INT64 = np.iinfo(np.int64)
_UINT64 = np.iinfo(np.uint64)


def _import_pyarrow() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet
    except ImportError as err:
        msg = "writing Parquet needs pyarrow: pip install 'safenpz[parquet]'"
        raise ImportError(msg) from err
    return pa


def _read_all(
    src: str | os.PathLike[str], *, ragged: bool, **load_kwargs: Any
) -> dict[str, Any]:
    obj = load(src, ragged=ragged, **load_kwargs)
    if isinstance(obj, NpzFile):
        with obj:
            return {name: obj[name] for name in obj.files}
    return {Path(src).stem: obj}


def _narrowest_int(values: np.ndarray[Any, Any]) -> np.dtype[Any]:
    """int32 if every value fits, else int64, else (unsigned only) uint64."""
    if values.size == 0:
        return np.dtype(np.int32)
    lo, hi = int(values.min()), int(values.max())
    for name in ("int32", "int64"):
        dtype: np.dtype[Any] = np.dtype(name)
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return dtype
    unsigned: np.dtype[Any] = values.dtype
    return unsigned  # uint64 beyond int64: never wrap to negative numbers


def _wide_int(value: Any) -> tuple[int, int] | None:
    """(index, value) of an integer of an object column that no 64-bit integer
    type holds together with the column's other integers, or None."""
    arr = np.asarray(value)
    if arr.dtype != object:
        return None
    lo = hi = 0
    lo_at = hi_at = -1
    for index, item in enumerate(arr.ravel().tolist()):
        row = item if isinstance(item, list | tuple) else (item,)
        for x in row:
            if type(x) is not int:
                continue
            if x < lo:
                lo, lo_at = x, index
            if x > hi:
                hi, hi_at = x, index
    if hi > _UINT64.max or (hi > _INT64.max and lo < 0):
        return hi_at, hi
    if lo < _INT64.min:
        return lo_at, lo
    return None


def _wide_int_error(name: str, where: tuple[int, int], target: str) -> FormatError:
    index, value = where
    msg = (
        f"the column holds the integer {value} (element {index}), which "
        f"{target} cannot store exactly together with the column's other "
        "integers: only values that all fit int64, or all fit uint64, are "
        "written. Nothing was written; keep the legacy file, or convert the "
        "column (e.g. to float or str) yourself first."
    )
    return FormatError(msg, where=Where(member=name))


def _arrow_column(pa: Any, value: Any, name: str) -> Any:
    """The Arrow array of one column; pyarrow's own refusals (structured or
    complex dtypes, sizes beyond its index types) become
    :class:`~safenpz.UnstorableError` naming the column."""
    try:
        return _arrow_column_of(pa, value, name)
    except SafenpzError:
        raise
    except (pa.ArrowException, OverflowError, TypeError, ValueError) as err:
        raise _arrow_error(Where(member=name), "the column", value, err) from err


def _arrow_error(
    where: Where, what: str, value: Any, err: Exception
) -> UnstorableError:
    dtype = getattr(value, "dtype", None)
    of = "" if dtype is None else f" (dtype {dtype}, shape {np.shape(value)})"
    msg = (
        f"cannot write {what}{of} to Parquet: pyarrow refuses it "
        f"({type(err).__name__}: {preview(str(err))}). Nothing was written; "
        "convert to .npz instead, which keeps any NumPy dtype"
    )
    return UnstorableError(msg, where=where)


def _arrow_column_of(pa: Any, value: Any, name: str) -> Any:
    if isinstance(value, RaggedArray):
        values = value.values
        if values.dtype.kind in "iu":
            values = values.astype(_narrowest_int(values), copy=False)
        return RaggedArray(values, value.offsets, validate=False).to_arrow()
    arr = np.asarray(value)
    if arr.dtype == object:
        wide = _wide_int(arr)
        if wide is not None:
            raise _wide_int_error(name, wide, "Parquet")
        msg = (
            "the column is an object array that is not a list of numeric "
            "rows; Parquet conversion supports numeric and ragged columns "
            "(convert to .npz instead, which keeps any plain data)"
        )
        raise UnstorableError(msg, where=Where(member=name))
    if arr.dtype.byteorder not in "=|" and arr.dtype.fields is None:
        # pyarrow takes native byte order only; the values are the same
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.ndim == 1:
        return pa.array(arr)
    if arr.ndim == 2:  # fixed-size rows → list column
        flat = pa.array(np.ascontiguousarray(arr).reshape(-1))
        return pa.FixedSizeListArray.from_arrays(flat, arr.shape[1])
    msg = (
        f"the column has {arr.ndim} dimensions; Parquet needs 1 or 2 "
        "(convert to .npz instead)"
    )
    raise UnstorableError(msg, where=Where(member=name))


def to_arrow_table(columns: dict[str, Any]) -> Any:
    """Build a ``pyarrow.Table`` from equal-length numeric/ragged columns."""
    pa = _import_pyarrow()
    lengths = {name: len(v) for name, v in columns.items()}
    if len(set(lengths.values())) > 1:
        msg = f"columns of one Parquet table need equal lengths, got {lengths}"
        raise ValueError(msg)
    return pa.table({name: _arrow_column(pa, v, name) for name, v in columns.items()})


def _group_name(names: list[str], index: int) -> str:
    suffixes = {n.rsplit("_", 1)[-1] for n in names if "_" in n}
    if len(suffixes) == 1 and all("_" in n for n in names):
        return suffixes.pop()
    return "+".join(names) if len(names) <= 3 else f"group{index}"


def _safe_stems(stems: list[str]) -> list[str]:
    """The stems themselves, or ``group<i>`` for all when one is not a plain
    word or two would name the same file (also on case-insensitive disks)."""
    folded = [s.casefold() for s in stems]
    ok = len(set(folded)) == len(stems) and all(
        _SAFE_STEM.fullmatch(s) and s not in (".", "..") for s in stems
    )
    return stems if ok else [f"group{i}" for i in range(len(stems))]


def _splits(lengths: dict[str, int]) -> dict[str, dict[str, str]] | None:
    """``{split: {column: member}}`` when the members are ``<column>_<split>``
    with the same columns in every split, of one length per split."""
    splits: dict[str, dict[str, str]] = {}
    for member in lengths:
        column, sep, split = member.rpartition("_")
        if not (column and sep and split):
            return None
        splits.setdefault(split, {})[column] = member
    if len(splits) < 2 or len({frozenset(c) for c in splits.values()}) != 1:
        return None
    if any(len({lengths[m] for m in c.values()}) != 1 for c in splits.values()):
        return None
    return splits


def parquet_layout(lengths: dict[str, int]) -> dict[str | None, dict[str, str]]:
    """Decide which Parquet file holds which array; pure, no I/O.

    Parameters
    ----------
    lengths : dict of str to int
        Array name -> number of rows, in archive order.

    Returns
    -------
    dict
        File stem -> {column name in that file -> array name}. The stem is
        None for the one-table layout (`dst` itself is the file); otherwise
        each stem is written to ``dst/<stem>.parquet``. See the module
        docstring for the rules.

    Examples
    --------
    >>> parquet_layout({"x_train": 3, "y_train": 3, "x_test": 2, "y_test": 2})
    {'train': {'x': 'x_train', 'y': 'y_train'}, 'test': {'x': 'x_test', 'y': 'y_test'}}
    >>> parquet_layout({"x": 3, "y": 3})
    {None: {'x': 'x', 'y': 'y'}}
    >>> parquet_layout({"a": 3, "b": 2})
    {'a': {'a': 'a'}, 'b': {'b': 'b'}}
    """
    splits = _splits(lengths)
    if splits is not None:
        stems = _safe_stems(list(splits))
        return dict(zip(stems, splits.values(), strict=True))
    groups: dict[int, list[str]] = {}
    for name, length in lengths.items():
        groups.setdefault(length, []).append(name)
    if len(groups) <= 1:
        return {None: {n: n for n in lengths}}
    stems = _safe_stems(
        [_group_name(names, i) for i, names in enumerate(groups.values())]
    )
    return {
        stem: {n: n for n in names}
        for stem, names in zip(stems, groups.values(), strict=True)
    }


def output_format(dst: str | os.PathLike[str], format: str | None = None) -> Format:
    """Return the output format for `dst`: `format`, or the one its suffix names.

    Parameters
    ----------
    dst : path
        The output path.
    format : {"npz", "parquet"}, optional
        An explicit format, which wins over the suffix.

    Returns
    -------
    {"npz", "parquet"}

    Raises
    ------
    ValueError
        `format` is not one of the two, or it is None and `dst` does not end
        in ``.npz``, ``.parquet``, ``.pq`` or ``/`` and is not a directory
        (nothing else is guessed; a directory means Parquet).

    Examples
    --------
    >>> output_format("out.parquet"), output_format("out.bin", "npz")
    ('parquet', 'npz')
    """
    if format is not None:
        if format not in ("npz", "parquet"):
            msg = f"format must be 'npz' or 'parquet', not {format!r}"
            raise ValueError(msg)
        return "npz" if format == "npz" else "parquet"
    text = os.fspath(dst)
    found = _SUFFIX_FORMATS.get(Path(text).suffix.lower())
    if found is None and (text.endswith(("/", os.sep)) or os.path.isdir(text)):
        found = "parquet"  # only Parquet output is a directory
    if found is None:
        msg = (
            f"cannot tell the output format from {os.fspath(dst)!r}: name it "
            "*.npz (pickle-free .npz) or *.parquet / *.pq (Parquet), or choose "
            "the format explicitly (format='npz' or 'parquet'; --format on the "
            "command line)"
        )
        raise ValueError(msg)
    return found


def convert(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    format: Format | None = None,
    compress: bool = True,
    **load_kwargs: Any,
) -> list[Path]:
    """Convert a legacy (pickled) ``.npy``/``.npz`` into a pickle-free file.

    Parameters
    ----------
    src : path
        The legacy file. It is read with :func:`safenpz.load`; a file that
        needs code execution is refused and nothing is written.
    dst : path
        Output ``.npz`` file, or Parquet file or directory (see the module
        docs: Keras-style ``x_train``/``y_train``/``x_test``/``y_test``
        become ``dst/train.parquet`` and ``dst/test.parquet`` with columns
        ``x`` and ``y``).
    format : {"npz", "parquet"}, optional
        Output format; by default from `dst`'s suffix (``.npz``; ``.parquet``
        or ``.pq``; a trailing ``/`` or an existing directory means Parquet).
        Any other name needs an explicit format.
    compress : bool
        Deflate the ``.npz`` members (Parquet uses its default codec).
    **load_kwargs
        Limits passed to :func:`safenpz.load`.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    UnsafeFileError, FormatError, LimitError
        From reading `src`. FormatError also when a column holds integers
        that no 64-bit integer type can store exactly (nothing is written).
    ValueError
        Unknown `format`, or no format and an unknown suffix.
    UnstorableError
        A column that the output format cannot store without changing it
        (dicts in Parquet, a dtype pyarrow refuses, a name a ``.npz`` cannot
        hold); also a ``TypeError``. Nothing is written.
    LimitError
        Also for nested data too big once shared references are expanded.
    ImportError
        Parquet requested without pyarrow.

    Examples
    --------
    >>> import numpy as np, safenpz, tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> src, dst = os.path.join(d, "old.npy"), os.path.join(d, "new.npz")
    >>> np.save(src, np.array([[1, 2], [3]], dtype=object), allow_pickle=True)
    >>> [p.name for p in safenpz.convert(src, dst)]
    ['new.npz']
    >>> np.load(dst, allow_pickle=False).files
    ['old.values', 'old.offsets', '__safenpz__']
    """
    fmt = output_format(dst, format)
    dst_path = Path(dst)
    if fmt == "parquet":
        _import_pyarrow()
    # npz keeps object arrays as they are (save stores them pickle-free and
    # load gives back the same object arrays); Parquet needs ragged columns
    columns = _read_all(src, ragged=fmt == "parquet", **load_kwargs)
    if fmt == "npz":
        _write_npz(dst_path, columns, compress=compress)
        return [dst_path]
    text = os.fspath(dst)
    into_dir = text.endswith(("/", os.sep)) or dst_path.is_dir()
    return _write_parquet(dst_path, columns, into_dir=into_dir, src_stem=Path(src).stem)


def _write_npz(dst: Path, columns: dict[str, Any], *, compress: bool) -> None:
    try:
        save_arrays(dst, columns, compress=compress)
    except UnstorableError as err:
        for name, value in columns.items():
            wide = _wide_int(value)
            if wide is not None:
                raise _wide_int_error(name, wide, "a pickle-free .npz") from err
        raise


def _write_parquet(
    dst: Path, columns: dict[str, Any], *, into_dir: bool, src_stem: str
) -> list[Path]:
    import pyarrow.parquet as pq

    for name, value in columns.items():
        if isinstance(value, RaggedArray):
            continue
        if not isinstance(value, np.ndarray) or value.ndim == 0:
            what = (
                "a 0-d array" if isinstance(value, np.ndarray) else type(value).__name__
            )
            msg = (
                f"it is {what} (a single value, not a column); Parquet stores "
                "columns: convert to .npz instead, which keeps nested data"
            )
            raise UnstorableError(msg, where=Where(member=name))
    layout = parquet_layout({name: len(value) for name, value in columns.items()})
    if into_dir and None in layout:  # one table, but a directory was asked for
        (name,) = _safe_stems([src_stem]) if src_stem else ["data"]
        layout = {name if name != "group0" else "data": layout[None]}
    # build every table first, so an unsupported column writes nothing at all
    tables = {
        stem: to_arrow_table({col: columns[member] for col, member in cols.items()})
        for stem, cols in layout.items()
    }
    paths: dict[str | None, Path]
    if None in tables:
        paths = {None: dst}
    else:
        if dst.exists() and not dst.is_dir():
            msg = (
                f"{os.fspath(dst)!r} is a file, but this source has several "
                f"splits or groups ({', '.join(map(str, tables))}), written as "
                "one Parquet file each into a directory: choose a new path"
            )
            raise FileExistsError(msg)
        dst.mkdir(parents=True, exist_ok=True)
        paths = {stem: dst / f"{stem}.parquet" for stem in tables}
    pa = _import_pyarrow()
    for stem, table in tables.items():
        with atomic_write(paths[stem]) as fp:
            try:
                pq.write_table(table, fp)
            except pa.ArrowException as err:  # (a disk error is an OSError)
                where = Where(source=str(paths[stem]))
                raise _arrow_error(where, "the table", None, err) from err
    return list(paths.values())
