"""The command line, run in-process: ``main([...])`` + ``capsys``."""

from __future__ import annotations

import importlib
import io
import json
import os
import pickle
import re
import shlex
import sys
import threading
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pytest

import safenpz
from hostile import call, glob, hostile_npy_bytes, stream, ustr
from safenpz import cli
from safenpz.cli import main


@pytest.fixture
def files(tmp_path: Path, sentinel: Path) -> dict[str, Path]:
    legacy = tmp_path / "legacy.npz"
    rows = np.empty(3, dtype=object)
    rows[:] = [[1, 2], [3], []]
    np.savez(legacy, x=rows, y=np.arange(3))
    clean = tmp_path / "clean.npz"
    np.savez(clean, a=np.arange(4))
    evil = tmp_path / "sub" / "evil.npy"
    evil.parent.mkdir()
    evil.write_bytes(hostile_npy_bytes(sentinel))
    junk = tmp_path / "junk.npy"
    junk.write_bytes(b"\x93NUMPY\x01\x00\xff\xff{garbage")
    return {"legacy": legacy, "clean": clean, "evil": evil, "junk": junk}


def test_scan_verdicts_and_exit_codes(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], sentinel: Path
) -> None:
    assert main(["scan", str(files["clean"]), str(files["legacy"])]) == 0
    out = capsys.readouterr().out
    assert "SAFE      " + str(files["clean"]) in out
    assert "LOADABLE  " + str(files["legacy"]) in out
    assert "numpy._core.multiarray._reconstruct" in out or "numpy.core" in out

    assert main(["scan", str(files["evil"])]) == 1
    out = capsys.readouterr().out
    assert "UNSAFE" in out
    assert "BAD GLOBAL posix.system" in out or "BAD GLOBAL nt.system" in out
    assert not sentinel.exists()


def test_scan_directory_recursively_as_json(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], sentinel: Path
) -> None:
    root = files["legacy"].parent
    assert main(["scan", "--json", str(root)]) == 1
    results = {Path(r["path"]).name: r for r in json.loads(capsys.readouterr().out)}
    assert results["clean.npz"]["verdict"] == "safe"
    assert results["legacy.npz"]["verdict"] == "loadable"
    assert results["evil.npy"]["verdict"] == "unsafe"
    assert results["junk.npy"]["verdict"] == "invalid"
    (member,) = results["evil.npy"]["members"]
    bad = [g for g in member["globals"] if not g["allowed"]]
    assert bad
    assert bad[0]["name"] == "system"
    assert bad[0]["offset"] > 0
    assert not sentinel.exists()


def test_info(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(files["legacy"])]) == 0
    out = capsys.readouterr().out
    assert (
        "x: ragged, 3 rows, 3 values (int64), lengths min 0 / median 1 / max 2" in out
    )
    assert "y: array, shape (3,), dtype int64" in out


def test_convert_npz_then_plain_numpy_opens_it(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dst = tmp_path / "out.npz"
    assert main(["convert", str(files["legacy"]), str(dst)]) == 0
    assert f"wrote {dst}" in capsys.readouterr().out
    with np.load(dst, allow_pickle=False) as f:
        assert set(f.files) == {"x.values", "x.offsets", "y", "__safenpz__"}


def test_errors_are_one_line_with_exit_1(
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sentinel: Path,
) -> None:
    assert main(["info", str(files["evil"])]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: UnsafeFileError: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert not sentinel.exists()

    assert main(["convert", str(files["evil"]), str(tmp_path / "o.npz")]) == 1
    assert capsys.readouterr().err.startswith("Error: UnsafeFileError: ")
    assert not (tmp_path / "o.npz").exists()
    assert not sentinel.exists()

    assert main(["info", str(tmp_path / "missing.npz")]) == 1
    assert capsys.readouterr().err.startswith("Error: FileNotFoundError: ")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bogus"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    capsys.readouterr()


def test_demo_runs_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAFENPZ_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SAFENPZ_OFFLINE", "1")
    assert main(["demo", "--rows", "300", "--dir", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "np.load -> ValueError: Object arrays cannot be loaded" in out
    assert "safenpz.load -> UnsafeFileError" in out
    assert "sentinel created: False" in out
    assert not (tmp_path / "demo" / "PWNED").exists()


# --------------------------------------------------------------------------
# scan: raw pickles, unreadable paths, broken archives


def test_scan_raw_pickle_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sentinel: Path
) -> None:
    benign = tmp_path / "rows.pkl"
    benign.write_bytes(pickle.dumps(np.array([[1], [2, 3]], dtype=object), protocol=2))
    evil = tmp_path / "evil.pickle"
    evil.write_bytes(stream(call(glob("os", "system"), ustr(f"touch {sentinel}"))))

    assert main(["scan", str(benign)]) == 0
    out = capsys.readouterr().out
    assert f"LOADABLE  {benign}\n    rows.pkl: loadable\n" in out  # no dtype/shape
    assert re.search(
        r"ok  GLOBAL numpy\._?core\.multiarray\._reconstruct @ byte 2\n", out
    )
    assert "        ok  GLOBAL numpy.ndarray @ byte " in out

    assert main(["scan", str(evil)]) == 1
    out = capsys.readouterr().out
    assert f"UNSAFE    {evil}\n    evil.pickle: unsafe\n" in out
    assert "        BAD GLOBAL os.system @ byte 2\n" in out
    assert "        unsafe: " in out
    assert not sentinel.exists()


def test_scan_raw_pickle_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps({"a": [1, 2]}, protocol=4))
    assert main(["scan", "--json", str(path)]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["verdict"] == "loadable"
    (member,) = result["members"]
    assert member["member"] == "data.pkl"
    assert member["pickle"] is True
    assert member["protocol"] == 4
    assert member["globals"] == []
    assert member["problems"] == []
    assert "dtype" not in member


UNREADABLE: dict[str, tuple[bytes | None, str]] = {
    # file content (None: no file), error line printed under the member
    "missing": (None, "FileNotFoundError: [Errno 2]"),
    "zip-signature-then-junk": (
        b"PK\x03\x04" + b"\x00" * 40,
        "not a readable zip archive",
    ),
    "empty-zip-end-record": (b"PK\x05\x06" + b"\x00" * 4, "not a readable zip archive"),
}


@pytest.mark.parametrize(
    ("content", "error"), list(UNREADABLE.values()), ids=list(UNREADABLE)
)
def test_scan_unreadable_path_is_invalid(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes | None,
    error: str,
) -> None:
    path = tmp_path / "data.npz"
    if content is not None:
        path.write_bytes(content)
    assert main(["scan", str(path)]) == 3  # invalid, nothing unsafe
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"INVALID   {path}"
    assert lines[1] == "    *: invalid"
    assert error in lines[2]
    assert len(lines) == 3

    assert main(["scan", "--json", str(path)]) == 3
    (result,) = json.loads(capsys.readouterr().out)
    assert result["verdict"] == "invalid"
    (member,) = result["members"]
    assert member["member"] == "*"
    assert error in member["error"]


# --------------------------------------------------------------------------
# info: single files and empty ragged columns


def test_info_of_a_single_npy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tmp_path / "rows.npy"
    np.save(rows, np.array([[5, 1], [9]], dtype=object), allow_pickle=True)
    plain = tmp_path / "plain.npy"
    np.save(plain, np.zeros((2, 3), dtype=np.float32))
    assert main(["info", str(rows)]) == 0
    assert capsys.readouterr().out == (
        "rows.npy: ragged, 2 rows, 3 values (int64), lengths min 1 / median 1 "
        "/ max 2, values 1..9\n"
    )
    assert main(["info", str(plain)]) == 0
    assert capsys.readouterr().out == "plain.npy: array, shape (2, 3), dtype float32\n"


def test_info_of_a_raw_pickle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "meta.pkl"
    path.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    assert main(["info", str(path)]) == 0
    assert capsys.readouterr().out == "meta.pkl: dict\n"


def _empty_rows(n: int) -> np.ndarray:
    rows = np.empty(n, dtype=object)
    for i in range(n):
        rows[i] = []
    return rows


@pytest.mark.parametrize(
    ("n", "want"),
    [
        (0, "x: ragged, 0 rows, 0 values (int64)\n"),
        (3, "x: ragged, 3 rows, 0 values (int64), lengths min 0 / median 0 / max 0\n"),
    ],
    ids=["no-rows", "empty-rows"],
)
def test_info_ragged_without_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], n: int, want: str
) -> None:
    path = tmp_path / "empty.npz"
    np.savez(path, x=_empty_rows(n))
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert out == f"{path}: .npz with 1 arrays\n  {want}"


# --------------------------------------------------------------------------
# fetch (loader replaced: no network), interrupts and broken pipes


@pytest.mark.parametrize("dataset", ["imdb", "reuters"], ids=str)
def test_fetch_reports_split_sizes(
    dataset: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    module = importlib.import_module(f"safenpz.datasets.{dataset}")
    calls: list[dict[str, object]] = []

    def fake_load_data(**kwargs: object) -> tuple[tuple[list[int], None], ...]:
        calls.append(kwargs)
        return ([1, 2, 3], None), ([4], None)

    monkeypatch.setattr(module, "load_data", fake_load_data)
    assert main(["fetch", dataset]) == 0
    assert capsys.readouterr().out == f"{dataset}: 3 train / 1 test rows, cached\n"
    assert calls == [{"output": "ragged"}]


@pytest.mark.parametrize(
    ("argv", "target"),
    [(["scan", "."], "scan_file"), (["info", "x.npz"], "load")],
    ids=["scan", "info"],
)
def test_keyboard_interrupt_exits_130(
    argv: list[str],
    target: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "x.npz").write_bytes(b"")

    def interrupted(*args: object, **kwargs: object) -> NoReturn:
        raise KeyboardInterrupt

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, target, interrupted)
    assert main(argv) == 130
    captured = capsys.readouterr()
    assert captured.err == "Interrupted\n"
    assert captured.out == ""


@pytest.mark.parametrize("error", [ValueError, OSError, TypeError])
def test_unexpected_error_text_is_escaped(
    error: type[Exception],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An error raised outside safenpz may carry text a file chose: the one
    ``Error:`` line shows it escaped (no terminal escape sequence, no second
    line)."""
    (tmp_path / "x.npz").write_bytes(b"")

    def failing(*args: object, **kwargs: object) -> NoReturn:
        msg = "member 'x\x1b]0;owned\x07'\r\nError: forged line"
        raise error(msg)

    monkeypatch.setattr(cli, "load", failing)
    assert main(["info", str(tmp_path / "x.npz")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Error: {error.__name__}: member 'x\\x1b]0;owned\\x07'")
    assert "\\r\\nError: forged line" in err
    assert err.count("\n") == 1
    assert "\x1b" not in err
    assert "\r" not in err


class _ClosedPipe(io.TextIOBase):
    """A stdout whose reader has gone away (``safenpz scan ... | head``)."""

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_broken_pipe_exits_quietly(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert main(["scan", "--json", str(files["clean"])]) == 0
    silenced = sys.stdout
    try:
        assert silenced.name == os.devnull
        print("flushed at exit", file=silenced)  # later writes are dropped
    finally:
        silenced.close()


# --------------------------------------------------------------------------
# help text: descriptions, examples, exit codes; every documented example runs


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    return capsys.readouterr().out


def test_every_command_has_a_description_examples_and_exit_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    top = _help([], capsys)
    for code in cli.EXIT_CODES:
        assert re.search(rf"^  {code}  \S", top, re.M), code
    for name, command in cli.COMMANDS.items():
        assert f"{name:<9}" in top
        assert command.summary in top
        text = _help([name], capsys)
        assert " ".join(command.description.split()[:6]) in " ".join(text.split())
        assert "examples:" in text
        assert "exit codes:" in text
        assert command.examples
        for example, _ in command.examples:
            assert f"  {example}  " in text
            assert example.startswith(f"safenpz {name}")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"safenpz {safenpz.__version__}\n"


def _readme_examples() -> list[str]:
    """``safenpz ...  # what`` lines of the README's command-line section (the
    synopsis lines, without a comment, are not examples)."""
    readme = Path(__file__).resolve().parents[1] / "README.md"
    text = readme.read_text(encoding="utf-8")
    section = text.split("## Command line", 1)[1].split("\n## ", 1)[0]
    return [
        line.split("  #", 1)[0].strip()
        for block in section.split("```")[1::2]
        for line in block.splitlines()
        if line.startswith("safenpz ") and "  # " in line
    ]


#: exit codes of the examples in the order they run (the demo writes the
#: files the others read; demo/ holds the demo's tampered evil.npy)
EXPECTED_EXIT = {"safenpz scan demo/": 1, "safenpz scan --json demo/": 1}


def test_every_documented_example_runs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    keras_data: Any,
) -> None:
    pytest.importorskip("pyarrow")
    from dataset_server import Server, serve

    documented = [ex for c in cli.COMMANDS.values() for ex, _ in c.examples]
    readme = _readme_examples()
    assert readme, "the README's command-line section shows no example"
    assert sorted(readme) == sorted(documented)  # the README shows --help's examples
    examples = readme  # in the README's order: the demo first writes demo/

    monkeypatch.chdir(tmp_path)
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    env = {
        "SAFENPZ_CACHE_DIR": str(tmp_path / "cache"),
        "KERAS_HOME": str(tmp_path / "keras-home"),
        "SAFENPZ_DATASETS_URL": srv.url,
    }
    try:
        for name in ("imdb", "reuters"):
            serve(srv, monkeypatch, f"{name}.npz", getattr(keras_data, name)())
        for example in examples:
            for key, value in env.items():  # the demo sets some for itself
                monkeypatch.setenv(key, value)
            monkeypatch.delenv("SAFENPZ_OFFLINE", raising=False)
            code = main(shlex.split(example)[1:])
            out, err = capsys.readouterr()
            assert code == EXPECTED_EXIT.get(example, 0), (example, out, err)
            assert "Traceback" not in err
            assert out.strip() or example.startswith("safenpz fetch"), example
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join()
    assert sorted(srv.hits) == ["imdb.npz", "reuters.npz"]
    assert (tmp_path / "demo/imdb-parquet/train.parquet").is_file()
    assert not (tmp_path / "demo" / "PWNED").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--rows", "0"], "argument --rows: must be at least 1, got 0"),
        (["demo", "--rows", "-3"], "must be at least 1"),
        (["demo", "--rows", "ten"], "not a whole number: 'ten'"),
        (["convert", "a.npz", "out.txt"], "cannot tell the output format from"),
        (["convert", "a.npz", "out.npz", "--format", "csv"], "invalid choice: 'csv'"),
    ],
    ids=["rows-0", "rows-negative", "rows-text", "convert-txt", "convert-format"],
)
def test_bad_arguments_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_convert_into_a_directory_does_not_name_the_temporary_file(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "adir.npz").mkdir()
    assert main(["convert", str(files["legacy"]), str(tmp_path / "adir.npz")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: IsADirectoryError: ")
    assert "adir.npz' is a directory" in err
    assert ".part" not in err


def test_truncated_archive_suggests_an_incomplete_download(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = files["legacy"].read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: len(data) // 2])
    assert main(["info", str(cut)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: FormatError: ")
    assert "probably truncated, e.g. an incomplete download" in err
    assert err.count("\n") == 1
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x05\x06" + b"\x00" * 4)  # not a cut-off archive
    assert main(["info", str(garbage)]) == 1
    assert "incomplete download" not in capsys.readouterr().err
