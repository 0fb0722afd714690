"""A scoped shim: Keras's own dataset loaders, decoding through safenpz.

Under :func:`keras_compat`, ``keras.datasets.imdb.load_data`` and
``reuters.load_data`` (Keras 3, Keras 2, tf-keras) run unchanged, except that
the one call with which they read the ``.npz`` goes to safenpz's safe decoder.
Only names *inside those dataset modules* are rebound, and they are restored
on exit, even when the block raises:

- Keras >= 3.15 calls ``npz_utils.load_npz(path)``: the module-level name
  ``npz_utils`` of each dataset module is bound to a stand-in whose
  ``load_npz`` is safenpz's (everything else is the real ``npz_utils``).
- Older Keras, tf.keras and tf-keras call ``np.load(path, allow_pickle=True)``:
  the module-level name ``np`` of each dataset module is bound to a stand-in
  for NumPy whose ``load`` is safenpz's (everything else is the real NumPy).

``numpy.load`` itself, and every other module, is never touched. The shim
rebinds module attributes, which every thread sees: enter it around the
loading code, not around code other threads run at the same time.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import types
from collections.abc import Iterator
from typing import Any, Final

import numpy as np

from safenpz import _npy

__all__ = ["keras_compat"]

#: Dataset modules the shim looks at, newest layout first. Modules that do
#: not exist in the installed versions are skipped.
TARGETS: Final = (
    "keras.src.datasets.imdb",
    "keras.src.datasets.reuters",
    "keras.datasets.imdb",
    "keras.datasets.reuters",
    "tf_keras.src.datasets.imdb",
    "tf_keras.src.datasets.reuters",
    "tf_keras.datasets.imdb",
    "tf_keras.datasets.reuters",
)


def safe_load_npz(path: Any) -> dict[str, Any]:
    """Stand-in for Keras's ``npz_utils.load_npz``: every array, safely decoded.

    Parameters
    ----------
    path : str or path-like
        The ``.npz`` file.

    Returns
    -------
    dict
        Array name -> array, as Keras's function returns.

    Raises
    ------
    UnsafeFileError
        The file would need code execution; nothing from it ran.
    """
    with _npy.load(path) as npz:
        return {name: npz[name] for name in npz.files}


def safe_np_load(
    file: Any,
    mmap_mode: Any = None,
    allow_pickle: bool = False,
    fix_imports: bool = True,
    encoding: str = "ASCII",
    **kwargs: Any,
) -> Any:
    """Stand-in for ``np.load`` inside a Keras dataset module.

    Accepts ``np.load``'s arguments; `allow_pickle` is ignored because
    safenpz never unpickles, it decodes object arrays through its own table.
    """
    del allow_pickle, fix_imports, kwargs
    if encoding not in ("latin1", "bytes", "ASCII"):
        encoding = "latin1"
    return _npy.load(file, mmap_mode=mmap_mode, encoding=encoding)  # type: ignore[arg-type]


class _NumpyProxy(types.ModuleType):
    """NumPy, except that ``load`` decodes through safenpz."""

    def __init__(self) -> None:
        super().__init__(np.__name__, np.__doc__)
        self.load = safe_np_load

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)


class _NpzUtilsProxy(types.ModuleType):
    """Keras's ``npz_utils``, except that ``load_npz`` decodes through safenpz."""

    def __init__(self, real: types.ModuleType) -> None:
        super().__init__(real.__name__, real.__doc__)
        self._real = real
        self.load_npz = safe_load_npz

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _installed(top: str) -> bool:
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def _modules(names: tuple[str, ...]) -> Iterator[types.ModuleType]:
    tops: dict[str, bool] = {}
    for name in names:
        top = name.partition(".")[0]
        if top not in tops:
            tops[top] = _installed(top)
        if not tops[top]:
            continue
        try:
            yield importlib.import_module(name)
        except ImportError:
            continue


def _replacement(module: types.ModuleType) -> tuple[str, types.ModuleType] | None:
    """Which module-level name to rebind in a dataset module, and to what."""
    namespace = vars(module)
    npz_utils = namespace.get("npz_utils")
    if isinstance(npz_utils, types.ModuleType) and hasattr(npz_utils, "load_npz"):
        return "npz_utils", _NpzUtilsProxy(npz_utils)
    if namespace.get("np") is np:
        return "np", _NumpyProxy()
    return None


@contextlib.contextmanager
def keras_compat(*, modules: tuple[str, ...] = TARGETS) -> Iterator[list[str]]:
    """Make Keras's own IMDb/Reuters loaders decode through safenpz, in a block.

    Inside the block, ``keras.datasets.imdb.load_data()`` and
    ``reuters.load_data()`` (and tf-keras's, when installed) read their
    ``.npz`` with :func:`safenpz.load` instead of a pickle-based loader:
    the same arrays for a genuine file, :class:`~safenpz.UnsafeFileError`
    for a tampered one, never ``allow_pickle=True``. On exit the modules are
    exactly as before, even if the block raised. Blocks may be nested.

    The Keras packages that are installed are imported on entry (importing
    tf-keras imports TensorFlow). The rebinding is process-wide while the
    block runs (see the module docstring).

    Parameters
    ----------
    modules : tuple of str
        Dataset modules to patch; defaults to every Keras and tf-keras
        layout. Missing ones are skipped.

    Yields
    ------
    list of str
        The ``module.name`` bindings that were replaced.

    Examples
    --------
    >>> from safenpz.datasets import keras_compat
    >>> with keras_compat():  # doctest: +SKIP
    ...     from keras.datasets import imdb
    ...     (x_train, y_train), (x_test, y_test) = imdb.load_data()
    """
    saved: list[tuple[types.ModuleType, str, Any]] = []
    try:
        for module in _modules(modules):
            found = _replacement(module)
            if found is None:
                continue
            name, proxy = found
            saved.append((module, name, vars(module)[name]))
            setattr(module, name, proxy)
        yield [f"{module.__name__}.{name}" for module, name, _ in saved]
    finally:
        for module, name, original in reversed(saved):
            setattr(module, name, original)
