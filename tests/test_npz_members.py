"""Members of an ``.npz`` read the same way whatever the file object.

Stored members whose data the file holds are read straight into one buffer;
deflated members, and file objects that cannot ``readinto``, are read in
chunks. Both must give ``np.load``'s arrays, and refuse a changed byte.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

import numpy as np
import pytest

import safenpz
from fileobjs import ReadSeekOnly
from identical import assert_identical
from safenpz import FormatError


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "big": rng.random((700, 500), np.float32),  # over one 1 MiB chunk
        "ints": np.arange(1000, dtype=">i8"),
        "empty": np.zeros((0, 3)),
        "fortran": np.asfortranarray(rng.random((30, 40))),
    }


def _npz(compressed: bool) -> bytes:
    buf = io.BytesIO()
    save: Any = np.savez_compressed if compressed else np.savez
    save(buf, **_arrays())
    return buf.getvalue()


def _all(npz: Any) -> dict[str, Any]:
    with npz:
        return {k: npz[k] for k in npz.files}


@pytest.mark.parametrize("compressed", [False, True], ids=["stored", "deflated"])
@pytest.mark.parametrize(
    "wrap", [io.BytesIO, ReadSeekOnly], ids=["bytesio", "read-only"]
)
def test_members_are_np_loads(compressed: bool, wrap: Any) -> None:
    data = _npz(compressed)
    want = _all(np.load(io.BytesIO(data)))
    assert_identical(_all(safenpz.load(wrap(data))), want)
    for got in _all(safenpz.load(wrap(data))).values():
        assert got.flags.writeable


def test_a_changed_byte_in_a_stored_member_is_refused(tmp_path: Any) -> None:
    data = bytearray(_npz(False))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo("big.npy")
    start = info.header_offset + 30 + len(info.filename) + 200_000
    data[start] ^= 0xFF
    path = tmp_path / "changed.npz"
    path.write_bytes(data)
    sources: list[Any] = [path, bytes(data), ReadSeekOnly(bytes(data))]
    for source in sources:
        with safenpz.load(source) as npz:
            with pytest.raises(FormatError) as err:
                npz["big"]
            assert "CRC-32 mismatch" in str(err.value)
            assert err.value.member == "big.npy"
            assert npz["ints"].tolist() == list(range(1000))
