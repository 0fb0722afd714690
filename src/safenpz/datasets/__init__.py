"""Drop-in Keras datasets: ``imdb`` and ``reuters``, safe and fast.

``from safenpz.datasets import imdb`` instead of ``from keras.datasets import
imdb`` gives the same ``load_data()`` results as Keras 3.15.1, without
``allow_pickle=True`` and without touching NumPy or Keras.

Where the data come from
------------------------
A bare ``path`` such as Keras's default ``"imdb.npz"`` is looked up, in order,
in a pickle-free converted copy from an earlier load, in safenpz's cache
directory, and in Keras's (``$KERAS_HOME/datasets`` or ``~/.keras/datasets``;
used in place when its sha256 matches); otherwise it is downloaded from
Keras's origin. Every downloaded or reused file is checked against the
published hash before anything is decoded. A path with a directory part is a
local file and is used as it is (still decoded safely).

Environment variables
    ``SAFENPZ_CACHE_DIR``: cache directory (default: the platform's user cache
    directory, e.g. ``~/.cache/safenpz``). ``SAFENPZ_OFFLINE=1``: never
    download; the error says where to put the file. ``SAFENPZ_DATASETS_URL``:
    a mirror of Keras's origin.

The converted cache
    After the first load, ``<cache>/imdb-<sha256[:16]>.safenpz.npz`` holds the
    decoded rows as plain numeric arrays (see :mod:`safenpz.datasets._store`),
    so later loads skip pickle decoding entirely. A damaged copy is detected,
    deleted and rebuilt. The downloaded ``imdb.npz`` may be deleted; the
    converted copy alone serves later loads (offline included).

Keras's own loader
    :func:`keras_compat` is a context manager under which
    ``keras.datasets.imdb.load_data`` itself decodes through safenpz.
"""

from __future__ import annotations

from safenpz.datasets import imdb, reuters
from safenpz.datasets._compat import keras_compat

__all__ = ["imdb", "keras_compat", "reuters"]
