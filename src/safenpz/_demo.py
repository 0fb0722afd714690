"""The offline demo (``safenpz demo``) and its synthetic Keras-format data.

:func:`make_imdb_like` writes an IMDb-shaped legacy ``.npz`` exactly the way
Keras's hosted file is laid out (object arrays of Python int lists, pickled by
NumPy's own ``savez_compressed``), so the demo, the benchmark and the tests
exercise the real format without downloading anything.
"""

from __future__ import annotations

import io
import os
import pickle
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["hostile_npy_bytes", "imdb_rows", "make_imdb_like", "run_demo"]

IMDB_VOCAB = 88_586


def imdb_rows(
    rng: np.random.Generator,
    n: int,
    *,
    vocab: int = IMDB_VOCAB,
    mean_len: float = 230.0,
    zipf_a: float = 1.2,
) -> np.ndarray:
    """A 1-D object array of `n` Python int lists shaped like IMDb reviews.

    Lengths are lognormal with mean `mean_len` (clipped to 5..2,500); ids are
    Zipf(`zipf_a`)-distributed, the tail redrawn into ``1..vocab`` (not
    clipped), so BININT1/BININT2/BININT opcodes mix as in the real file.
    """
    sigma = 0.7
    mu = np.log(mean_len) - sigma**2 / 2
    lengths = np.clip(np.rint(rng.lognormal(mu, sigma, n)), 5, 2_500).astype(np.int64)
    ids = rng.zipf(zipf_a, int(lengths.sum()))
    bad = ids > vocab
    while bad.any():
        ids[bad] = rng.zipf(zipf_a, int(bad.sum()))
        bad = ids > vocab
    bounds = np.concatenate([[0], np.cumsum(lengths)]).tolist()
    flat = ids.tolist()
    out = np.empty(n, dtype=object)
    for i in range(n):
        out[i] = flat[bounds[i] : bounds[i + 1]]
    return out


def make_imdb_like(
    path: str | os.PathLike[str],
    *,
    n_train: int = 25_000,
    n_test: int = 25_000,
    vocab: int = IMDB_VOCAB,
    mean_len: float = 230.0,
    seed: int = 0,
) -> Path:
    """Write an IMDb-shaped legacy ``.npz`` (pickled object arrays) with NumPy.

    Parameters
    ----------
    path : path
        Destination file.
    n_train, n_test : int
        Reviews per split (Keras: 25,000 each, ~11.6M ids in total).
    vocab : int
        Largest word id (Keras IMDb: 88,586).
    mean_len : float
        Mean review length.
    seed : int
        Seed of the generator.

    Returns
    -------
    Path
    """
    rng = np.random.default_rng(seed)
    x_train = imdb_rows(rng, n_train, vocab=vocab, mean_len=mean_len)
    x_test = imdb_rows(rng, n_test, vocab=vocab, mean_len=mean_len)
    y_train = rng.integers(0, 2, n_train).astype(np.int64)
    y_test = rng.integers(0, 2, n_test).astype(np.int64)
    path = Path(path)
    np.savez_compressed(
        path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test
    )
    return path


class _RunCommand:
    """What a hostile pickle asks for: ``os.system(cmd)`` on load."""

    def __init__(self, cmd: str) -> None:
        self.cmd = cmd

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (self.cmd,))


def hostile_npy_bytes(sentinel: str | os.PathLike[str]) -> bytes:
    """An object-array ``.npy`` whose pickle would run ``touch <sentinel>``.

    ``np.load(..., allow_pickle=True)`` on these bytes creates the file;
    safenpz refuses them.
    """
    payload = pickle.dumps(
        np.array([_RunCommand(f"touch {os.fspath(sentinel)}")], dtype=object),
        protocol=2,
    )
    buf = io.BytesIO()
    header = {"descr": "|O", "fortran_order": False, "shape": (1,)}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + payload


def run_demo(*, rows: int = 25_000, workdir: str | None = None) -> int:
    """Run the offline end-to-end demo; returns 0 on success."""
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="safenpz-demo-")
        workdir = tmp.name
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("SAFENPZ_CACHE_DIR", str(work / "cache"))
    os.environ["SAFENPZ_OFFLINE"] = "1"  # the demo never touches the network
    try:
        legacy = _write_legacy(work / "imdb.npz", rows)
        _numpy_refuses(legacy)
        x_train, y_train = _load_with_safenpz(legacy)
        clean = _save_clean(work / "imdb-clean.npz", x_train, y_train)
        sentinel = work / "PWNED"
        evil = _refuse_hostile(work / "evil.npy", sentinel)
        _scan(legacy, clean, evil)
        if sentinel.exists():
            print("   FAILED: the sentinel exists")
            return 1
        print("Demo finished: the tampered file ran nothing.")
        return 0
    finally:
        if tmp is not None:
            tmp.cleanup()


def _write_legacy(legacy: Path, rows: int) -> Path:
    print(
        f"1. Writing an IMDb-shaped legacy file with NumPy ({rows:,} reviews per split)"
    )
    t = time.perf_counter()
    make_imdb_like(legacy, n_train=rows, n_test=rows)
    print(
        f"   {legacy} ({legacy.stat().st_size / 1e6:.1f} MB) in "
        f"{time.perf_counter() - t:.1f} s"
    )
    return legacy


def _numpy_refuses(legacy: Path) -> None:
    print("2. Plain NumPy refuses it:")
    try:
        with np.load(legacy) as f:
            f["x_train"]
    except ValueError as err:
        print(f"   np.load -> ValueError: {err}")


def _load_with_safenpz(legacy: Path) -> tuple[Any, Any]:
    """Step 3: three timed loads, then the ragged training split."""
    from safenpz.datasets import imdb

    print("3. safenpz.datasets.imdb.load_data(path=..., num_words=10000):")
    runs: tuple[tuple[str, dict[str, Any]], ...] = (
        ("first load (decodes, writes a pickle-free cache)", {}),
        ("second load (pickle-free cache)", {}),
        ("second load, output='ragged'", {"output": "ragged"}),
    )
    for label, kwargs in runs:
        t = time.perf_counter()
        (x_train, y_train), (_x_test, _y_test) = imdb.load_data(
            path=str(legacy), num_words=10_000, **kwargs
        )
        dt = time.perf_counter() - t
        print(
            f"   {label}: {dt:.2f} s -> x_train {type(x_train).__name__} "
            f"of {len(x_train):,} rows, y_train {y_train.dtype}"
        )
    (x_train, y_train), _ = imdb.load_data(
        path=str(legacy), num_words=10_000, output="ragged"
    )
    padded = x_train.pad(maxlen=200)
    print(f"   padded to maxlen=200 for training: {padded.shape} {padded.dtype}")
    print(f"   first review starts {x_train[0][:8].tolist()}")
    return x_train, y_train


def _save_clean(clean: Path, x_train: Any, y_train: Any) -> Path:
    import safenpz

    safenpz.save(clean, x_train=x_train, y_train=y_train)
    with np.load(clean, allow_pickle=False) as f:
        members = f.files
    print(
        f"4. safenpz.save wrote {clean.name}; "
        "np.load(allow_pickle=False) opens it: "
        f"{members}"
    )
    return clean


def _refuse_hostile(evil: Path, sentinel: Path) -> Path:
    import safenpz

    evil.write_bytes(hostile_npy_bytes(sentinel))
    print("5. A tampered file whose pickle runs `touch PWNED`:")
    try:
        safenpz.load(evil)
    except safenpz.UnsafeFileError as err:
        print(f"   safenpz.load -> UnsafeFileError: {str(err)[:110]}...")
    print(f"   sentinel created: {sentinel.exists()}")
    return evil


def _scan(*paths: Path) -> None:
    from ._scan import scan_path

    print("6. safenpz scan (static, decodes nothing):")
    for path in paths:
        print(f"   {scan_path(path).verdict:9} {path.name}")
