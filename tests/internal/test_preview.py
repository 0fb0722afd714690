"""Tests for safenpz._preview and the smaller branches of safenpz._scan."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hostile import npy_header, npz_bytes
from safenpz._limits import Limits
from safenpz._preview import escape, preview, shape_problem
from safenpz._scan import FileReport, iter_targets, scan_bytes, scan_path


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ("a\x1b", "'a\\x1b'"),
        (b"\x00" * 100, repr(b"\x00" * 80) + "... (100 bytes)"),
        (None, "None"),
        (True, "True"),
        (12, "12"),
        (2**1000, "<int of 1001 bits>"),
        (1.5, "1.5"),
        ({1: 2}, "{1: 2}"),
        (object(), "<object object>"),
    ],
)
def test_preview(value: object, want: str) -> None:
    assert preview(value) == want


def test_preview_unquoted_and_long_text() -> None:
    assert preview("x\ny" * 50, limit=4, quote=False) == "x\\nyx... (150 characters)"
    assert escape("ab" * 10, limit=3) == "aba... (20 characters)"
    assert escape("plain") == "plain"


@pytest.mark.parametrize(
    ("shape", "words"),
    [
        ([2], "tuple"),
        ((1,) * 65, "65 dimensions"),
        ((1.0,), "float"),
        ((-1,), "negative"),
        ((0, 2**64), "2**63"),
        ((2**62, 4), "multiply"),
    ],
)
def test_shape_problem(shape: object, words: str) -> None:
    problem = shape_problem(shape)
    assert problem is not None
    assert words in problem


def _npy(arr: Any) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def test_scan_branches(tmp_path: Path) -> None:
    assert FileReport("x", "npz").verdict == "safe"  # an empty archive
    assert FileReport("x", "npy").verdict == "invalid"
    # zero-width arrays count against max_items, in .npy files and members
    zero = npy_header(descr="<U0", shape=(10,))
    few = Limits(max_items=5)
    assert scan_bytes(zero, limits=few).verdict == "invalid"
    assert scan_bytes(npz_bytes({"z.npy": zero}), limits=few).verdict == "invalid"
    # a pickle longer than max_member_bytes
    assert (
        scan_bytes(
            b"\x80\x02" + b"N0" * 600_000 + b"N.",
            limits=Limits(max_member_bytes=1 << 20),
        ).verdict
        == "invalid"
    )
    # manifests that are not 0-d unicode arrays, or oversized
    for manifest in (_npy(np.arange(2)), _npy(np.array("{}"))[:-4]):
        report = scan_bytes(npz_bytes({"__safenpz__.npy": manifest}))
        assert report.verdict == "invalid", report
    big = npz_bytes({"__safenpz__.npy": _npy(np.array(" " * (2 << 20)))})
    assert "larger than" in (scan_bytes(big).members[0].error or "")
    bad_utf32 = _npy(np.array("{}"))[:-8] + b"\xff\xff\xff\xff" * 2
    assert scan_bytes(npz_bytes({"__safenpz__.npy": bad_utf32})).verdict == "invalid"
    # unreadable paths
    assert scan_path(tmp_path / "missing").verdict == "invalid"
    (tmp_path / "d").mkdir()
    os.symlink(tmp_path / "nowhere", tmp_path / "d" / "dangling.npy")
    assert list(iter_targets([tmp_path / "d"])) == [
        (tmp_path / "d" / "dangling.npy", True)
    ]
