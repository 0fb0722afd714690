"""The public API is exactly what ``safenpz.__all__`` lists (so private
modules can be refactored freely)."""

from __future__ import annotations

import safenpz
import safenpz.datasets

EXPECTED = {
    "DownloadError",
    "FileReport",
    "GlobalRef",
    "FormatError",
    "HashMismatchError",
    "LimitError",
    "Limits",
    "MemberReport",
    "NpzFile",
    "PickleReport",
    "Problem",
    "RaggedArray",
    "SafenpzError",
    "UnsafeFileError",
    "UnstorableError",
    "Where",
    "__version__",
    "convert",
    "load",
    "load_npy",
    "load_npz",
    "save",
    "scan_bytes",
    "scan_path",
    "scan_pickle",
}


def test_all_is_the_public_api() -> None:
    assert set(safenpz.__all__) == EXPECTED
    assert safenpz.__all__ == sorted(safenpz.__all__)
    public = {n for n in dir(safenpz) if not n.startswith("_")}
    assert public - {"cli", "datasets", "torch"} <= EXPECTED  # public submodules


def test_exported_objects_claim_the_package() -> None:
    for name in EXPECTED - {"__version__"}:
        assert getattr(safenpz, name).__module__ == "safenpz", name


def test_errors_subclass_the_builtins_callers_catch() -> None:
    assert issubclass(safenpz.UnsafeFileError, ValueError)
    assert issubclass(safenpz.FormatError, ValueError)
    assert issubclass(safenpz.LimitError, ValueError)
    assert issubclass(safenpz.HashMismatchError, ValueError)
    assert issubclass(safenpz.DownloadError, OSError)
    for name in ("UnsafeFileError", "FormatError", "LimitError", "DownloadError"):
        assert issubclass(getattr(safenpz, name), safenpz.SafenpzError)


def test_datasets_namespace() -> None:
    assert set(safenpz.datasets.__all__) == {"imdb", "keras_compat", "reuters"}
    for module in (safenpz.datasets.imdb, safenpz.datasets.reuters):
        assert callable(module.load_data)
        assert callable(module.get_word_index)
    assert callable(safenpz.datasets.reuters.get_label_names)
