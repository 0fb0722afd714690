"""White-box tests of safenpz._convert: the Parquet split plan, the Arrow table
builder and the output-format rule (``safenpz.convert`` itself is tested
through the public API in tests/test_convert.py)."""

from __future__ import annotations

import numpy as np
import pytest

from safenpz._convert import output_format, parquet_layout, to_arrow_table

PLANS: dict[str, tuple[dict[str, int], dict[str | None, dict[str, str]]]] = {
    "columns-differ": (
        {"x_train": 2, "y_train": 2, "x_test": 3},
        {
            "train": {"x_train": "x_train", "y_train": "y_train"},
            "test": {"x_test": "x_test"},
        },
    ),
    "lengths-differ-in-a-split": (
        {"x_train": 2, "y_train": 3, "x_test": 2, "y_test": 3},
        {
            "x_train+x_test": {"x_train": "x_train", "x_test": "x_test"},
            "y_train+y_test": {"y_train": "y_train", "y_test": "y_test"},
        },
    ),
    "one-split": (
        {"x_train": 2, "y_train": 2},
        {None: {"x_train": "x_train", "y_train": "y_train"}},
    ),
    "unsafe-split-name": (
        {"x_..": 1, "y_..": 1, "x_a": 2, "y_a": 2},
        {"group0": {"x": "x_..", "y": "y_.."}, "group1": {"x": "x_a", "y": "y_a"}},
    ),
    "case-clash": (
        {"x_Train": 1, "x_train": 2},
        {"group0": {"x": "x_Train"}, "group1": {"x": "x_train"}},
    ),
    "three-splits": (
        {"x_train": 3, "x_val": 1, "x_test": 2},
        {"train": {"x": "x_train"}, "val": {"x": "x_val"}, "test": {"x": "x_test"}},
    ),
}


@pytest.mark.parametrize(("lengths", "expected"), list(PLANS.values()), ids=list(PLANS))
def test_parquet_layout(
    lengths: dict[str, int], expected: dict[str | None, dict[str, str]]
) -> None:
    assert parquet_layout(lengths) == expected


def test_to_arrow_table_needs_equal_lengths() -> None:
    pytest.importorskip("pyarrow")
    with pytest.raises(ValueError, match=r"need equal lengths, got \{'a': 2, 'b': 3\}"):
        to_arrow_table({"a": np.arange(2), "b": np.arange(3)})


@pytest.mark.usefixtures("no_pyarrow")
def test_to_arrow_table_without_pyarrow_names_the_extra() -> None:
    with pytest.raises(ImportError, match=r"safenpz\[parquet\]") as exc:
        to_arrow_table({"a": np.arange(2)})
    assert isinstance(exc.value.__cause__, ImportError)


def test_output_format() -> None:
    assert output_format("a.NPZ") == "npz"
    assert output_format("a.pq") == "parquet"
    assert output_format("a.txt", "parquet") == "parquet"
    assert output_format("splits/") == "parquet"
    with pytest.raises(ValueError, match="format must be 'npz' or 'parquet'"):
        output_format("a.npz", "csv")
