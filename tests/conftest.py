"""Shared fixtures of the safenpz test suite."""

from __future__ import annotations

import os
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from identical import assert_identical
from safenpz._pickle import _decode, _prescan

# Keras reads its backend once, at import: numpy needs no install and serves
# every test that only loads or pads; `make test` reruns the training tutorial
# with KERAS_BACKEND=jax.
os.environ.setdefault("KERAS_BACKEND", "numpy")

# Every stream the compiled pre-check proves is scanned anyway and must pass,
# and what NumPy's own constructors make of it must be identical to what the
# validating decoder makes: the whole suite (its hostile files included)
# tests the pre-check and the proven path.
_prescan.CROSS_CHECK = True
_decode_proven = _decode.decode_proven


def _decode_both(data: bytes, ctx: Any) -> Any:
    got = _decode_proven(data, ctx)
    was, _prescan.ENABLED = _prescan.ENABLED, False
    try:
        expected = _decode.safe_loads(
            data, member=ctx.member, limits=ctx.limits, encoding=ctx.encoding
        )
    finally:
        _prescan.ENABLED = was
    assert_identical(got, expected)
    return got


_decode.decode_proven = _decode_both


@pytest.fixture
def sentinel(tmp_path: Path) -> Path:
    """A file that hostile payloads try to create (it must never appear)."""
    path = tmp_path / "sentinel"
    assert not path.exists()
    return path


@pytest.fixture
def no_pyarrow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import pyarrow`` fail as if the extra were not installed."""
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)


@dataclass
class Measured:
    """What :func:`measure` saw: wall time and peak traced memory."""

    seconds: float = 0.0
    peak_bytes: int = 0


@pytest.fixture
def measure() -> Callable[..., AbstractContextManager[Measured]]:
    """``with measure() as m: ...`` records time and peak memory (tracemalloc,
    which also sees NumPy's data buffers) of the block. ``measure(memory=False)``
    times only (tracemalloc slows code that allocates millions of objects)."""

    @contextmanager
    def run(*, memory: bool = True) -> Iterator[Measured]:
        result = Measured()
        if not memory:
            start = time.perf_counter()
            try:
                yield result
            finally:
                result.seconds = time.perf_counter() - start
            return
        was_tracing = tracemalloc.is_tracing()
        if not was_tracing:
            tracemalloc.start()
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        start = time.perf_counter()
        try:
            yield result
        finally:
            result.seconds = time.perf_counter() - start
            _, peak = tracemalloc.get_traced_memory()
            result.peak_bytes = peak - base
            if not was_tracing:
                tracemalloc.stop()

    return run


# ---------------------------------------------------------------------------
# Keras-format dataset files (tests/test_datasets.py, test_keras_parity.py,
# test_compat.py): written by NumPy itself, exactly as Keras's hosted files are
# laid out (object arrays of Python int lists, int64 labels).


def _keras_rows(
    rng: object, n: int, *, vocab: int, max_len: int, empty: bool, width: int | None
) -> Any:
    import numpy as np

    assert isinstance(rng, np.random.Generator)
    if width is not None:
        lengths = np.full(n, width)
    else:
        lengths = rng.integers(0 if empty else 1, max_len + 1, n)
        if empty and n > 3:
            lengths[[1, n // 2]] = 0  # make sure empty reviews exist
    rows = np.empty(n, dtype=object)
    for i, length in enumerate(lengths.tolist()):
        # Zipf-like ids in 1..vocab, as plain Python ints in a Python list
        ids = np.minimum(rng.zipf(1.3, length), vocab)
        rows[i] = [int(w) for w in ids]
    return rows


@dataclass(frozen=True)
class KerasDataFiles:
    """Writes small IMDb/Reuters-shaped legacy ``.npz`` files into `root`."""

    root: Path

    def imdb(
        self,
        name: str = "imdb.npz",
        *,
        n_train: int = 120,
        n_test: int = 80,
        vocab: int = 300,
        max_len: int = 30,
        empty: bool = True,
        width: int | None = None,
        seed: int = 0,
        compressed: bool = True,
    ) -> Path:
        """IMDb layout: x_train, y_train, x_test, y_test (int64 0/1 labels).

        `empty` includes empty reviews; `width` makes every review that long.
        """
        import numpy as np

        rng = np.random.default_rng(seed)
        opts: dict[str, Any] = {
            "vocab": vocab,
            "max_len": max_len,
            "empty": empty,
            "width": width,
        }
        path = self.root / name
        writer = np.savez_compressed if compressed else np.savez
        writer(
            path,
            x_train=_keras_rows(rng, n_train, **opts),
            y_train=rng.integers(0, 2, n_train).astype(np.int64),
            x_test=_keras_rows(rng, n_test, **opts),
            y_test=rng.integers(0, 2, n_test).astype(np.int64),
        )
        return path

    def reuters(
        self,
        name: str = "reuters.npz",
        *,
        n: int = 150,
        vocab: int = 300,
        max_len: int = 30,
        empty: bool = True,
        width: int | None = None,
        seed: int = 1,
    ) -> Path:
        """Reuters layout: x, y (int64 labels in 0..45)."""
        import numpy as np

        rng = np.random.default_rng(seed)
        opts: dict[str, Any] = {
            "vocab": vocab,
            "max_len": max_len,
            "empty": empty,
            "width": width,
        }
        path = self.root / name
        np.savez_compressed(
            path,
            x=_keras_rows(rng, n, **opts),
            y=rng.integers(0, 46, n).astype(np.int64),
        )
        return path

    def hostile(
        self, sentinel: Path, name: str = "evil.npz", *, reuters: bool = False
    ) -> Path:
        """A Keras-shaped file whose first rows member, unpickled, would run
        ``touch <sentinel>``."""
        import os

        import numpy as np

        class Payload:
            def __reduce__(self) -> tuple[object, tuple[str]]:
                return (os.system, (f"touch {sentinel}",))

        rows = np.empty(2, dtype=object)
        rows[0] = [1, 2, 3]
        rows[1] = Payload()
        labels = np.array([0, 1], dtype=np.int64)
        path = self.root / name
        if reuters:
            np.savez(path, x=rows, y=labels)
        else:
            np.savez(path, x_train=rows, y_train=labels, x_test=rows, y_test=labels)
        return path


@pytest.fixture
def keras_data(tmp_path: Path) -> KerasDataFiles:
    """Factory of small Keras-format dataset files in a fresh directory."""
    root = tmp_path / "keras-data"
    root.mkdir()
    return KerasDataFiles(root)


@pytest.fixture(scope="session")
def keras_data_session(tmp_path_factory: pytest.TempPathFactory) -> KerasDataFiles:
    """Like ``keras_data``, shared by a whole session (files written once)."""
    return KerasDataFiles(tmp_path_factory.mktemp("keras-data"))
