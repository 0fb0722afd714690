"""White-box tests of safenpz.datasets._compat: ``safe_np_load``'s options, and
the real Keras 3 loaders under ``keras_compat`` with a spy on (and a check that
they are restored away from) ``_compat.safe_load_npz``. The old-style loaders
are tested through the public API in tests/test_compat.py."""

from __future__ import annotations

import os
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from safenpz import UnsafeFileError
from safenpz.datasets import _compat, keras_compat

os.environ.setdefault("KERAS_BACKEND", "numpy")


def _typed(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, _typed(value.tolist()))
    if isinstance(value, list | tuple):
        return (type(value).__name__, [_typed(v) for v in value])
    return (type(value), value)


def test_safe_np_load_options(keras_data: Any) -> None:
    file = keras_data.imdb()
    with _compat.safe_np_load(file, allow_pickle=True, encoding="utf-8") as npz:
        assert type(npz["x_train"][0]) is list


# -- the real Keras 3 --------------------------------------------------------------


@pytest.fixture
def keras_modules() -> tuple[types.ModuleType, types.ModuleType]:
    pytest.importorskip("keras")
    imdb = pytest.importorskip("keras.src.datasets.imdb")
    reuters = pytest.importorskip("keras.src.datasets.reuters")
    return imdb, reuters


@pytest.mark.keras
def test_keras_loaders_inside_and_outside(
    keras_modules: tuple[types.ModuleType, types.ModuleType],
    keras_data: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    k_imdb, k_reuters = keras_modules
    files = {k_imdb: keras_data.imdb(), k_reuters: keras_data.reuters()}
    calls: list[object] = []
    real = _compat.safe_load_npz

    def spy(path: object) -> dict[str, Any]:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(_compat, "safe_load_npz", spy)
    for module, file in files.items():
        monkeypatch.setattr(module, "get_file", lambda *a, _f=file, **k: str(_f))
    outside = {m: m.load_data(num_words=50) for m in files}
    original = {m: m.npz_utils for m in files}
    with keras_compat() as patched:
        assert "keras.src.datasets.imdb.npz_utils" in patched
        assert "keras.src.datasets.reuters.npz_utils" in patched
        inside = {m: m.load_data(num_words=50) for m in files}
        assert k_imdb.npz_utils.RestrictedUnpickler is (
            original[k_imdb].RestrictedUnpickler
        )
    assert len(calls) == 2  # both went through safenpz
    for module in files:
        assert module.npz_utils is original[module]
        assert _typed(inside[module]) == _typed(outside[module])


@pytest.mark.keras
def test_keras_loader_refuses_a_hostile_file(
    keras_modules: tuple[types.ModuleType, types.ModuleType],
    keras_data: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    k_imdb, k_reuters = keras_modules
    sentinel = tmp_path / "sentinel"
    for module, reuters in ((k_imdb, False), (k_reuters, True)):
        hostile = keras_data.hostile(sentinel, f"evil-{reuters}.npz", reuters=reuters)
        monkeypatch.setattr(module, "get_file", lambda *a, _f=hostile, **k: str(_f))
        with keras_compat(), pytest.raises(UnsafeFileError, match="system"):
            module.load_data()
        assert not sentinel.exists()
    assert k_imdb.npz_utils.load_npz is not _compat.safe_load_npz
