"""Time ``_pickle._fastrows.decode_int_rows`` against pickle on an IMDb-like split.

The array is made here (no download): 25,000 rows of lognormal length (about
5.8 M ids in all, like one IMDb split) with Zipf-distributed ids up to 88,586,
so ``BININT1``/``BININT2``/``BININT`` opcodes are mixed as in the real file.
The same pickle bytes are decoded by

* ``pickle.loads``  -- the object array of Python lists (no conversion),
* ``np.load``       -- ``np.load(..., allow_pickle=True)`` of the ``.npy``,
* ``pickle+flat``   -- ``pickle.loads`` and then flattening to int64
  values/offsets (what a ragged result really costs that way),
* ``fastrows``      -- ``decode_int_rows`` (values + offsets directly),

best of ``--repeat`` runs each. Run: ``python benchmarks/fastrows_bench.py``.
"""

from __future__ import annotations

import argparse
import io
import pickle
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import safenpz
from safenpz._demo import imdb_rows, make_imdb_like
from safenpz._pickle._fastrows import decode_int_rows

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from legacy import PY2, Layout, dumps


def npy_bytes(arr: np.ndarray) -> tuple[bytes, bytes]:
    """(the whole .npy, the pickle stream after its header)."""
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    whole = buf.getvalue()
    buf.seek(0)
    version = np.lib.format.read_magic(buf)
    if version == (1, 0):
        np.lib.format.read_array_header_1_0(buf)
    else:
        np.lib.format.read_array_header_2_0(buf)
    return whole, whole[buf.tell() :]


def best_of(repeat: int, fn: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def flatten(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = arr.tolist()
    lengths = np.fromiter(map(len, rows), np.int64, len(rows))
    offsets = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = np.fromiter((x for row in rows for x in row), np.int64, int(offsets[-1]))
    return values, offsets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=25_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    arr = imdb_rows(np.random.default_rng(args.seed), args.rows)
    whole, p4 = npy_bytes(arr)
    variants = {
        "np.save (protocol 4)": p4,
        "protocol 2 (Python 3)": pickle.dumps(arr, protocol=2),
        "protocol 3 (NumPy 1.x)": pickle.dumps(arr, protocol=3),
        "protocol 1 (NumPy 1.x)": dumps(arr, Layout(3, 1, int_flags=True)),
        "Python 2 (Keras file)": dumps(arr, PY2),
    }
    print(f"{args.rows} rows, {sum(map(len, arr))} ids, best of {args.repeat}\n")
    head = f"{'stream':26} {'MB':>6} {'pickle.loads':>13} {'np.load':>9}"
    print(f"{head} {'pickle+flat':>12} {'fastrows':>9} {'speed-up':>9}")
    for name, data in variants.items():
        got = decode_int_rows(data)
        assert got is not None, name
        want_values, want_offsets = flatten(pickle.loads(data))
        assert np.array_equal(got.values, want_values)
        assert np.array_equal(got.offsets, want_offsets)
        t_pickle = best_of(args.repeat, lambda d=data: pickle.loads(d))
        if data is p4:
            t_npload = best_of(
                args.repeat,
                lambda: np.load(io.BytesIO(whole), allow_pickle=True),
            )
            npload = f"{t_npload:9.3f}"
        else:
            npload = f"{'-':>9}"
        t_flat = best_of(
            max(1, args.repeat // 2), lambda d=data: flatten(pickle.loads(d))
        )
        t_fast = best_of(args.repeat, lambda d=data: decode_int_rows(d))
        print(
            f"{name:26} {len(data) / 1e6:6.1f} {t_pickle:13.3f} {npload} "
            f"{t_flat:12.3f} {t_fast:9.3f} {t_pickle / t_fast:8.1f}x"
        )
    print("\n(seconds; speed-up = pickle.loads / fastrows)\n")
    end_to_end(args.rows, args.seed, args.repeat)


def end_to_end(rows: int, seed: int, repeat: int) -> None:
    """Whole-file loads of both x arrays of an IMDb-shaped .npz (inflate too)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = make_imdb_like(
            Path(tmp) / "imdb.npz", n_train=rows, n_test=rows, seed=seed
        )

        def numpy_load() -> None:
            with np.load(path, allow_pickle=True) as f:
                f["x_train"], f["x_test"]

        def safenpz_load(ragged: bool) -> None:
            with safenpz.load(path, ragged=ragged) as f:
                f["x_train"], f["x_test"]

        t_np = best_of(repeat, numpy_load)
        t_ragged = best_of(repeat, lambda: safenpz_load(True))
        t_lists = best_of(repeat, lambda: safenpz_load(False))
        print(f"whole .npz ({path.stat().st_size / 1e6:.1f} MB), x_train + x_test:")
        print(f"  np.load(allow_pickle=True)        {t_np:7.3f} s")
        print(
            f"  safenpz.load(ragged=True)         {t_ragged:7.3f} s "
            f"({t_np / t_ragged:.1f}x np.load's speed)"
        )
        print(
            f"  safenpz.load() object arrays      {t_lists:7.3f} s "
            f"({t_np / t_lists:.1f}x np.load's speed)"
        )


if __name__ == "__main__":
    main()
