"""Converting legacy pickled ``.npy``/``.npz`` files to pickle-free formats.

:func:`convert` reads the source with the safe reader (so a hostile source is
refused before anything is written) and writes either

* a pickle-free ``.npz`` (:func:`safenpz.save` layout, readable by plain
  ``np.load(..., allow_pickle=False)``), or
* Parquet (needs the ``parquet`` extra): ragged columns become
  ``list<int32>`` (``list<int64>`` when a value does not fit, ``list<double>``
  for floats), numeric 1-D columns stay numeric. A Parquet table needs columns
  of equal length, so arrays are grouped by length: one group → one file at
  `dst`; several (Keras's ``x_train``/``y_train`` + ``x_test``/``y_test``) →
  `dst` is a directory holding one file per group, named after the common
  suffix of its members (``train.parquet``, ``test.parquet``).

Writes are atomic: each output is written to a temporary file beside it and
renamed into place only when complete.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ._npy import NpzFile, load
from ._ragged import RaggedArray
from ._save import atomic_write, save

__all__ = ["convert", "to_arrow_table"]

Format = Literal["npz", "parquet"]


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


def _arrow_column(pa: Any, value: Any, name: str) -> Any:
    if isinstance(value, RaggedArray):
        values = value.values
        if values.dtype.kind in "iu":
            fits = values.size == 0 or (
                values.min() >= np.iinfo(np.int32).min
                and values.max() <= np.iinfo(np.int32).max
            )
            values = values.astype(np.int32 if fits else np.int64, copy=False)
        return RaggedArray(values, value.offsets, validate=False).to_arrow()
    arr = np.asarray(value)
    if arr.dtype == object:
        msg = (
            f"column {name!r} is an object array that is not a list of numeric "
            "rows; Parquet conversion supports numeric and ragged columns"
        )
        raise TypeError(msg)
    if arr.ndim == 1:
        return pa.array(arr)
    if arr.ndim == 2:  # fixed-size rows → list column
        flat = pa.array(np.ascontiguousarray(arr).reshape(-1))
        return pa.FixedSizeListArray.from_arrays(flat, arr.shape[1])
    msg = f"column {name!r} has {arr.ndim} dimensions; Parquet needs 1 or 2"
    raise TypeError(msg)


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
        Output ``.npz`` file, or Parquet file/directory (see module docs).
    format : {"npz", "parquet"}, optional
        Output format; default from `dst`'s suffix (``.parquet``/``.pq`` →
        Parquet, otherwise npz).
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
        From reading `src`.
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
    dst_path = Path(dst)
    if format is None:
        format = "parquet" if dst_path.suffix in (".parquet", ".pq") else "npz"
    if format not in ("npz", "parquet"):
        msg = f"format must be 'npz' or 'parquet', not {format!r}"
        raise ValueError(msg)
    _import_pyarrow() if format == "parquet" else None
    # npz keeps object arrays as they are (save stores them pickle-free and
    # load gives back the same object arrays); Parquet needs ragged columns
    columns = _read_all(src, ragged=format == "parquet", **load_kwargs)
    if format == "npz":
        save(dst_path, compress=compress, **columns)
        return [dst_path]
    import pyarrow.parquet as pq

    groups: dict[int, list[str]] = {}
    for name, value in columns.items():
        groups.setdefault(len(value), []).append(name)
    if len(groups) == 1:
        paths = [dst_path]
    else:
        stems = [_group_name(names, i) for i, names in enumerate(groups.values())]
        if len(set(stems)) != len(stems):  # e.g. a_data and b_data of two lengths
            stems = [f"group{i}" for i in range(len(stems))]
        paths = [dst_path / f"{stem}.parquet" for stem in stems]
    # build every table first, so an unsupported column writes nothing at all
    tables = [
        to_arrow_table({n: columns[n] for n in names}) for names in groups.values()
    ]
    if len(groups) > 1:
        dst_path.mkdir(parents=True, exist_ok=True)
    for path, table in zip(paths, tables, strict=True):
        with atomic_write(path) as fp:
            pq.write_table(table, fp)
    return paths
