"""Tests for ``safenpz.scan_path``/``scan_bytes`` and ``safenpz scan``: the
scanner reaches the verdict :func:`safenpz.load` reaches, never decodes,
reports every member and every file, escapes untrusted names, and exits
0/1/2/3."""

from __future__ import annotations

import ast
import io
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hostile import HOSTILE, MALFORMED, npy_bytes, npz_bytes
from safenpz import (
    NpzFile,
    SafenpzError,
    UnsafeFileError,
    load,
    save,
    scan_bytes,
    scan_path,
)
from safenpz.cli import main

SRC = Path(__file__).resolve().parents[1] / "src" / "safenpz"


def npy_of(arr: Any) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def load_verdict(data: bytes) -> str:
    """What safenpz.load makes of `data` (reading every member of an archive):
    loadable (safe or loadable), invalid or unsafe."""
    worst = "loadable"
    order = ["loadable", "invalid", "unsafe"]

    def seen(v: str) -> None:
        nonlocal worst
        worst = max(worst, v, key=order.index)

    try:
        obj = load(data)
    except UnsafeFileError:
        return "unsafe"
    except SafenpzError:
        return "invalid"
    if isinstance(obj, NpzFile):
        with obj:
            plain = obj._layout is not None and obj._layout._plain
            keys = obj.raw_names if plain else obj.files
            for key in keys:
                try:
                    obj[key]
                except UnsafeFileError:
                    seen("unsafe")
                except SafenpzError:
                    seen("invalid")
                else:
                    seen("loadable")
        return worst
    return "loadable"


def _corpus() -> dict[str, bytes]:
    files: dict[str, bytes] = {
        "numeric-npy": npy_of(np.arange(5)),
        "object-npy": npy_of(np.array([[1, 2], [3]], dtype=object)),
        "numeric-npz": npz_bytes({"a.npy": npy_of(np.arange(3))}),
        "text-file": b"This is a README, not a pickle.\n",
        "text-file-o": b"ok then\n",
        "empty-file": b"",
        "truncated-npy": npy_of(np.arange(5))[:-3],
        "too-long-npy": npy_of(np.arange(5)) + b"\x00",
        "pickle-p2": pickle.dumps({"a": [1, 2]}, protocol=2),
        "x-and-x.npy": npz_bytes(
            {"x.npy": npy_of(np.arange(2)), "x": npy_of(np.arange(3))}
        ),
        "non-npy-member": npz_bytes({"readme.txt": b"hello"}),
    }
    buf = io.BytesIO()
    save(buf, x=np.array([[1, 2], [3]], dtype=object), y=np.arange(2))
    files["safenpz-saved"] = buf.getvalue()
    for case in HOSTILE[::3]:
        body = case.build("/nonexistent/sentinel")
        files[f"hostile-pickle-{case.id}"] = body
        files[f"hostile-npy-{case.id}"] = npy_bytes(body)
    for bad in MALFORMED:
        files[f"malformed-npy-{bad.id}"] = npy_bytes(bad.data)
    return files


CORPUS = _corpus()


@pytest.mark.parametrize("name", list(CORPUS))
def test_scan_reaches_the_verdict_load_reaches(name: str) -> None:
    data = CORPUS[name]
    verdict = scan_bytes(data).verdict
    assert {"safe": "loadable"}.get(verdict, verdict) == load_verdict(data)


def test_hostile_member_next_to_a_benign_x_npy_is_reported(
    tmp_path: Path, sentinel: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = next(c for c in HOSTILE if c.id == "reduce-os.system-p2")
    path = tmp_path / "a.npz"
    path.write_bytes(
        npz_bytes(
            {"x.npy": npy_of(np.arange(3)), "x": npy_bytes(case.build(str(sentinel)))}
        )
    )
    report = scan_path(path)
    assert [(m.member, m.verdict) for m in report.members] == [
        ("x.npy", "safe"),
        ("x", "unsafe"),
    ]
    assert main(["scan", str(path)]) == 1
    assert "    x: unsafe" in capsys.readouterr().out
    assert not sentinel.exists()


def test_bad_manifest_does_not_hide_the_other_members(sentinel: Path) -> None:
    case = next(c for c in HOSTILE if c.id == "reduce-builtins.exec-p2")
    data = npz_bytes(
        {
            "__safenpz__.npy": npy_of(np.array("{not json")),
            "y.npy": npy_bytes(case.build(str(sentinel))),
            "z.npy": npy_of(np.arange(2)),
        }
    )
    report = scan_bytes(data)
    verdicts = {m.member: m.verdict for m in report.members}
    assert verdicts == {
        "__safenpz__.npy": "invalid",
        "y.npy": "unsafe",
        "z.npy": "safe",
    }
    assert report.verdict == "unsafe"
    assert not sentinel.exists()


def test_manifest_is_checked_without_the_reader() -> None:
    good = io.BytesIO()
    save(good, x=np.array([[1], [2, 3]], dtype=object))
    assert scan_bytes(good.getvalue()).verdict == "safe"
    with zipfile.ZipFile(io.BytesIO(good.getvalue())) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["x.npy"] = npy_of(np.arange(3))  # hidden by the manifest entry x
    report = scan_bytes(npz_bytes(members))
    (manifest,) = [m for m in report.members if m.member == "__safenpz__.npy"]
    assert manifest.verdict == "invalid"
    assert manifest.error is not None
    assert "hide" in manifest.error
    assert load_verdict(npz_bytes(members)) == "invalid"


def test_scan_module_never_imports_the_decoders() -> None:
    tree = ast.parse((SRC / "_scan.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    decoders = ("_unpickle", "_fastrows", "_pickle._decode", "_pickle._fast")
    assert not {n for n in names if any(d in n for d in decoders)}


def test_scan_dir_decides_by_content_and_reports_every_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sentinel: Path
) -> None:
    case = next(c for c in HOSTILE if c.id == "reduce-os.system-p4")
    (tmp_path / "model.NPZ").write_bytes(npz_bytes({"w.npy": npy_of(np.arange(2))}))
    (tmp_path / "weights.npy.1").write_bytes(npy_bytes(case.build(str(sentinel))))
    (tmp_path / "notes.txt").write_bytes(b"Some notes\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "blob").write_bytes(pickle.dumps([1, 2], protocol=2))
    assert main(["scan", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"SAFE      {tmp_path / 'model.NPZ'}" in out
    assert f"UNSAFE    {tmp_path / 'weights.npy.1'}" in out
    assert f"LOADABLE  {tmp_path / 'sub' / 'blob'}" in out
    assert f"SKIPPED   {tmp_path / 'notes.txt'}" in out
    assert out.splitlines()[-1] == (
        "scanned 3 file(s): 1 safe, 1 loadable, 1 unsafe, 0 invalid, 1 skipped"
    )
    assert not sentinel.exists()

    assert main(["scan", "--json", str(tmp_path)]) == 1
    results = {
        Path(r["path"]).name: r["verdict"] for r in json.loads(capsys.readouterr().out)
    }
    assert results == {
        "model.NPZ": "safe",
        "weights.npy.1": "unsafe",
        "notes.txt": "skipped",
        "blob": "loadable",
    }


def test_explicit_text_file_is_invalid_not_unsafe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "readme.npy"
    path.write_bytes(b"ok, this is text\n")
    assert main(["scan", str(path)]) == 3
    assert capsys.readouterr().out.startswith(f"INVALID   {path}")


@pytest.mark.parametrize(
    ("files", "code"),
    [
        ({"a.npy": npy_of(np.arange(2))}, 0),
        ({"a.npy": npy_of(np.arange(2)), "b.npy": b"junk"}, 3),
        ({"a.npy": b"junk", "b.npy": npy_bytes(HOSTILE[0].build("/x/s"))}, 1),
    ],
    ids=["safe", "invalid", "unsafe-wins"],
)
def test_exit_codes(
    tmp_path: Path,
    files: dict[str, bytes],
    code: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    assert main(["scan", *(str(tmp_path / n) for n in files)]) == code
    capsys.readouterr()


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["scan"])
    assert info.value.code == 2
    capsys.readouterr()


ESC = "\x1b[2K\r\x1b[32mSAFE\x1b[0m"


def test_untrusted_names_are_escaped_in_human_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sentinel: Path
) -> None:
    body = (
        b"\x80\x02c"
        + b"os"
        + ESC.encode()
        + b"\nsystem\n(V"
        + f"touch {sentinel}".encode()
        + b"\ntR."
    )
    path = tmp_path / ("evil" + ESC + ".npz")
    path.write_bytes(npz_bytes({f"x{ESC}.npy": npy_bytes(body)}))
    assert main(["scan", str(path)]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "\r" not in out
    assert "\\x1b[2K" in out
    with pytest.raises(UnsafeFileError) as info, load(path) as f:
        f[f"x{ESC}"]
    assert "\x1b" not in str(info.value)
    assert not sentinel.exists()


def test_unreadable_and_special_files(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.npy"
    import os

    os.mkfifo(fifo)
    report = scan_path(fifo)  # must not block
    assert report.verdict == "invalid"
    assert "not a regular file" in (report.members[0].error or "")
