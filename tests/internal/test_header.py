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
