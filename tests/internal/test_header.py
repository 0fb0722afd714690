"""White-box tests of safenpz._header.parse_header: the version it reads and
the header dicts it refuses (``load`` on the same files is tested in
tests/test_npy.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from hostile import BAD_HEADERS, npy_header, obj_array
from safenpz import FormatError
from safenpz._header import parse_header


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)], ids=["v1", "v2", "v3"])
@pytest.mark.parametrize(
    "arr",
    [
        np.arange(5.0),
        obj_array([[1, 2], [3], [], [4, 5, 6]]),
        obj_array([{"a": 1, 2: [3]}, {}]),
    ],
    ids=["numeric", "int-lists", "dicts"],
)
def test_parse_header_reads_the_version(
    arr: np.ndarray, version: tuple[int, int]
) -> None:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, version=version, allow_pickle=True)
    data = buf.getvalue()
    assert parse_header(data).version == version


@pytest.mark.parametrize("text", list(BAD_HEADERS.values()), ids=list(BAD_HEADERS))
def test_parse_header_refuses_bad_header_dicts(text: str) -> None:
    data = npy_header(text=text) + b"\x00" * 8
    with pytest.raises(FormatError):
        parse_header(data)


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=True)
    return buf.getvalue()


def test_a_header_parsed_again_gives_the_same_fields() -> None:
    """Parsed headers are kept (``_PARSED``): the same fields, from bytes
    anywhere (the data offset is this prefix's)."""
    data = _npy(np.zeros((3, 4), dtype="<i4"))
    first = parse_header(data)
    again = parse_header(b"" + data)
    assert again == first
    assert again.shape == (3, 4)
    assert again.dtype == np.dtype("<i4")
    assert again.fortran_order is False


def test_structured_dtypes_are_never_shared() -> None:
    """A structured dtype's field names can be set in place: each parse
    makes its own."""
    data = _npy(np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")]))
    first = parse_header(data).dtype
    first.names = ("x", "y")
    assert parse_header(data).dtype.names == ("a", "b")


@pytest.mark.parametrize("text", list(BAD_HEADERS.values()), ids=list(BAD_HEADERS))
def test_bad_headers_are_refused_every_time(text: str) -> None:
    data = npy_header(text=text) + b"\x00" * 8
    for _ in range(2):
        with pytest.raises(FormatError):
            parse_header(data)
