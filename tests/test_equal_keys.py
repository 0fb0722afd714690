"""Equal dict keys and set items of different types merge as pickle merges them.

A pickled dict can hold keys that are equal but not identical: a NumPy
scalar and the plain value it equals (``np.str_("a")`` and ``"a"``,
``np.int64(1)``, ``1`` and ``True``), written in turn. The unpickler keeps the
first key and the last value; a set keeps the first item. ``safenpz.load``
must give exactly what ``pickle.loads`` (and so ``np.load``) gives: the same
key, of the same type, with the same value, in the same order.
"""

from __future__ import annotations

import io
import pickle
from typing import Any, ClassVar

import numpy as np
import pytest

import safenpz
from identical import assert_identical


class _Pairs(list[tuple[Any, Any]]):
    """Written as a dict of these pairs, equal keys included."""


class _Items(list[Any]):
    """Written as a set of these items (protocol 4: ``ADDITEMS``)."""


_PurePickler: Any = pickle._Pickler  # the pure-Python pickler (its dispatch)


class _Pickler(_PurePickler):
    dispatch: ClassVar[dict[type, Any]] = dict(_PurePickler.dispatch)

    def save_pairs(self: Any, obj: _Pairs) -> None:
        self.write(pickle.EMPTY_DICT)
        self.memoize(obj)
        self._batch_setitems(iter(obj))

    def save_items(self: Any, obj: _Items) -> None:
        self.write(pickle.EMPTY_SET)
        self.memoize(obj)
        self.write(pickle.MARK)
        for item in obj:
            self.save(item)
        self.write(pickle.ADDITEMS)

    dispatch[_Pairs] = save_pairs
    dispatch[_Items] = save_items


def _dumps(obj: Any, protocol: int) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, protocol=protocol).dump(obj)
    return buf.getvalue()


#: Runs of equal keys: a NumPy scalar first, a plain value first, two scalars
#: of one kind, scalars of several kinds, and equal tuples holding them.
EQUAL_KEYS: dict[str, list[Any]] = {
    "str": [np.str_("a"), "a", np.str_("a"), "a"],
    "str-plain-first": ["a", np.str_("a"), "a", np.str_("a")],
    "bytes": [np.bytes_(b"k"), b"k", np.bytes_(b"k"), b"k"],
    "numbers": [np.int64(1), np.int32(1), 1, np.float64(1.0), True],
    "numbers-plain-first": [1, np.int64(1), True, np.float32(1.0), 1.0],
    "datetime": [np.datetime64(0, "s"), np.datetime64(0, "ms")],
    "tuples": [(np.str_("a"), 1), ("a", np.int64(1)), (np.str_("a"), True)],
}


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("keys", EQUAL_KEYS.values(), ids=EQUAL_KEYS.keys())
def test_equal_dict_keys_merge_as_pickle_merges(keys: list[Any], protocol: int) -> None:
    pairs = [(key, i) for i, key in enumerate(keys)] + [("other", -1)]
    data = _dumps(_Pairs(pairs), protocol)
    want = pickle.loads(data)
    assert len(want) == 2  # the keys above did merge
    assert_identical(safenpz.load(data), want)


@pytest.mark.parametrize("keys", EQUAL_KEYS.values(), ids=EQUAL_KEYS.keys())
def test_equal_set_items_merge_as_pickle_merges(keys: list[Any]) -> None:
    data = _dumps(_Items([*keys, "other"]), 4)
    want = pickle.loads(data)
    assert len(want) == 2
    assert_identical(safenpz.load(data), want)


def test_equal_keys_inside_an_object_array_npy() -> None:
    """The same in a ``.npy`` file, against ``np.load(allow_pickle=True)``."""
    arr = np.empty(2, dtype=object)
    arr[0] = _Pairs((key, i) for i, key in enumerate(EQUAL_KEYS["str"]))
    arr[1] = _Pairs((key, i) for i, key in enumerate(EQUAL_KEYS["numbers"]))
    npy = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        npy, {"descr": "|O", "fortran_order": False, "shape": (2,)}
    )
    data = npy.getvalue() + _dumps(arr, 4)
    want = np.load(io.BytesIO(data), allow_pickle=True)
    assert [len(d) for d in want] == [1, 1]
    assert_identical(safenpz.load(data), want)
