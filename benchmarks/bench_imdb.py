"""Benchmark: safenpz.datasets.imdb against Keras 3.15's imdb.load_data.

Run by hand (it is not a test)::

    KERAS_BACKEND=numpy python benchmarks/bench_imdb.py [--runs 3] [--workdir DIR]

It writes a full-size IMDb-shaped legacy file with NumPy's own
``savez_compressed`` (25,000 + 25,000 reviews, ~11.6M word ids, lognormal
review lengths with mean ~230, Zipf(1.2) ids redrawn into 1..88,586, object
arrays of Python int lists, exactly Keras's layout), then times, each run in a
fresh Python process:

- ``keras``: Keras 3.15's ``imdb.load_data(num_words=10000)`` (its
  ``get_file`` pointed at the generated file);
- ``first``: ``safenpz.datasets.imdb.load_data(path, num_words=10000)`` with an
  empty cache (hashes and decodes the file, writes the converted copy);
- ``cached-lists``: the same call once the converted copy exists;
- ``cached-ragged``: the same with ``output="ragged"``.

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

from safenpz._demo import make_imdb_like

TARGETS = {"first": 2.0, "cached-lists": 5.0, "cached-ragged": 25.0}
RSS_TARGET = 4.0  # Keras's peak RSS / cached-ragged peak RSS

# ---------------------------------------------------------------------------
# the data


def make_file(path: Path, rows: int, seed: int = 0) -> int:
    """Write the IMDb-shaped legacy file; return the number of ids."""
    make_imdb_like(path, n_train=rows, n_test=rows, seed=seed)
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
if case == "keras":
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
    results: dict[str, list[dict[str, Any]]] = {c: [] for c in ("keras", *TARGETS)}
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
        print(f"  run {i + 1}/{runs} done", file=sys.stderr)
    return results


def report(results: dict[str, list[dict[str, Any]]], runs: int) -> bool:
    def med(case: str, key: str) -> float:
        return statistics.median(r[key] for r in results[case])

    keras_s = med("keras", "seconds")
    keras_rss = med("keras", "peak_rss_mb")
    digests = {r["digest"] for rs in results.values() for r in rs}
    print()
    print(f"IMDb-shaped file, num_words=10000, median of {runs} fresh processes")
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
    return all_ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per variant")
    parser.add_argument("--rows", type=int, default=25_000, help="reviews per split")
    parser.add_argument("--workdir", type=Path, default=None, help="keep files here")
    parser.add_argument("--generate", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generate is not None:
        total = make_file(args.generate, args.rows)
        print(f"{total:,} ids", file=sys.stderr)
        return 0
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="safenpz-bench-")
        work = Path(tmp.name)
    else:
        work = args.workdir
        work.mkdir(parents=True, exist_ok=True)
    try:
        path = work / "imdb.npz"
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
                ],
                check=True,
            )
            print(
                f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) "
                f"in {time.perf_counter() - t0:.1f} s",
                file=sys.stderr,
            )
        results = measure(path, work, args.runs)
        return 0 if report(results, args.runs) else 1
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
