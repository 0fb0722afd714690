"""The command line, run in-process: ``main([...])`` + ``capsys``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from safenpz._demo import hostile_npy_bytes
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
