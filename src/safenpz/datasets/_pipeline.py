"""The vectorised Keras pipeline: ``load_data``'s steps on values + offsets.

:func:`run_pipeline` reproduces ``keras.datasets.{imdb,reuters}.load_data``
(Keras 3.15.1, or Keras 2.2.x with ``compat="keras2.2"``) on the fast layout
of :mod:`safenpz.datasets._store`: the shuffle, the ``index_from`` shift and
start character, the ``maxlen`` filter, the vocabulary rule and the split are
decided first (:func:`_plan`, on row indices and lengths only), then applied
to the flat values in one vectorised pass (:class:`_ValueMap`: a lookup
table, or arithmetic for large or negative ids); Python lists are built only
at the very end, for ``output="lists"``. ``output="ragged"`` and
``"padded"`` never build a Python object per id.

The reference is :mod:`safenpz.datasets._reference`, Keras's steps written
out literally. Arguments the vectorised code cannot mirror exactly (floats,
NumPy scalars or bools that would end up *inside* the rows, rows that are
not lists of ints, ...) are run through it instead, so the result is the same
in every case, only slower.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from typing import Any, Final, Literal, TypeAlias

import numpy as np
from numpy.typing import DTypeLike, NDArray

from safenpz._gc import no_gc
from safenpz._ragged import RaggedArray
from safenpz.datasets import _reference, _store
from safenpz.datasets._reference import (
    EMPTY_MAX,
    Params,
    maxlen_error,
    permutations,
)
from safenpz.datasets._spec import COMPATS, Compat, DatasetSpec, Rules
from safenpz.datasets._store import (
    STORED_SEED,
    Loaded,
    Part,
    fill_where,
    gather,
    source_order,
)

__all__ = [
    "OUTPUTS",
    "Output",
    "PadOptions",
    "Params",
    "check_options",
    "load_dataset",
    "run_pipeline",
]

Output: TypeAlias = Literal["lists", "ragged", "padded"]
OUTPUTS: Final = ("lists", "ragged", "padded")

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_INT32: Final = np.iinfo(np.int32)
#: Values are small enough to add index_from to without ever overflowing int64.
_SAFE_INT: Final = 2**62
#: Largest id for which the id -> result lookup table is used (32 MiB of int64).
_TABLE_MAX: Final = 1 << 22
#: maxlen types compared with the row lengths exactly as Python compares them.
_MAXLEN_TYPES: Final = (int, float, np.integer, np.floating)


# ---------------------------------------------------------------------------
# the Keras pipeline


@dataclasses.dataclass(frozen=True)
class PadOptions:
    """``pad_sequences`` options for ``output="padded"``."""

    maxlen: int | None = None
    dtype: DTypeLike = "int32"
    padding: Literal["pre", "post"] = "pre"
    truncating: Literal["pre", "post"] = "pre"
    value: Any = 0


Split: TypeAlias = tuple[Any, NDArray[Any]]


def check_options(output: object, compat: object, pad: PadOptions) -> None:
    """Validate safenpz's own options before any file is touched.

    Raises
    ------
    ValueError
        Unknown `output` or `compat`, or padding options without
        ``output="padded"``.
    """
    if output not in OUTPUTS:
        msg = f"output must be one of {', '.join(map(repr, OUTPUTS))}, not {output!r}"
        raise ValueError(msg)
    if compat not in COMPATS:
        msg = f"compat must be None, 'keras3' or 'keras2.2', not {compat!r}"
        raise ValueError(msg)
    if output != "padded" and pad != PadOptions():
        msg = (
            "pad_maxlen, padding, truncating, pad_value and pad_dtype only apply "
            f"to output='padded' (output is {output!r})"
        )
        raise ValueError(msg)


def _is_intlike(value: object) -> bool:
    return isinstance(value, int | np.integer) and -_SAFE_INT < int(value) < _SAFE_INT


def _is_plain_int(value: object) -> bool:
    """An int that Keras would put into a row as is (not a bool, not NumPy)."""
    return type(value) is int and -_SAFE_INT < value < _SAFE_INT


def _simple_args(p: Params) -> bool:
    """Whether the arguments let the vectorised pipeline mirror Keras exactly:
    every value that lands in a row is a plain int, the thresholds are ints."""
    return (
        (p.start_char is None or _is_plain_int(p.start_char))
        and (p.oov_char is None or _is_plain_int(p.oov_char))
        and isinstance(p.index_from, int)  # int or bool: w + index_from is an int
        and _is_intlike(p.index_from)
        and _is_intlike(p.skip_top)
        and (p.num_words is None or _is_intlike(p.num_words))
        and (p.maxlen is None or isinstance(p.maxlen, _MAXLEN_TYPES))
    )


def _value_range(parts: Sequence[Part]) -> tuple[int, int] | None:
    """Smallest and largest stored id, if the rows hold integers that the
    vectorised pipeline handles exactly; else None."""
    for part in parts:
        kind, size = part.rows.dtype.kind, part.rows.dtype.itemsize
        if not (kind == "i" or (kind == "u" and size < 8)):
            return None
    lo = min((int(p.low) for p in parts), default=0)
    hi = max((int(p.high) for p in parts), default=0)
    if max(abs(lo), abs(hi)) >= _SAFE_INT:
        return None
    return lo, hi


def _between(v: NDArray[Any], low: int, high: int) -> NDArray[np.bool_]:
    """``low <= v < high`` for Python ints of any size."""
    if low > _INT64_MAX or high <= _INT64_MIN or low >= high:
        return np.zeros(v.shape, dtype=np.bool_)
    mask: NDArray[np.bool_]
    if low > _INT64_MIN:
        mask = v >= low
        if high <= _INT64_MAX:
            mask &= v < high
    elif high <= _INT64_MAX:
        mask = v < high
    else:
        mask = np.ones(v.shape, dtype=np.bool_)
    return mask


def _narrowest(values: NDArray[np.int64], extra: Iterable[int]) -> np.dtype[Any]:
    """int32 if `values` and `extra` all fit, else int64."""
    low = min([int(values.min()) if values.size else 0, *extra])
    high = max([int(values.max()) if values.size else 0, *extra])
    fits = _INT32.min <= low and high <= _INT32.max
    return np.dtype(np.int32 if fits else np.int64)


class _ValueMap:
    """Keras's per-id rule, ``w + index_from`` then the vocabulary test, as
    one vectorised function of the stored ids: a lookup table when the ids
    are small non-negative numbers, arithmetic otherwise. Results are int32
    when every possible result fits (always, for the Keras datasets)."""

    def __init__(
        self,
        *,
        lo: int,
        hi: int,
        shift: int,
        skip_top: int,
        num_words: int,
        oov_char: int | None,
        head: int | None,
        wide: bool = False,
    ) -> None:
        self.shift = shift
        self.skip_top = skip_top
        self.num_words = num_words
        self.oov_char = oov_char
        self.table: NDArray[Any] | None = None
        self.keep_table: NDArray[np.bool_] | None = None
        extra = [c for c in (oov_char, head) if c is not None]
        if lo >= 0 and hi < _TABLE_MAX:
            ids = np.arange(hi + 1, dtype=np.int64)
            ids += shift
            inside = _between(ids, skip_top, num_words)
            if oov_char is not None:
                np.copyto(ids, oov_char, where=~inside)
            elif not inside.all():
                self.keep_table = inside
            self.table = ids if wide else ids.astype(_narrowest(ids, extra))
            self.dtype = self.table.dtype
        else:
            ends = np.array([lo + shift, hi + shift], dtype=np.int64)
            self.dtype = np.dtype(np.int64) if wide else _narrowest(ends, extra)

    def __call__(
        self, stored: NDArray[Any]
    ) -> tuple[NDArray[Any], NDArray[np.bool_] | None]:
        """Return the final values and, when ids are dropped, the keep mask.

        `stored` is consumed: the result may be written into it.
        """
        if self.table is not None:
            keep = None if self.keep_table is None else self.keep_table[stored]
            return _lookup(self.table, stored), keep
        values = stored.astype(np.int64)
        values += self.shift
        inside = _between(values, self.skip_top, self.num_words)
        keep = None
        if self.oov_char is not None:
            np.copyto(values, self.oov_char, where=~inside)
        elif not inside.all():
            keep = inside
        return values.astype(self.dtype, copy=False), keep


#: Elements per step of :func:`_lookup`: the indices and results of a step
#: stay in the CPU cache, which makes the lookup about twice as fast.
_LOOKUP_STEP: Final = 1 << 18


def _lookup(table: NDArray[Any], ids: NDArray[Any]) -> NDArray[Any]:
    """``table[ids]``, written over `ids` when the dtypes agree.

    Every id is known to be a valid index (the table spans the ids' range,
    checked on these very arrays), so ``mode="clip"`` never clips; it only
    spares NumPy the bounds buffer.
    """
    out = ids if ids.dtype == table.dtype and ids.flags.writeable else None
    if out is None:
        out = np.empty(len(ids), dtype=table.dtype)
    for start in range(0, len(ids), _LOOKUP_STEP):
        stop = start + _LOOKUP_STEP
        np.take(table, ids[start:stop], out=out[start:stop], mode="clip")
    return out


def _default_num_words(
    parts: Sequence[Part],
    sels: Sequence[NDArray[np.intp]],
    lengths: Sequence[NDArray[np.int64]],
    *,
    hi: int,
    shift: int,
    start_char: int | None,
) -> int:
    """``max(max(row) for row in rows)`` over the shifted rows, as Keras."""
    if sum(len(s) for s in sels) == 0:
        raise ValueError(EMPTY_MAX)
    best: int | None = None
    for part, sel, length in zip(parts, sels, lengths, strict=True):
        if not len(sel):
            continue
        chosen = length[sel] > 0
        if start_char is None and not chosen.all():
            raise ValueError(EMPTY_MAX)
        if not chosen.any():
            continue
        if len(sel) == len(length):  # every row: the whole array's maximum
            top = hi if len(parts) == 1 else int(part.rows.values.max())
        else:  # the slot is the smallest value, so row maxima are unaffected
            per_row = np.maximum.reduceat(part.rows.values, part.rows.starts)
            top = int(per_row[sel[chosen]].max())
        best = top + shift if best is None else max(best, top + shift)
    if start_char is not None:
        best = start_char if best is None else max(best, start_char)
    assert best is not None  # rows exist and none is empty
    return best


@dataclasses.dataclass
class _Plan:
    """Everything decided before any value is touched."""

    parts: list[Part]
    sels: list[NDArray[np.intp]]  # stored rows, in Keras's order, per part
    head: int | None  # what every row starts with, if anything
    vmap: _ValueMap
    split: int  # rows of the combined result that go to train
    y_train: NDArray[Any]
    y_test: NDArray[Any]


def _labels(labels: NDArray[Any], part: slice, *, from_list: bool) -> NDArray[Any]:
    chosen = labels[part]
    if from_list and not len(chosen):
        return np.array([])  # np.array() of Keras's emptied Python list
    return np.array(chosen)


def _orders(rules: Rules, parts: list[Part], seed: Any) -> list[NDArray[np.intp]]:
    """The stored rows of every part, in the order Keras's shuffle puts them."""
    sizes = [len(part.rows) for part in parts]
    if not rules.global_rng and type(seed) is int and seed == STORED_SEED:
        return [np.arange(n) for n in sizes]  # the stored order is Keras's order
    perms = permutations(sizes, seed, global_rng=rules.global_rng)
    fill_where(parts)
    return [part.where[perm] for part, perm in zip(parts, perms, strict=True)]  # type: ignore[index]


def _filtered(
    rules: Rules,
    sels: list[NDArray[np.intp]],
    labels: list[NDArray[Any]],
    lengths: list[NDArray[np.int64]],
    p: Params,
) -> tuple[list[NDArray[np.intp]], list[NDArray[Any]]]:
    """Keep the rows shorter than ``maxlen`` (counting the start character)."""
    head = int(p.start_char is not None)
    keeps = [
        (length[sel] + head) < p.maxlen
        for length, sel in zip(lengths, sels, strict=True)
    ]
    sels = [sel[k] for sel, k in zip(sels, keeps, strict=True)]
    labels = [lab[k] for lab, k in zip(labels, keeps, strict=True)]
    if rules.emptied([len(s) for s in sels]):
        raise maxlen_error(p.maxlen)
    return sels, labels


def _split_labels(
    rules: Rules, labels: list[NDArray[Any]], split: int, p: Params
) -> tuple[NDArray[Any], NDArray[Any]]:
    """``y_train`` and ``y_test``, with the types Keras gives them."""
    combined = np.concatenate(labels) if len(labels) > 1 else labels[0]
    if rules.filter_each_split:
        return combined[:split], combined[split:]
    from_list = bool(p.maxlen)
    return (
        _labels(combined, slice(None, split), from_list=from_list),
        _labels(combined, slice(split, None), from_list=from_list),
    )


def _head(p: Params, skip_top: int, num_words: int) -> int | None:
    """What every row starts with after the vocabulary rule, if anything."""
    if p.start_char is None:
        return None
    if skip_top <= p.start_char < num_words:
        return int(p.start_char)
    return None if p.oov_char is None else int(p.oov_char)


def _plan(
    rules: Rules,
    parts: list[Part],
    p: Params,
    value_range: tuple[int, int],
    *,
    wide: bool,
) -> _Plan:
    sizes = [len(part.rows) for part in parts]
    sels = _orders(rules, parts, p.seed)
    labels = [part.labels[sel] for part, sel in zip(parts, sels, strict=True)]
    lengths = [part.rows.lengths() - 1 for part in parts]
    shift = int(p.index_from)
    if p.maxlen:
        sels, labels = _filtered(rules, sels, labels, lengths, p)
    num_words = p.num_words
    if not num_words:
        num_words = _default_num_words(
            parts,
            sels,
            lengths,
            hi=value_range[1],
            shift=shift,
            start_char=p.start_char,
        )
    num_words = int(num_words)
    skip_top = int(p.skip_top)
    kept = [len(s) for s in sels]
    idx = rules.split_index(kept, sizes, p.test_split)
    split = slice(None, idx).indices(sum(kept))[1]
    y_train, y_test = _split_labels(rules, labels, split, p)
    head = _head(p, skip_top, num_words)
    vmap = _ValueMap(
        lo=value_range[0],
        hi=value_range[1],
        shift=shift,
        skip_top=skip_top,
        num_words=num_words,
        oov_char=p.oov_char,
        head=head,
        wide=wide,
    )
    return _Plan(parts, sels, head, vmap, split, y_train, y_test)


def _mapped(rows: RaggedArray, plan: _Plan) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """Apply the value rule to slotted rows, then fill or drop the slots."""
    values, keep = plan.vmap(rows.values)
    starts = rows.starts
    if plan.head is not None:
        values[starts] = plan.head
        if keep is not None:
            keep[starts] = True
    else:
        if keep is None:
            keep = np.ones(len(values), dtype=np.bool_)
        keep[starts] = False
    if keep is None:
        return values, rows.offsets
    kept = np.zeros(len(keep) + 1, dtype=np.int64)
    np.cumsum(keep, out=kept[1:])
    return values[keep], kept[rows.offsets]


def _is_identity(sel: NDArray[np.intp], n: int) -> bool:
    return len(sel) == n and bool((sel == np.arange(n)).all())


def _rows_as_lists(plan: _Plan) -> list[list[int]]:
    """All selected rows as Python lists of Python ints."""
    rows: list[list[int]] = []
    while plan.parts:
        part, sel = plan.parts.pop(0), plan.sels.pop(0)
        values, offsets = _mapped(part.rows, plan)
        del part  # the stored arrays are no longer needed
        bounds = offsets.tolist()
        rows.extend([values[bounds[r] : bounds[r + 1]].tolist() for r in sel.tolist()])
    return rows


def _ragged_parts(plan: _Plan) -> list[RaggedArray]:
    """All selected rows as one RaggedArray per part."""
    out = []
    while plan.parts:
        part, sel = plan.parts.pop(0), plan.sels.pop(0)
        rows = (
            part.rows if _is_identity(sel, len(part.rows)) else gather(part.rows, sel)
        )
        del part
        values, offsets = _mapped(rows, plan)
        del rows
        out.append(RaggedArray(values, offsets, validate=False))
    return out


def _split_ragged(
    parts: list[RaggedArray], split: int
) -> tuple[RaggedArray, RaggedArray]:
    if len(parts) == 2 and split == len(parts[0]):
        return parts[0], parts[1]
    combined = parts[0] if len(parts) == 1 else RaggedArray.concatenate(parts)
    parts.clear()
    return combined.split(split)


def _object_array(rows: list[Any]) -> NDArray[np.object_]:
    """``np.array(rows, dtype="object")``, fast for ragged rows of lists."""
    if rows and isinstance(rows[0], list):
        width = len(rows[0])
        if any(not isinstance(r, list) or len(r) != width for r in rows):
            return np.fromiter(rows, dtype=object, count=len(rows))
    return np.array(rows, dtype="object")


def _as_ragged(rows: list[Any]) -> RaggedArray:
    ragged = RaggedArray.from_lists(rows)
    if ragged.dtype.kind in "iu" and ragged.dtype.itemsize > 4:
        return ragged.astype(_narrowest(ragged.values.astype(np.int64), []))
    return ragged


def _finish(rows: list[Any] | RaggedArray, output: Output, pad: PadOptions) -> Any:
    """Rows (Python lists, or a RaggedArray for ``output != "lists"``) in the
    requested output form."""
    if isinstance(rows, list):
        if output == "lists":
            return _object_array(rows)
        rows = _as_ragged(rows)
    ragged = rows
    if output == "ragged":
        return ragged
    return ragged.pad(
        maxlen=pad.maxlen,
        dtype=pad.dtype,
        padding=pad.padding,
        truncating=pad.truncating,
        value=pad.value,
    )


def _vectorised(
    rules: Rules,
    parts: list[Part],
    p: Params,
    value_range: tuple[int, int],
    output: Output,
    pad: PadOptions,
) -> tuple[Split, Split]:
    # Python ints come faster out of int64 than out of int32 arrays.
    plan = _plan(rules, parts, p, value_range, wide=output == "lists")
    if output == "lists":
        with no_gc():
            rows = _rows_as_lists(plan)
            train: Any = _finish(rows[: plan.split], output, pad)
            test: Any = _finish(rows[plan.split :], output, pad)
            del rows
    else:
        head, tail = _split_ragged(_ragged_parts(plan), plan.split)
        train, test = _finish(head, output, pad), _finish(tail, output, pad)
    return (train, plan.y_train), (test, plan.y_test)


def run_pipeline(
    loaded: Loaded,
    spec: DatasetSpec,
    params: Params,
    *,
    compat: Compat = None,
    output: Output = "lists",
    pad: PadOptions = PadOptions(),
) -> tuple[Split, Split]:
    """Run Keras's ``load_data`` steps on a loaded dataset.

    Parameters
    ----------
    loaded : list of Part or dict
        As returned by :func:`load_members`; it is emptied, so that the
        stored arrays can be freed as soon as they are no longer needed.
    spec : DatasetSpec
    params : Params
    compat : {None, "keras3", "keras2.2"}
        Which Keras version's rules (:meth:`DatasetSpec.rules`) to follow.
    output : {"lists", "ragged", "padded"}
    pad : PadOptions

    Returns
    -------
    ((x_train, y_train), (x_test, y_test))
        As Keras returns them (``output="lists"``), or with RaggedArrays or
        padded 2-D arrays in place of the object arrays.
    """
    rules = spec.rules(compat)
    if isinstance(loaded, list):
        parts = loaded[:]
        loaded.clear()
        value_range = _value_range(parts)
        if value_range is not None and _simple_args(params):
            return _vectorised(rules, parts, params, value_range, output, pad)
        xs, ys = source_order(parts)
        del parts
    else:
        xs = [loaded[x] for x, _ in spec.parts]
        ys = [loaded[y] for _, y in spec.parts]
        loaded.clear()
    with no_gc():
        (train_rows, y_train), (test_rows, y_test) = _reference.keras_steps(
            rules, xs, ys, params
        )
    del xs
    return (
        (_finish(train_rows, output, pad), y_train),
        (_finish(test_rows, output, pad), y_test),
    )


def load_dataset(
    spec: DatasetSpec,
    path: str | os.PathLike[str],
    params: Params,
    *,
    output: Output,
    compat: Compat,
    pad: PadOptions,
    progress: bool | None,
) -> tuple[Split, Split]:
    """What every ``load_data`` does: check safenpz's options, load the
    file's members (verified, decoded safely, cached pickle-free), then run
    Keras's steps (:func:`run_pipeline`)."""
    check_options(output, compat, pad)
    loaded = _store.load_members(spec, path, progress=progress)
    return run_pipeline(loaded, spec, params, compat=compat, output=output, pad=pad)
