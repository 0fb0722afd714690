"""safenpz: load object-array .npy/.npz files without ever running code from them.

Public API::

    safenpz.load(file, ragged=False)   safe drop-in for np.load(allow_pickle=True)
    safenpz.load_npy / load_npz        the same, typed for one kind of file
    safenpz.save(file, **arrays)       pickle-free .npz that np.load opens
    safenpz.convert(src, dst)          legacy file -> pickle-free .npz / Parquet
    safenpz.scan_path / scan_bytes     static verdict per member (``safenpz scan``)
    safenpz.scan_pickle(data)          static check of one pickle stream -> PickleReport
    safenpz.Where, errors              every error carries .where (.member, .offset)
    safenpz.RaggedArray                values + offsets
    safenpz.datasets.imdb / .reuters   drop-in Keras dataset loaders
"""

import contextlib

__version__ = "0.1.0"

from ._convert import convert
from ._exceptions import (
    DownloadError,
    FormatError,
    HashMismatchError,
    LimitError,
    SafenpzError,
    UnsafeFileError,
    UnstorableError,
    Where,
)
from ._limits import Limits
from ._npy import load
from ._npzfile import NpzFile
from ._pickle._report import GlobalRef, PickleReport, Problem
from ._pickle._scanner import scan_pickle
from ._ragged import RaggedArray
from ._save import save
from ._scan import FileReport, MemberReport, scan_bytes, scan_path
from ._typing import load_npy, load_npz

__all__ = [
    "DownloadError",
    "FileReport",
    "FormatError",
    "GlobalRef",
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
]

for _name in __all__:
    _obj = globals()[_name]
    if hasattr(_obj, "__module__"):
        with contextlib.suppress(AttributeError, TypeError):
            _obj.__module__ = "safenpz"
del _name, _obj, contextlib
