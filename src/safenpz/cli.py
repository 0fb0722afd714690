"""The ``safenpz`` command line.

::

    safenpz scan PATH...          static check, never decodes (exit 1 if refused)
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
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from ._exceptions import SafenpzError
from ._limits import DEFAULT_LIMITS
from ._npy import MAGIC, NpzFile, load, parse_header
from ._pickle_scan import scan_pickle
from ._ragged import RaggedArray

__all__ = ["main"]

_SUFFIXES = (".npy", ".npz", ".pkl", ".pickle")


# --------------------------------------------------------------------- scan


def _iter_files(paths: Sequence[str]) -> Iterator[Path]:
    for p in map(Path, paths):
        if p.is_dir():
            yield from sorted(
                f for f in p.rglob("*") if f.is_file() and f.suffix in _SUFFIXES
            )
        else:
            yield p


def _scan_npy_bytes(data: bytes, member: str) -> dict[str, Any]:
    out: dict[str, Any] = {"member": member}
    try:
        header = parse_header(data, member=member)
    except SafenpzError as err:
        out.update(verdict="invalid", error=str(err))
        return out
    out.update(dtype=str(header.dtype), shape=list(header.shape))
    if not header.dtype.hasobject:
        out.update(verdict="safe", pickle=False)
        return out
    return {**out, **_scan_pickle_bytes(data[header.data_offset :], member)}


def _scan_pickle_bytes(data: bytes, member: str) -> dict[str, Any]:
    try:
        report = scan_pickle(data, member=member, strict=False)
    except SafenpzError as err:  # pragma: no cover - strict=False collects
        return {"verdict": "invalid", "error": str(err)}
    kinds = {p.kind for p in report.problems}
    verdict = "unsafe" if "unsafe" in kinds else "invalid" if kinds else "loadable"
    return {
        "pickle": True,
        "protocol": report.protocol,
        "verdict": verdict,
        "globals": [
            {
                "module": g.module,
                "name": g.name,
                "opcode": g.opcode,
                "offset": g.offset,
                "allowed": g.allowed,
            }
            for g in report.globals
        ],
        "opcodes": dict(report.opcodes),
        "problems": [
            {
                "kind": p.kind,
                "opcode": p.opcode,
                "offset": p.offset,
                "message": p.message,
            }
            for p in report.problems
        ],
    }


def scan_file(path: Path) -> dict[str, Any]:
    """Statically scan one file; never decodes anything."""
    result: dict[str, Any] = {"path": str(path), "members": []}
    try:
        with open(path, "rb") as fp:
            head = fp.read(6)
            fp.seek(0)
            if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
                with NpzFile(
                    fp,
                    name=str(path),
                    own_file=False,
                    limits=DEFAULT_LIMITS,
                    ragged=False,
                    encoding="latin1",
                ) as npz:
                    for key in npz.member_names:
                        data = bytes(npz.read_member_bytes(key))
                        result["members"].append(_scan_npy_bytes(data, key))
            elif head == MAGIC:
                data = fp.read(DEFAULT_LIMITS.max_member_bytes + 1)
                result["members"].append(_scan_npy_bytes(data, path.name))
            else:
                data = fp.read(DEFAULT_LIMITS.max_member_bytes + 1)
                entry = {"member": path.name, **_scan_pickle_bytes(data, path.name)}
                result["members"].append(entry)
    except (SafenpzError, zipfile.BadZipFile) as err:
        result["members"].append(
            {"member": "*", "verdict": "invalid", "error": str(err)}
        )
    except OSError as err:
        result["members"].append(
            {
                "member": "*",
                "verdict": "invalid",
                "error": f"{type(err).__name__}: {err}",
            }
        )
    order = ["safe", "loadable", "invalid", "unsafe"]
    verdicts = [m["verdict"] for m in result["members"]] or ["safe"]
    result["verdict"] = max(verdicts, key=order.index)
    return result


def _cmd_scan(args: argparse.Namespace) -> int:
    results = [scan_file(p) for p in _iter_files(args.paths)]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for res in results:
            print(f"{res['verdict'].upper():9} {res['path']}")
            for m in res["members"]:
                line = f"    {m['member']}: {m['verdict']}"
                if "dtype" in m:
                    line += f" ({m['dtype']}, shape {tuple(m['shape'])})"
                print(line)
                for g in m.get("globals", []):
                    mark = "ok " if g["allowed"] else "BAD"
                    print(
                        f"        {mark} {g['opcode']} {g['module']}.{g['name']} "
                        f"@ byte {g['offset']}"
                    )
                for p in m.get("problems", []):
                    print(
                        f"        {p['kind']}: {p['message']} "
                        f"({p['opcode']} @ byte {p['offset']})"
                    )
                if "error" in m:
                    print(f"        {m['error']}")
    return 1 if any(r["verdict"] in ("unsafe", "invalid") for r in results) else 0


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
