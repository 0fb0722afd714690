"""The proven path: streams the pre-check proved, decoded with NumPy's own
constructors (``_decode.decode_proven``), against the validating decoder.

The suite's conftest already decodes every stream the pre-check proves both
ways; these tests call the proven path directly (also without the C
extension), on canonical streams of every protocol, and check that a stream
outside its table is refused without running anything.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import safenpz
from identical import assert_identical
from safenpz._limits import DEFAULT_LIMITS
from safenpz._pickle import _decode, _prescan
from safenpz._pickle._context import Context


def _object_array(items: list[Any]) -> np.ndarray[Any, Any]:
    arr = np.empty(len(items), dtype=object)
    arr[:] = items
    return arr


VALUES: dict[str, Any] = {
    "strings": _object_array(["a", "bb", "ccc\u00e9", ""]),
    "dicts": _object_array(
        [{"id": i, "name": f"w{i}", "score": i / 7} for i in range(5)]
    ),
    "rows": _object_array([[i, f"s{i}", i / 3] for i in range(5)]),
    "vocab": {"the": 1, "a": 2, "\u00fcber": 3},
    "history": {"loss": [np.float64(x) for x in (0.5, 0.25)], "acc": [np.float32(1)]},
    "weights": {"w": np.arange(6, dtype="<f4").reshape(2, 3), "b": np.zeros(3, ">f8")},
    "fortran": np.asfortranarray(np.arange(6, dtype="i2").reshape(2, 3)),
    "scalars": [np.int8(-1), np.uint64(2**63), np.complex128(1 - 2j), np.bool_(True)],
    "nested": _object_array([_object_array([1, "x"]), None]),
}


def _ctx(encoding: str = "latin1") -> Context:
    return Context("<pickle>", DEFAULT_LIMITS, encoding, scanned=True)


def _validating(data: bytes, encoding: str = "latin1") -> Any:
    was, _prescan.ENABLED = _prescan.ENABLED, False
    try:
        return _decode.safe_loads(data, encoding=encoding)
    finally:
        _prescan.ENABLED = was


@pytest.mark.parametrize("protocol", range(6))
@pytest.mark.parametrize("name", sorted(VALUES))
def test_proven_path_gives_what_the_validating_decoder_gives(
    name: str, protocol: int
) -> None:
    data = pickle.dumps(VALUES[name], protocol=protocol)
    got = _decode.decode_proven(data, _ctx())
    assert_identical(got, _validating(data))
    assert_identical(got, pickle.loads(data))


def test_proven_path_decodes_python2_strings_per_encoding() -> None:
    # a Python 2 str (SHORT_BINSTRING) in a list, at protocol 2
    data = b"\x80\x02]q\x01U\x03abcq\x02a."
    assert _decode.decode_proven(data, _ctx("latin1")) == ["abc"]
    assert _decode.decode_proven(data, _ctx("bytes")) == [b"abc"]


def test_a_global_outside_the_table_is_refused_without_running(
    sentinel: Path,
) -> None:
    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (open, (str(sentinel), "w"))

    data = pickle.dumps(Payload(), protocol=2)
    with pytest.raises(safenpz.UnsafeFileError) as info:
        _decode.decode_proven(data, _ctx())
    assert info.value.global_name == "io.open"
    assert "not among those the pre-check admits" in str(info.value)
    assert not sentinel.exists()


def test_persistent_ids_are_refused() -> None:
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=2)
    pickler.persistent_id = lambda obj: "pid" if obj == "x" else None  # type: ignore[method-assign]
    pickler.dump(["x"])
    with pytest.raises(
        safenpz.UnsafeFileError, match="persistent ids are never resolved"
    ):
        _decode.decode_proven(buf.getvalue(), _ctx())


def test_the_table_holds_numpys_own_constructors() -> None:
    table = _decode.NUMPY_CONSTRUCTORS
    assert table["numpy", "dtype"] is np.dtype
    assert table["numpy", "ndarray"] is np.ndarray
    assert (
        table["numpy._core.multiarray", "_reconstruct"] is np.empty(0).__reduce__()[0]
    )
    assert table["numpy.core.multiarray", "scalar"] is np.float64(0).__reduce__()[0]
    frombuffer = np.empty(1).__reduce_ex__(5)[0]
    assert table["numpy._core.numeric", "_frombuffer"] is frombuffer
