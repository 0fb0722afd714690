"""The ``safenpz`` command line.

::

    safenpz scan PATH...          static check, never decodes (exit 0/1/3, see _scan)
    safenpz info PATH             members, shapes, dtypes, ragged length statistics
    safenpz convert SRC DST       legacy pickled file -> pickle-free .npz or Parquet
    safenpz fetch imdb|reuters    download (hash-checked) and cache a Keras dataset
    safenpz demo                  offline end-to-end demo on a generated dataset

Expected failures print one line ``Error: <Type>: <message>`` to stderr and
exit 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from ._exceptions import SafenpzError
from ._npy import NpzFile, load
from ._preview import escape
from ._ragged import RaggedArray
from ._scan import exit_code, iter_targets, scan_path

__all__ = ["main"]

# --------------------------------------------------------------------- scan


def scan_file(path: Path) -> dict[str, Any]:
    """Statically scan one file; never decodes anything (see safenpz._scan)."""
    return scan_path(path).as_dict()


def _print_scan(res: dict[str, Any]) -> None:
    print(f"{res['verdict'].upper():9} {escape(res['path'])}")
    for m in res["members"]:
        line = f"    {escape(m['member'])}: {m['verdict']}"
        if "dtype" in m:
            line += f" ({escape(m['dtype'])}, shape {tuple(m['shape'])})"
        print(line)
        for g in m.get("globals", []):
            mark = "ok " if g["allowed"] else "BAD"
            name = escape(f"{g['module']}.{g['name']}", limit=200)
            print(f"        {mark} {g['opcode']} {name} @ byte {g['offset']}")
        for p in m.get("problems", []):
            print(
                f"        {p['kind']}: {escape(p['message'], limit=500)} "
                f"({p['opcode']} @ byte {p['offset']})"
            )
        if "error" in m:
            print(f"        {escape(m['error'], limit=1000)}")


def _cmd_scan(args: argparse.Namespace) -> int:
    results: list[dict[str, Any]] = []
    for path, scanned in iter_targets(args.paths):
        if scanned:
            results.append(scan_file(path))
        else:
            results.append({"path": str(path), "verdict": "skipped"})
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for res in results:
            if res["verdict"] == "skipped":
                print(f"SKIPPED   {escape(res['path'])} (not NumPy or pickle data)")
            else:
                _print_scan(res)
        if len(results) > 1 or any(Path(p).is_dir() for p in args.paths):
            counts = dict.fromkeys(
                ("safe", "loadable", "unsafe", "invalid", "skipped"), 0
            )
            for res in results:
                counts[res["verdict"]] += 1
            print(
                f"scanned {len(results) - counts['skipped']} file(s): "
                + ", ".join(f"{n} {v}" for v, n in counts.items())
            )
    return exit_code(r["verdict"] for r in results)


# --------------------------------------------------------------------- info


def _describe(name: str, value: Any) -> str:
    if isinstance(value, RaggedArray):
        lengths = value.lengths()
        stats = ""
        if len(value):
            stats = (
                f", lengths min {lengths.min()} / median {int(np.median(lengths))} "
                f"/ max {lengths.max()}"
            )
        if value.values.size:
            stats += f", values {value.values.min()}..{value.values.max()}"
        return (
            f"{name}: ragged, {len(value)} rows, {value.values.size} values "
            f"({value.values.dtype}){stats}"
        )
    if isinstance(value, np.ndarray):
        return f"{name}: array, shape {value.shape}, dtype {value.dtype}"
    return f"{name}: {type(value).__name__}"


def _cmd_info(args: argparse.Namespace) -> int:
    obj = load(args.path, ragged=True)
    if isinstance(obj, NpzFile):
        with obj:
            print(f"{args.path}: .npz with {len(obj.files)} arrays")
            for name in obj.files:
                print("  " + _describe(name, obj[name]))
    else:
        print(_describe(Path(args.path).name, obj))
    return 0


# ------------------------------------------------------------------ convert


def _cmd_convert(args: argparse.Namespace) -> int:
    from ._convert import convert

    written = convert(
        args.src, args.dst, format=args.format, compress=not args.no_compress
    )
    for path in written:
        print(f"wrote {path}")
    return 0


# -------------------------------------------------------------------- fetch


def _cmd_fetch(args: argparse.Namespace) -> int:
    from .datasets import imdb, reuters

    module = {"imdb": imdb, "reuters": reuters}[args.dataset]
    data = module.load_data(output="ragged")
    (x_train, _), (x_test, _) = data
    print(f"{args.dataset}: {len(x_train)} train / {len(x_test)} test rows, cached")
    return 0


# --------------------------------------------------------------------- demo


def _cmd_demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return run_demo(rows=args.rows, workdir=args.dir)


# --------------------------------------------------------------------- main


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="safenpz",
        description="Load object-array .npy/.npz files without running code from them.",
    )
    parser.add_argument("--version", action="version", version=f"safenpz {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("scan", help="statically check files (never decodes them)")
    p.add_argument(
        "paths", nargs="+", help="files or directories (searched recursively)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_scan)

    p = sub.add_parser("info", help="members, shapes, dtypes and ragged statistics")
    p.add_argument("path")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("convert", help="convert to a pickle-free .npz or Parquet")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--format", choices=["npz", "parquet"], default=None)
    p.add_argument(
        "--no-compress", action="store_true", help="store .npz members uncompressed"
    )
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("fetch", help="download and cache a Keras dataset")
    p.add_argument("dataset", choices=["imdb", "reuters"])
    p.set_defaults(func=_cmd_fetch)

    p = sub.add_parser("demo", help="offline end-to-end demo on a generated dataset")
    p.add_argument("--rows", type=int, default=25_000, help="reviews per split")
    p.add_argument(
        "--dir", default=None, help="work directory (default: a temporary one)"
    )
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except SafenpzError as err:
        print(f"Error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. `safenpz scan --json ... | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0
    except (OSError, ValueError, TypeError, ImportError) as err:
        print(f"Error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted", file=sys.stderr)
        return 130
    return code
