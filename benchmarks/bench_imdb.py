"""Benchmark: safenpz.datasets.imdb against Keras 3.15's imdb.load_data.

Run by hand (it is not a test)::

    KERAS_BACKEND=numpy python benchmarks/bench_imdb.py [--runs 3] [--workdir DIR]

It writes a full-size IMDb-shaped legacy file (25,000 + 25,000 reviews,
~11.6M word ids, lognormal review lengths with mean ~230, Zipf(1.2) ids
redrawn into 1..88,586, object arrays of Python int lists) in two layouts:

- ``numpy``: NumPy's own ``savez_compressed`` of the running NumPy;
- ``python2``: the same data in the exact style of Keras's hosted file
  (Python 2 NumPy, ``cPickle`` protocol 2: memo from 1, int dtype flags,
  ``GLOBAL``, ``SHORT_BINSTRING``, members ``x_test, x_train, y_train,
  y_test``), written by ``tests/legacy.py`` (which regenerates the real
  Keras Reuters file byte for byte).

For each layout it times, each run in a fresh Python process:

- ``keras``: Keras 3.15's ``imdb.load_data(num_words=10000)`` (its
  ``get_file`` pointed at the generated file);
- ``first``: ``safenpz.datasets.imdb.load_data(path, num_words=10000)`` with an
  empty cache (hashes and decodes the file, writes the converted copy);
- ``cached-lists``: the same call once the converted copy exists;
- ``cached-ragged``: the same with ``output="ragged"``;
- ``np.load`` / ``safenpz-ragged``: reading all four members with
  ``np.load(path, allow_pickle=True)`` against ``safenpz.load(path,
  ragged=True)`` (no cache involved).

Times are of the ``load_data`` call alone (imports excluded, reported
separately); peak RSS is ``getrusage(RUSAGE_SELF).ru_maxrss`` of the child,
read right after the call. Each child also digests its result afterwards, so
the script checks that every variant returned the same data as Keras.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from safenpz._demo import imdb_rows, make_imdb_like

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from legacy import IMDB_MEMBERS, PY2, npz_bytes

TARGETS = {"first": 3.0, "cached-lists": 8.0, "cached-ragged": 30.0}
RSS_TARGET = 4.0  # Keras's peak RSS / cached-ragged peak RSS
LOAD_TARGET = 1.0  # np.load time / safenpz.load(ragged=True) time
LAYOUTS = ("numpy", "python2")

# ---------------------------------------------------------------------------
# the data


def make_file(path: Path, rows: int, layout: str = "numpy", seed: int = 0) -> int:
    """Write the IMDb-shaped legacy file; return the number of ids."""
    if layout == "numpy":
        make_imdb_like(path, n_train=rows, n_test=rows, seed=seed)
    else:  # the same data as make_imdb_like, in Keras's Python 2 style
        rng = np.random.default_rng(seed)
        data = {"x_train": imdb_rows(rng, rows), "x_test": imdb_rows(rng, rows)}
        data["y_train"] = rng.integers(0, 2, rows).astype(np.int64)
        data["y_test"] = rng.integers(0, 2, rows).astype(np.int64)
        members = [(name, data[name]) for name in IMDB_MEMBERS]
        path.write_bytes(npz_bytes(members, PY2))
    with np.load(path, allow_pickle=True) as f:  # our own file, just written
        return sum(len(r) for key in ("x_train", "x_test") for r in f[key])


# ---------------------------------------------------------------------------
# one measurement, in a fresh process

_CHILD = r"""
import hashlib, json, os, resource, sys, time
case, path = sys.argv[1], sys.argv[2]

def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

t0 = time.perf_counter()
import numpy as np
if case in ("np.load", "safenpz-ragged"):
    if case == "np.load":
        def call():
            with np.load(path, allow_pickle=True) as f:
                out = {k: f[k] for k in f.files}
            return (out["x_train"], out["y_train"]), (out["x_test"], out["y_test"])
    else:
        import safenpz
        def call():
            with safenpz.load(path, ragged=True) as f:
                out = {k: f[k] for k in f.files}
            return (out["x_train"], out["y_train"]), (out["x_test"], out["y_test"])
elif case == "keras":
    import keras.src.datasets.imdb as imdb
    imdb.get_file = lambda *args, **kwargs: path
    call = lambda: imdb.load_data(num_words=10000)
else:
    from safenpz.datasets import imdb
    output = "ragged" if case == "cached-ragged" else "lists"
    call = lambda: imdb.load_data(path, num_words=10000, output=output)
import_seconds = time.perf_counter() - t0
before = rss_mb()
t0 = time.perf_counter()
(x_train, y_train), (x_test, y_test) = call()
seconds = time.perf_counter() - t0
peak = rss_mb()

digest = hashlib.sha256()
for x, y in ((x_train, y_train), (x_test, y_test)):
    if hasattr(x, "offsets"):
        values, offsets = x.values.astype(np.int64), x.offsets
    else:
        lengths = np.fromiter(map(len, x), dtype=np.int64, count=len(x))
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        values = np.fromiter((w for row in x for w in row), dtype=np.int64,
                             count=int(offsets[-1]))
    for arr in (values, offsets, np.asarray(y, dtype=np.int64)):
        digest.update(np.ascontiguousarray(arr).tobytes())
print(json.dumps({"seconds": seconds, "import_seconds": import_seconds,
                  "rss_before_mb": before, "peak_rss_mb": peak,
                  "digest": digest.hexdigest()}))
"""


def run_child(case: str, path: Path, env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, case, str(path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"{case} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------
# the run


def _env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["KERAS_BACKEND"] = env.get("KERAS_BACKEND", "numpy")
    env["SAFENPZ_CACHE_DIR"] = str(cache)
    env["SAFENPZ_OFFLINE"] = "1"
    return env


def measure(path: Path, work: Path, runs: int) -> dict[str, list[dict[str, Any]]]:
    cases = ("keras", *TARGETS, "np.load", "safenpz-ragged")
    results: dict[str, list[dict[str, Any]]] = {c: [] for c in cases}
    warm = work / "cache-warm"
    shutil.rmtree(warm, ignore_errors=True)
    run_child("first", path, _env(warm))  # builds the converted copy once
    for i in range(runs):
        # Interleave the cases so that machine noise hits them alike.
        results["keras"].append(run_child("keras", path, _env(work / "unused")))
        cold = work / f"cache-cold-{i}"
        shutil.rmtree(cold, ignore_errors=True)
        results["first"].append(run_child("first", path, _env(cold)))
        shutil.rmtree(cold, ignore_errors=True)
        for case in ("cached-lists", "cached-ragged"):
            results[case].append(run_child(case, path, _env(warm)))
        for case in ("np.load", "safenpz-ragged"):
            results[case].append(run_child(case, path, _env(work / "unused")))
        print(f"  run {i + 1}/{runs} done", file=sys.stderr)
    return results


def report(results: dict[str, list[dict[str, Any]]], runs: int, layout: str) -> bool:
    def med(case: str, key: str) -> float:
        return statistics.median(r[key] for r in results[case])

    keras_s = med("keras", "seconds")
    keras_rss = med("keras", "peak_rss_mb")
    digests = {r["digest"] for c in ("keras", *TARGETS) for r in results[c]}
    print()
    print(
        f"IMDb-shaped file, {layout} layout, num_words=10000, "
        f"median of {runs} fresh processes"
    )
    header = (
        f"{'variant':<15} {'seconds':>8} {'(min-max)':>13} {'import s':>9} "
        f"{'peak RSS MB':>12} {'load +MB':>9} {'speed-up':>9} {'target':>7}  ok"
    )
    print(header)
    print("-" * len(header))
    all_ok = True
    for case in ("keras", *TARGETS):
        rs = results[case]
        secs = [r["seconds"] for r in rs]
        s = med(case, "seconds")
        rss = med(case, "peak_rss_mb")
        delta = statistics.median(r["peak_rss_mb"] - r["rss_before_mb"] for r in rs)
        ratio = keras_s / s
        target = TARGETS.get(case)
        ok = "" if target is None else ("yes" if ratio >= target else "NO")
        all_ok &= ok != "NO"
        print(
            f"{case:<15} {s:8.3f} {min(secs):6.3f}-{max(secs):<6.3f} "
            f"{med(case, 'import_seconds'):9.2f} {rss:12.0f} {delta:9.0f} "
            f"{ratio:8.1f}x {'' if target is None else f'>={target:g}x':>7}  {ok}"
        )
    rss_ratio = keras_rss / med("cached-ragged", "peak_rss_mb")
    rss_ok = rss_ratio >= RSS_TARGET
    all_ok &= rss_ok
    print(
        f"\npeak RSS, Keras / cached-ragged: {rss_ratio:.1f}x "
        f"(target >= {RSS_TARGET:g}x): {'yes' if rss_ok else 'NO'}"
    )
    same = len(digests) == 1
    all_ok &= same
    print(f"every variant returned the same data as Keras: {'yes' if same else 'NO'}")
    np_s, rag_s = med("np.load", "seconds"), med("safenpz-ragged", "seconds")
    load_ok = np_s / rag_s >= LOAD_TARGET
    all_ok &= load_ok
    print(
        f"all members: np.load(allow_pickle=True) {np_s:.3f} s, "
        f"safenpz.load(ragged=True) {rag_s:.3f} s: {np_s / rag_s:.2f}x "
        f"(target >= {LOAD_TARGET:g}x): {'yes' if load_ok else 'NO'}"
    )
    one = len({r["digest"] for c in ("np.load", "safenpz-ragged") for r in results[c]})
    all_ok &= one == 1
    print(f"safenpz.load returned np.load's data: {'yes' if one == 1 else 'NO'}")
    return all_ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per variant")
    parser.add_argument("--rows", type=int, default=25_000, help="reviews per split")
    parser.add_argument("--workdir", type=Path, default=None, help="keep files here")
    parser.add_argument(
        "--layout", choices=[*LAYOUTS, "both"], default="both", help="file layout"
    )
    parser.add_argument("--generate", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generate is not None:
        total = make_file(args.generate, args.rows, args.layout)
        print(f"{total:,} ids", file=sys.stderr)
        return 0
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="safenpz-bench-")
        work = Path(tmp.name)
    else:
        work = args.workdir
        work.mkdir(parents=True, exist_ok=True)
    all_ok = True
    try:
        for layout in LAYOUTS if args.layout == "both" else (args.layout,):
            lwork = work / layout
            lwork.mkdir(exist_ok=True)
            path = lwork / "imdb.npz"
            if not path.exists():
                # In a child process: a child inherits its parent's peak RSS on
                # Linux, so this process must never hold the generated data.
                t0 = time.perf_counter()
                subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--generate",
                        str(path),
                        "--rows",
                        str(args.rows),
                        "--layout",
                        layout,
                    ],
                    check=True,
                )
                print(
                    f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) "
                    f"in {time.perf_counter() - t0:.1f} s",
                    file=sys.stderr,
                )
            results = measure(path, lwork, args.runs)
            all_ok &= report(results, args.runs, layout)
        return 0 if all_ok else 1
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
