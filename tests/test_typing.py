"""The user script of ``tests/typing`` runs, and its run-time types are the
ones ``mypy --strict`` sees there (``make check`` runs mypy on it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import safenpz
from safenpz import FormatError

SCRIPT = Path(__file__).parent / "typing" / "user_script.py"


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("user_script", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_load_helpers(script: ModuleType) -> None:
    script.check_load()


def test_keras_loaders(
    script: ModuleType,
    keras_data: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("SAFENPZ_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SAFENPZ_OFFLINE", "1")
    script.check_keras(str(keras_data.imdb()))
    script.check_reuters(str(keras_data.reuters()))


def test_load_npy_refuses_an_archive(tmp_path: Path) -> None:
    path = tmp_path / "a.npz"
    np.savez(path, a=np.arange(2))
    with pytest.raises(FormatError, match=r"a\.npz is a \.npz archive .*load_npz"):
        safenpz.load_npy(path)


def test_load_npz_refuses_an_array_and_a_pickle(tmp_path: Path) -> None:
    npy = tmp_path / "a.npy"
    np.save(npy, np.arange(2))
    with pytest.raises(FormatError, match=r"is a \.npy array .*load_npy"):
        safenpz.load_npz(npy)
    pkl = tmp_path / "a.pkl"
    pkl.write_bytes(b"\x80\x04K\x07.")  # pickle of the int 7
    with pytest.raises(FormatError, match="is a pickle of int"):
        safenpz.load_npz(pkl)
    with pytest.raises(FormatError, match="<bytes> is a pickle of int"):
        safenpz.load_npy(pkl.read_bytes())


def test_mypy_sees_the_declared_types(tmp_path: Path) -> None:
    """Skipped without mypy (``make check`` always runs it): mypy on the script."""
    api = pytest.importorskip("mypy.api")
    config = str(SCRIPT.parent / "mypy.ini")
    cache = str(tmp_path / "mypy-cache")
    out, err, code = api.run(
        ["--config-file", config, "--cache-dir", cache, str(SCRIPT)]
    )
    assert code == 0, out + err
