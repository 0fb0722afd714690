"""Child process of the bounds harness (``test_bounds.py``): runs a batch of
attacks under an address-space cap and reports one JSON line per attack.

Usage: ``python bounds_child.py WORKDIR AS_BYTES SECONDS INDEX...``
"""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any


class _Timeout(BaseException):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout


def _run(action: str, data: bytes, work: Path) -> None:
    from safenpz import FormatError, NpzFile, UnsafeFileError, convert, load, scan_path
    from safenpz._save import save_arrays  # any member name, even "compress"

    if action in ("load", "save"):
        obj = load(data)
        if isinstance(obj, NpzFile):
            with obj:
                layout = obj._layout
                keys = (
                    obj.raw_names if layout is not None and layout._plain else obj.files
                )
                columns = {key: obj[key] for key in keys}
        else:
            columns = {"x": obj}
        if action == "save":
            save_arrays(io.BytesIO(), columns)
        return
    path = work / "input.bin"
    path.write_bytes(data)
    if action == "convert":
        convert(path, work / "output.npz")
    elif action == "convert-parquet":
        convert(path, f"{work / f'parquet-{time.time_ns()}'}{os.sep}")
    elif action == "load-path":
        load(path)
    elif action == "load-pipe":
        r, w = os.pipe()

        def feed() -> None:
            with os.fdopen(w, "wb") as fp:
                fp.write(data)

        t = threading.Thread(target=feed)
        t.start()
        with os.fdopen(r, "rb") as fp:
            load(fp)
        t.join()
    elif action == "scan":
        report = scan_path(path)
        errors = " ".join(m.error or "" for m in report.members)
        if report.verdict == "unsafe":
            raise UnsafeFileError(errors)
        if report.verdict == "invalid":
            raise FormatError(errors)
    else:  # pragma: no cover
        raise AssertionError(action)


def main() -> None:
    work = Path(sys.argv[1])
    cap = int(sys.argv[2])
    seconds = int(sys.argv[3])
    indices = [int(i) for i in sys.argv[4:]]
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    sys.setrecursionlimit(10_000)
    from attacks import ATTACKS
    from safenpz import SafenpzError

    signal.signal(signal.SIGALRM, _alarm)
    for index in indices:
        attack = ATTACKS[index]
        sentinel = work / f"sentinel-{index}"
        data = attack.build(str(sentinel))
        error: dict[str, Any] | None = None
        start = time.perf_counter()
        signal.alarm(seconds)
        try:
            _run(attack.action, data, work)
        except _Timeout:
            error = {"type": "Timeout", "safenpz": False, "message": ""}
        except BaseException as err:  # everything is reported, nothing escapes
            error = {
                "type": type(err).__name__,
                "safenpz": isinstance(err, SafenpzError),
                "message": str(err)[:5000],
            }
        finally:
            signal.alarm(0)
        elapsed = time.perf_counter() - start
        line = {
            "index": index,
            "seconds": elapsed,
            "error": error,
            "sentinel": sentinel.exists(),
            "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        }
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
