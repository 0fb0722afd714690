"""General-path benchmark: safenpz.load against np.load(allow_pickle=True).

Run by hand (it is not a test)::

    python benchmarks/bench_general.py [--runs 5] [--quick] [--hostile-mib 4096]

Part 1 writes object-array files of the shapes the int-list fast path does not
cover (the shapes of issue 9) and times, each run in a fresh Python process,
``np.load(path, allow_pickle=True)`` (plus ``.item()``/``[...]`` access, as
users do) against ``safenpz.load(path)`` on the same file, in the same run.
Times are of the load call alone (imports excluded); the table shows medians
and the ratio safenpz / NumPy. Each child digests its result
(``pickle.dumps`` of it, SHA-256), so the script also checks that both return
the same data.

=============  ===============================================================
strings        1M short strings, ``np.save`` (pickle protocol 4 on NumPy 2)
dicts          100k small dicts ``{"id": i, "name": str, "score": float}``
proto0         100k rows of ``[int, str, float]`` lists, pickle protocol 0 (a
               Python 2 era file: ``.npy`` header + ``pickle.dump(protocol=0)``)
proto2-text    the same rows as ``proto0`` at protocol 2
history        a Keras ``History.history``-like dict of 4 lists of 1,250
               ``np.float64`` (5,000 NumPy scalars), ``np.save`` of the dict
vocab          a vocabulary dict of 100k words -> int, ``np.save`` of the dict
weights        a weights dict of 24 float32 arrays (~6 MB), ``np.save`` of it
=============  ===============================================================

They are followed by two numeric files, which must stay at or below
``np.load`` (``numeric``: a 40 MB float32 ``.npy``; ``numeric-npz``: an
``np.savez`` of four arrays, every member read), and by the real object files
of ``../shared/realdata`` that ``np.load`` reads (``--realdata DIR``; skipped
when the folder is absent): small files, where a load's fixed cost shows.
Both tools load with ``encoding="latin1"`` (the Python 2 files need it). The
summary gives the median and worst ratio of the generated object files (the
issue's targets) and, separately, of the real files and the numeric files.

Part 2 times ``safenpz.scan_pickle`` (in this process, best of ``--runs``) in
MB/s on an IMDb-shaped int-list pickle and on the pickles of the files above,
then the loader's compiled pre-check on the same streams
(``_prescan.proven``: the loader skips the scan of a stream it proves, and
scans the others), and on a large hostile member made of empty containers
(``EMPTY_LIST POP`` repeated; ``--hostile-mib`` MiB, default 256; the issue's
4 GiB case is ``--hostile-mib 4096``), in a fresh process: time, peak RSS and
outcome (refused at ``max_items`` containers, or scanned).
"""

from __future__ import annotations

import argparse
import io
import json
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import safenpz
from safenpz._demo import imdb_rows
from safenpz._limits import DEFAULT_LIMITS
from safenpz._pickle._prescan import AVAILABLE, proven

# ---------------------------------------------------------------------------
# the files


def _object_array(items: list[Any]) -> np.ndarray:
    arr = np.empty(len(items), dtype=object)
    arr[:] = items
    return arr


def _save_with_protocol(path: Path, arr: np.ndarray, protocol: int) -> None:
    """A ``.npy`` file whose pickle has the given protocol (np.save: 3 or 4)."""
    with path.open("wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "|O", "fortran_order": False, "shape": arr.shape}
        )
        pickle.dump(arr, f, protocol=protocol)


def make_files(workdir: Path, scale: float) -> dict[str, Path]:
    """Write every benchmark file into `workdir`; return name -> path."""
    rng = np.random.default_rng(0)
    n = max(10, int(1_000_000 * scale))
    m = max(10, int(100_000 * scale))
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = [
        "".join(letters[rng.integers(0, 26, size=int(k))])
        for k in rng.integers(3, 12, size=max(n, m))
    ]
    out: dict[str, Path] = {}

    out["strings"] = workdir / "strings.npy"
    np.save(out["strings"], _object_array(words[:n]), allow_pickle=True)

    dicts = [{"id": i, "name": words[i], "score": float(i) / 7} for i in range(m)]
    out["dicts"] = workdir / "dicts.npy"
    np.save(out["dicts"], _object_array(dicts), allow_pickle=True)

    rows = [[i, words[i], i / 3] for i in range(m)]
    out["proto0"] = workdir / "proto0.npy"
    _save_with_protocol(out["proto0"], _object_array(rows), 0)
    out["proto2-text"] = workdir / "proto2.npy"
    _save_with_protocol(out["proto2-text"], _object_array(rows), 2)

    epochs = max(10, int(1_250 * min(1.0, scale * 10)))
    history = {
        key: [np.float64(v) for v in rng.random(epochs)]
        for key in ("loss", "accuracy", "val_loss", "val_accuracy")
    }
    out["history"] = workdir / "history.npy"
    np.save(out["history"], history, allow_pickle=True)  # type: ignore[arg-type]

    vocab = {w: i for i, w in enumerate(dict.fromkeys(words[:m]))}
    out["vocab"] = workdir / "vocab.npy"
    np.save(out["vocab"], vocab, allow_pickle=True)  # type: ignore[arg-type]

    weights = {}
    for i in range(12):
        weights[f"layer{i}/kernel"] = rng.random((256, 256), dtype=np.float32)
        weights[f"layer{i}/bias"] = rng.random(256, dtype=np.float32)
    out["weights"] = workdir / "weights.npy"
    np.save(out["weights"], weights, allow_pickle=True)  # type: ignore[arg-type]

    out["numeric"] = workdir / "numeric.npy"
    np.save(out["numeric"], rng.random((int(4000 * scale) + 1, 2500), np.float32))
    out["numeric-npz"] = workdir / "numeric.npz"
    np.savez(
        out["numeric-npz"],
        x_train=rng.random((int(2000 * scale) + 1, 1000), np.float32),
        y_train=rng.integers(0, 10, int(2000 * scale) + 1),
        x_test=rng.random((int(500 * scale) + 1, 1000), np.float32),
        y_test=rng.integers(0, 10, int(500 * scale) + 1),
    )
    return out


NUMERIC = ("numeric", "numeric-npz")
#: The real object files ``np.load(allow_pickle=True)`` reads, under --realdata.
REAL_FILES = (
    "keras/reuters.npz",
    "davidsandberg__facenet/det1.npy",
    "TropComplique__mtcnn-pytorch/pnet.npy",
    "joblib__joblib/joblib_0.9.2_pickle_py27_np16.pkl_03.npy",
    "soubhiksanyal__RingNet/flame_static_embedding.pkl",
)


def real_files(folder: Path) -> dict[str, Path]:
    """The files of :data:`REAL_FILES` present under `folder`, by short name."""
    found = {}
    for rel in REAL_FILES:
        path = folder / rel
        if path.is_file():
            found["real:" + path.name[:20]] = path
    return found


# ---------------------------------------------------------------------------
# one load, in a fresh process

_CHILD = r"""
import hashlib, json, pickle, sys, time
tool, path = sys.argv[1], sys.argv[2]
import numpy as np
import safenpz
if tool == "numpy":
    call = lambda: np.load(path, allow_pickle=True, encoding="latin1")
else:
    call = lambda: safenpz.load(path, encoding="latin1")
t0 = time.perf_counter()
obj = call()
if hasattr(obj, "files"):  # an .npz: every member is read, by both tools
    with obj:
        obj = {k: obj[k] for k in obj.files}
seconds = time.perf_counter() - t0
if getattr(obj, "shape", None) == ():
    obj = obj.item()
digest = hashlib.sha256(pickle.dumps(obj, protocol=4)).hexdigest()[:16]
print(json.dumps({"seconds": seconds, "digest": digest}))
"""


def child(tool: str, path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, tool, str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def bench_loads(files: dict[str, Path], runs: int) -> list[dict[str, Any]]:
    rows = []
    for name, path in files.items():
        times: dict[str, list[float]] = {"numpy": [], "safenpz": []}
        digests: dict[str, set[str]] = {"numpy": set(), "safenpz": set()}
        for _ in range(runs):
            for tool in ("numpy", "safenpz"):  # interleaved: same machine load
                got = child(tool, path)
                times[tool].append(got["seconds"])
                digests[tool].add(got["digest"])
        np_t = statistics.median(times["numpy"])
        sz_t = statistics.median(times["safenpz"])
        rows.append(
            {
                "file": name,
                "mb": path.stat().st_size / 1e6,
                "numpy_s": np_t,
                "safenpz_s": sz_t,
                "ratio": sz_t / np_t,
                "same": digests["numpy"] == digests["safenpz"]
                and len(digests["numpy"]) == 1,
            }
        )
        r = rows[-1]
        print(
            f"{name:22s} {r['mb']:7.1f} MB  np.load {np_t:7.3f} s  "
            f"safenpz {sz_t:7.3f} s  ratio {r['ratio']:5.2f}x  "
            f"same data: {r['same']}",
            flush=True,
        )
    return rows


# ---------------------------------------------------------------------------
# scan_pickle throughput


def pickle_body(path: Path) -> bytes:
    with path.open("rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            np.lib.format.read_array_header_1_0(f)
        else:
            np.lib.format.read_array_header_2_0(f)
        return f.read()


def scan_rate(data: bytes, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        safenpz.scan_pickle(data)
        best = min(best, time.perf_counter() - t0)
    return len(data) / best / 1e6


def precheck_rate(data: bytes, runs: int) -> tuple[float, bool]:
    """The loader's compiled pre-check (:func:`safenpz._pickle._prescan.proven`):
    MB/s and whether it proved the stream (else the loader scans it)."""
    best, ok = float("inf"), False
    for _ in range(runs):
        t0 = time.perf_counter()
        ok = proven(data, DEFAULT_LIMITS, "latin1")
        best = min(best, time.perf_counter() - t0)
    return len(data) / best / 1e6, ok


def bench_scan(files: dict[str, Path], runs: int, scale: float) -> dict[str, float]:
    rng = np.random.default_rng(1)
    ints = imdb_rows(rng, max(100, int(25_000 * scale)))
    buf = io.BytesIO()
    pickle.dump(ints, buf, protocol=4)
    streams = {"int lists": buf.getvalue()}
    for name in ("strings", "dicts", "proto0", "vocab", "history", "weights"):
        streams[name] = pickle_body(files[name])
    rates = {}
    for name, data in streams.items():
        rates[name] = scan_rate(data, runs)
        print(f"scan_pickle {name:12s} {rates[name]:8.1f} MB/s", flush=True)
    if not AVAILABLE:
        print("pre-check: the C extension is not built (pure-Python install)")
        return rates
    for name, data in streams.items():
        rate, ok = precheck_rate(data, runs)
        verdict = "proven" if ok else "not proven: scanned"
        print(f"pre-check   {name:12s} {rate:8.1f} MB/s  {verdict}", flush=True)
    return rates


_HOSTILE_CHILD = r"""
import resource, sys, time
import safenpz
mib = int(sys.argv[1])
n = mib * 2**20
data = b"\x80\x04" + b"]0" * ((n - 4) // 2) + b"N."
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
try:
    safenpz.scan_pickle(data, member="hostile")
    outcome = "scanned"
except safenpz.SafenpzError as err:
    outcome = f"{type(err).__name__}: {str(err)[:80]}..."
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{seconds:.2f} s, peak RSS {peak:.0f} MiB (the stream itself: {mib} MiB, "
      f"before the scan: {base:.0f} MiB), {outcome}")
"""


def bench_hostile(mib: int) -> str:
    """Scan `mib` MiB of ``EMPTY_LIST POP`` in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", _HOSTILE_CHILD, str(mib)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(f"hostile {mib} MiB of EMPTY_LIST POP: {out}", flush=True)
    return out


def summarise(rows: list[dict[str, Any]]) -> None:
    """Print the median and worst ratio of each group of files."""
    groups = {
        "generated object files (targets: median <= 1.3x, none > 2x)": [
            r for r in rows if r["file"] not in NUMERIC and ":" not in r["file"]
        ],
        "real object files": [r for r in rows if ":" in r["file"]],
        "numeric files (target: <= 1x)": [r for r in rows if r["file"] in NUMERIC],
    }
    for title, group in groups.items():
        if group:
            ratios = [r["ratio"] for r in group]
            print(
                f"{title}: median {statistics.median(ratios):.2f}x, "
                f"worst {max(ratios):.2f}x"
            )
    if not all(r["same"] for r in rows):
        print("DIFFERENT DATA:", [r["file"] for r in rows if not r["same"]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1/10 sizes")
    parser.add_argument("--hostile-mib", type=int, default=256)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--skip-loads", action="store_true")
    parser.add_argument(
        "--realdata",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared" / "realdata",
    )
    args = parser.parse_args(argv)
    scale = 0.1 if args.quick else 1.0
    hostile = min(args.hostile_mib, 16) if args.quick else args.hostile_mib
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        files = make_files(Path(tmp), scale)
        if not args.skip_loads:
            rows = bench_loads({**files, **real_files(args.realdata)}, args.runs)
            summarise(rows)
        bench_scan(files, args.runs, scale)
    bench_hostile(hostile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
