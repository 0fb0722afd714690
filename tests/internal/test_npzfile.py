"""White-box tests of safenpz._npzfile.NpzFile's constructor options (``load``
never passes them; the public mapping is tested in tests/test_npy.py and
tests/test_names_and_nul.py)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest

from hostile import npz_bytes
from safenpz import FormatError, NpzFile, load
from safenpz._limits import DEFAULT_LIMITS


def npy_of(arr: Any) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def test_raw_access_only_does_not_read_the_manifest() -> None:
    data = npz_bytes({"__safenpz__.npy": b"garbage", "y.npy": npy_of(np.arange(2))})
    with pytest.raises(FormatError):
        load(data)
    npz = NpzFile(
        io.BytesIO(data),
        name="a.npz",
        own_file=True,
        limits=DEFAULT_LIMITS,
        ragged=False,
        encoding="latin1",
        read_layout=False,
    )
    with npz:
        assert npz.raw_names == ["__safenpz__.npy", "y.npy"]
        with pytest.raises(ValueError, match="raw access"):
            _ = npz.files
