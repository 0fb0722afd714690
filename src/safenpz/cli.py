"""The ``safenpz`` command line.

::

    safenpz scan PATH... [--json] static check, never decodes
    safenpz info PATH             members, shapes, dtypes, ragged length statistics
    safenpz convert SRC DST       legacy pickled file -> pickle-free .npz or Parquet
    safenpz fetch imdb|reuters    download (hash-checked) and cache a Keras dataset
    safenpz demo                  offline end-to-end demo on a generated dataset

Every subcommand's ``--help`` has a description and examples; the examples
are run by the test suite (``tests/test_cli.py``). Exit codes are
:data:`EXIT_CODES`. Expected failures print one line
``Error: <Type>: <message>`` to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from ._exceptions import SafenpzError
from ._npy import load
from ._npzfile import NpzFile
from ._preview import escape
from ._ragged import RaggedArray
from ._scan import exit_code, iter_targets, scan_path

__all__ = ["COMMANDS", "EXIT_CODES", "main"]

#: Exit code -> meaning, as printed by ``safenpz --help``.
EXIT_CODES: dict[int, str] = {
    0: "success: every scanned file is safe or loadable",
    1: "scan found an unsafe file, or the command failed (one 'Error:' line)",
    2: "usage error (bad arguments)",
    3: "scan found no unsafe file, but some file is invalid or unreadable",
}


class _Command:
    """One subcommand's help: summary, description and runnable examples."""

    def __init__(
        self, summary: str, description: str, examples: list[tuple[str, str]]
    ) -> None:
        self.summary = summary
        self.description = description
        self.examples = examples  # (command line, what it does)

    def epilog(self) -> str:
        width = max(len(cmd) for cmd, _ in self.examples)
        lines = [f"  {cmd:<{width}}  # {what}" for cmd, what in self.examples]
        return "examples:\n" + "\n".join(lines)


#: Subcommand -> help text. Example commands use only files an example
#: before it wrote, or ``demo``'s files, so the test suite can run them all.
COMMANDS: dict[str, _Command] = {
    "scan": _Command(
        "statically check files (never decodes them)",
        "Check .npy/.npz/pickle files without decoding them: which ones hold "
        "no pickle at all (safe), which ones safenpz can load (loadable: the "
        "pickle uses only allowed constructors), which ones would run code "
        "(unsafe), and which ones are damaged (invalid). Directories are "
        "searched recursively for *.npy, *.npz, *.pkl and *.pickle.",
        [
            ("safenpz scan demo/imdb.npz", "one file, with each member's verdict"),
            ("safenpz scan demo/", "every data file below a directory"),
            ("safenpz scan --json demo/", "machine-readable (schema in README)"),
        ],
    ),
    "info": _Command(
        "members, shapes, dtypes and ragged statistics",
        "Load a file safely and describe each array: shape and dtype, or for "
        "ragged rows (lists of ids) the row count and length statistics.",
        [("safenpz info demo/imdb.npz", "arrays of the demo's legacy file")],
    ),
    "convert": _Command(
        "convert to a pickle-free .npz or Parquet",
        "Read a legacy pickled file safely and write it pickle-free: a .npz "
        "that plain np.load(allow_pickle=False) opens, or Parquet (needs "
        "pyarrow: pip install 'safenpz[parquet]'). The format comes from "
        "DST's suffix (.npz; .parquet or .pq; a trailing / means Parquet "
        "splits in a directory) or from --format. Keras-style arrays "
        "x_train, y_train, x_test, y_test become DST/train.parquet and "
        "DST/test.parquet, each with the columns x and y.",
        [
            ("safenpz convert demo/imdb.npz demo/imdb-clean.npz", "pickle-free .npz"),
            ("safenpz convert demo/imdb.npz demo/imdb-parquet/", "Parquet splits"),
        ],
    ),
    "fetch": _Command(
        "download and cache a Keras dataset",
        "Download a Keras dataset from Keras's origin (or $SAFENPZ_DATASETS_URL), "
        "check it against the published sha256, decode it safely once and "
        "cache a pickle-free copy. Reuses a matching copy in Keras's cache. "
        "With SAFENPZ_OFFLINE=1 nothing is downloaded.",
        [
            ("safenpz fetch imdb", "IMDb reviews (17 MB download)"),
            ("safenpz fetch reuters", "Reuters newswires (2 MB download)"),
        ],
    ),
    "demo": _Command(
        "offline end-to-end demo on a generated dataset",
        "Write an IMDb-shaped legacy file with NumPy, show np.load refusing it, "
        "load it with safenpz (first and cached load, ragged), pad it, save a "
        "pickle-free copy and show a tampered file being refused without its "
        "payload running. Nothing is downloaded. Without options: 25,000 "
        "reviews per split (as IMDb) in a temporary directory.",
        [("safenpz demo --rows 2000 --dir demo", "small; keeps its files in demo/")],
    ),
}

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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        msg = f"not a whole number: {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if value < 1:
        msg = f"must be at least 1, got {value}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _exit_codes_text() -> str:
    return "exit codes:\n" + "\n".join(
        f"  {code}  {meaning}" for code, meaning in EXIT_CODES.items()
    )


def _add_command(sub: Any, name: str) -> argparse.ArgumentParser:
    cmd = COMMANDS[name]
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=cmd.summary,
        description=textwrap.fill(cmd.description, 79),
        epilog=cmd.epilog() + "\n\n" + _exit_codes_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="safenpz",
        description=textwrap.fill(
            "Load, check and convert object-array .npy/.npz files (Keras "
            "IMDb/Reuters and any legacy file) without ever running code from "
            "them. Run 'safenpz COMMAND --help' for a command's examples.",
            79,
        ),
        epilog="examples:\n"
        + "\n".join(f"  {c.examples[0][0]}" for c in COMMANDS.values())
        + "\n\n"
        + _exit_codes_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"safenpz {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _add_command(sub, "scan")
    p.add_argument(
        "paths", nargs="+", help="files or directories (searched recursively)"
    )
    p.add_argument(
        "--json", action="store_true", help="machine-readable output (see README)"
    )
    p.set_defaults(func=_cmd_scan)

    p = _add_command(sub, "info")
    p.add_argument("path", help="a .npy, .npz or pickle file")
    p.set_defaults(func=_cmd_info)

    p = _add_command(sub, "convert")
    p.add_argument("src", help="the legacy .npy/.npz/pickle file")
    p.add_argument("dst", help="output: *.npz, *.parquet, *.pq, or DIR/ for splits")
    p.add_argument(
        "--format",
        choices=["npz", "parquet"],
        default=None,
        help="output format (default: from DST's suffix)",
    )
    p.add_argument(
        "--no-compress", action="store_true", help="store .npz members uncompressed"
    )
    p.set_defaults(func=_cmd_convert, check=_check_convert)

    p = _add_command(sub, "fetch")
    p.add_argument("dataset", choices=["imdb", "reuters"])
    p.set_defaults(func=_cmd_fetch)

    p = _add_command(sub, "demo")
    p.add_argument(
        "--rows", type=_positive_int, default=25_000, help="reviews per split (>= 1)"
    )
    p.add_argument(
        "--dir", default=None, help="work directory (default: a temporary one)"
    )
    p.set_defaults(func=_cmd_demo)
    return parser


def _check_convert(args: argparse.Namespace) -> str | None:
    from ._convert import output_format

    try:
        output_format(args.dst, args.format)
    except ValueError as err:
        return str(err)
    return None


def _error_line(err: BaseException) -> str:
    """The one ``Error:`` line, its text escaped: an error raised outside
    safenpz (an ``OSError``, a ``ValueError`` ...) may carry names a file
    chose, which must not bring control characters to the terminal."""
    return f"Error: {type(err).__name__}: {escape(str(err), limit=20_000)}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    check = getattr(args, "check", None)
    problem = check(args) if check is not None else None
    if problem is not None:
        parser.exit(2, f"{parser.prog} {args.command}: error: {problem}\n")
    try:
        code: int = args.func(args)
    except SafenpzError as err:
        print(_error_line(err), file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. `safenpz scan --json ... | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0
    except (OSError, ValueError, TypeError, ImportError) as err:
        print(_error_line(err), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted", file=sys.stderr)
        return 130
    return code
