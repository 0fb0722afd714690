"""Real files written by other people load exactly as ``np.load`` loads them.

The files live in ``<project root>/../shared/realdata`` (never in this
repository); its README lists each file and what loading it must give. The
expectations are read from that table, so a file added there is tested here
without editing this module. Every test skips when the folder is absent.

"Same as np.load" is :func:`identical.assert_identical` against
``np.load(path, allow_pickle=True, encoding="latin1")`` (for a bare pickle,
``pickle.load(f, encoding="latin1")``); "refused" is ``UnsafeFileError``
with nothing imported.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import random
import re
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import safenpz
from identical import assert_identical
from safenpz.cli import main

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
pytestmark = pytest.mark.skipif(
    not REALDATA.is_dir(), reason=f"real files not present at {REALDATA}"
)

REUTERS = "keras/reuters.npz"
REUTERS_WORDS = "keras/reuters_word_index.json"


def _expectations() -> dict[str, str]:
    """``{relative path: "same" | "refused"}`` from the README's table, plus
    the Keras Reuters file the README describes above the table."""
    if not REALDATA.is_dir():
        return {}
    text = (REALDATA / "README.md").read_text(encoding="utf-8")
    out = {REUTERS: "same"}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 5 or not cells[0].startswith("`"):
            continue
        verdict = cells[-1].lower()
        if verdict.startswith("same as np.load"):
            out[cells[0].strip("`")] = "same"
        elif verdict.startswith("refused"):
            out[cells[0].strip("`")] = "refused"
    return out


EXPECTED = _expectations()
SAME = sorted(k for k, v in EXPECTED.items() if v == "same")
REFUSED = sorted(k for k, v in EXPECTED.items() if v == "refused")


def _reference(path: Path) -> Any:
    """What NumPy (or pickle, for a bare pickle) returns for the file."""
    with warnings.catch_warnings():
        # NumPy warns when it strips Python 2 longs from a header
        warnings.simplefilter("ignore")
        with path.open("rb") as f:
            if f.read(6) == b"\x93NUMPY" or path.suffix == ".npz":
                f.seek(0)
                obj = np.load(f, allow_pickle=True, encoding="latin1")
                if isinstance(obj, np.lib.npyio.NpzFile):
                    with obj:
                        return {k: obj[k] for k in obj.files}
                return obj
            f.seek(0)
            return pickle.load(f, encoding="latin1")


def _ours(obj: Any) -> Any:
    if isinstance(obj, safenpz.NpzFile):
        with obj:
            return {k: obj[k] for k in obj.files}
    return obj


def test_the_readme_table_was_read() -> None:
    data_files = {
        str(p.relative_to(REALDATA))
        for p in REALDATA.rglob("*")
        if p.is_file() and p.suffix not in (".md", ".json")
    }
    assert set(EXPECTED) == data_files, "every real file has an expectation"
    assert len(SAME) >= 10
    assert len(REFUSED) >= 5


@pytest.mark.parametrize("name", SAME)
@pytest.mark.parametrize("source", ["path", "bytes", "file"])
def test_loads_identically(name: str, source: str) -> None:
    path = REALDATA / name
    arg: Any = {
        "path": path,
        "bytes": path.read_bytes(),
        "file": io.BytesIO(path.read_bytes()),
    }[source]
    got = _ours(safenpz.load(arg))
    try:
        want = _reference(path)
    except ModuleNotFoundError as err:
        # NumPy 1.x cannot import numpy._core (files written by NumPy 2);
        # safenpz resolves both spellings through its own table
        missing = err.name or ""
        assert missing.startswith("numpy._core")
        assert isinstance(got, np.ndarray)
        return
    assert_identical(got, want)


@pytest.mark.parametrize("name", REFUSED)
def test_refused_without_importing_anything(name: str) -> None:
    before = set(sys.modules)
    with pytest.raises(safenpz.UnsafeFileError, match=r"global \S+ is not in"):
        _ours(safenpz.load(REALDATA / name))
    new = {m for m in set(sys.modules) - before if not m.startswith("safenpz")}
    assert not new, f"modules imported while refusing {name}: {sorted(new)}"


@pytest.mark.parametrize("name", SAME)
def test_ragged_load_matches_the_plain_load(name: str) -> None:
    """``ragged=True`` changes only 1-D object arrays of numeric rows."""
    plain = _ours(safenpz.load(REALDATA / name))
    ragged = _ours(safenpz.load(REALDATA / name, ragged=True))
    members = plain if isinstance(plain, dict) else {"": plain}
    got = ragged if isinstance(ragged, dict) else {"": ragged}
    for key, value in members.items():
        if isinstance(got[key], safenpz.RaggedArray):
            assert got[key].to_lists() == value.tolist()
        else:
            assert_identical(got[key], value)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_scan_gives_the_verdict_load_gives(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["scan", str(REALDATA / name)])
    out = capsys.readouterr().out
    assert code == (0 if EXPECTED[name] == "same" else 1), out
    if EXPECTED[name] == "refused":
        assert re.search("unsafe", out, re.IGNORECASE)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_info(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["info", str(REALDATA / name)])
    captured = capsys.readouterr()
    if EXPECTED[name] == "same":
        assert code == 0, captured.err
        assert captured.out.strip()
    else:
        assert code == 1
        assert "UnsafeFileError" in captured.err
        assert "Traceback" not in captured.err


# object arrays of dicts / mixed values (model weights, joblib's fixture) and a
# bare pickle of a dict go through the pickle-free "tree" kind
@pytest.mark.parametrize("name", SAME)
def test_convert_reads_back_identical(name: str, tmp_path: Path) -> None:
    src = REALDATA / name
    dst = tmp_path / "clean.npz"
    safenpz.convert(src, dst)
    with np.load(dst, allow_pickle=False) as plain:  # no pickle needed
        assert plain.files
    got = _ours(safenpz.load(dst))
    try:
        ref = _reference(src)
    except ModuleNotFoundError:  # NumPy 1.x reading a NumPy 2 pickle
        ref = _ours(safenpz.load(src))
    if src.suffix != ".npz":  # a single array or pickle is named after the file
        ref = {src.stem: ref}
    assert_identical(got, ref)


@pytest.mark.parametrize("name", REFUSED)
def test_convert_refuses_and_writes_nothing(name: str, tmp_path: Path) -> None:
    with pytest.raises(safenpz.UnsafeFileError):
        safenpz.convert(REALDATA / name, tmp_path / "out.npz")
    assert list(tmp_path.iterdir()) == []


# -- the original Keras Reuters file --------------------------------------------


@pytest.fixture
def keras_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The real Reuters files in ``$KERAS_HOME/datasets``, offline, own cache."""
    datasets = tmp_path / "keras" / "datasets"
    datasets.mkdir(parents=True)
    shutil.copy(REALDATA / REUTERS, datasets / "reuters.npz")
    shutil.copy(REALDATA / REUTERS_WORDS, datasets / "reuters_word_index.json")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("SAFENPZ_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SAFENPZ_OFFLINE", "1")
    return datasets


def test_reuters_load_data_offline_from_keras_home(keras_home: Path) -> None:
    from safenpz.datasets import reuters

    (x_train, y_train), (x_test, y_test) = reuters.load_data()
    with np.load(REALDATA / REUTERS, allow_pickle=True) as f:
        xs, labels = f["x"], f["y"]
    assert x_train.dtype == object
    assert x_train.shape == (8982,)
    assert x_test.shape == y_test.shape == (2246,)
    # every row: start char, then the ids shifted by index_from=3
    rng = np.random.RandomState(113)
    order = np.arange(len(xs))
    rng.shuffle(order)
    first = xs[order[0]]
    assert x_train[0] == [1, *[w + 3 for w in first]]
    assert y_train[0] == labels[order[0]]
    # the second load comes from the pickle-free cache, identically
    again = reuters.load_data()
    assert_identical(again, ((x_train, y_train), (x_test, y_test)))
    cached = list((keras_home.parent.parent / "cache").glob("*.safenpz.npz"))
    assert len(cached) == 1


def test_reuters_word_index_and_decoding(keras_home: Path) -> None:
    from safenpz.datasets import reuters

    index = reuters.get_word_index()
    ref = json.loads((REALDATA / REUTERS_WORDS).read_text(encoding="utf-8"))
    assert index == ref
    (x_train, _), _ = reuters.load_data()
    row = x_train[0]
    words = reuters.decode_newswire(row).split(" ")
    inverse = {v: k for k, v in ref.items()}
    assert len(words) == len(row)
    assert row[0] == 1  # the start char
    for i, word in zip(row[1:], words[1:], strict=True):
        if i >= 3:  # 2 is the OOV char
            assert word == inverse[i - 3]


# -- parity with real Keras on the real file ----------------------------------------

# Every value of every argument, one at a time, then random combinations.
GRID: dict[str, list[Any]] = {
    "num_words": [None, 0, 1, 10, 1000, 30980, 40000],
    "skip_top": [0, 5, 100],
    "maxlen": [None, 0, 1, 2, 50, 200, 3000],
    "test_split": [0.2, 0.0, 0.5, 1.0],
    "seed": [113, 0, 7],
    "start_char": [1, None, 7],
    "oov_char": [2, None, 9],
    "index_from": [3, 0, 5],
}
_BASE = {name: values[0] for name, values in GRID.items()}


def _grid_cases() -> list[dict[str, Any]]:
    cases = [dict(_BASE)]
    for name, values in GRID.items():
        cases += [{**_BASE, name: v} for v in values[1:]]
    rng = random.Random(2026)
    cases += [{k: rng.choice(v) for k, v in GRID.items()} for _ in range(40)]
    return cases


KERAS_CASES = _grid_cases()


@pytest.fixture(scope="module")
def keras_reuters() -> Any:
    # loading data needs no real backend; the test setup picks one if it wants
    os.environ.setdefault("KERAS_BACKEND", "numpy")
    pytest.importorskip("keras")
    return pytest.importorskip("keras.src.datasets.reuters")


def _typed(value: Any) -> Any:
    if isinstance(value, list):
        return ("list", [_typed(v) for v in value])
    return (type(value), value)


@pytest.fixture(scope="module")
def keras_decoded(keras_reuters: Any) -> dict[str, Any]:
    """The real file decoded once by Keras's own restricted unpickler."""
    f = keras_reuters.npz_utils.load_npz(str(REALDATA / REUTERS))
    return {"x": f["x"], "y": f["y"]}


def _outcome(fn: Any) -> tuple[str, Any]:
    try:
        return "ok", fn()
    except Exception as err:  # compared, not swallowed
        return "error", (type(err), str(err))


@pytest.mark.keras
@pytest.mark.parametrize("kwargs", KERAS_CASES, ids=lambda k: str(k))
def test_reuters_parity_with_keras(
    kwargs: dict[str, Any],
    keras_reuters: Any,
    keras_decoded: dict[str, Any],
    keras_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Keras 3.15's loader (its own decoding of the real file, read once: its
    pipeline never mutates the rows) against safenpz's, over the grid."""
    from safenpz.datasets import reuters

    path = str(keras_home / "reuters.npz")
    monkeypatch.setattr(keras_reuters, "get_file", lambda *a, **k: path)
    monkeypatch.setattr(
        keras_reuters.npz_utils, "load_npz", lambda p: dict(keras_decoded)
    )
    want = _outcome(lambda: keras_reuters.load_data(**kwargs))
    got = _outcome(lambda: reuters.load_data(**kwargs))
    assert got[0] == want[0], (got, want)
    if want[0] == "error":
        assert got[1] == want[1]
        return
    for (gx, gy), (wx, wy) in zip(got[1], want[1], strict=True):
        assert type(gx) is type(wx) is np.ndarray
        assert (gx.dtype, gx.shape) == (wx.dtype, wx.shape)
        assert _typed(gx.tolist()) == _typed(wx.tolist())
        assert_identical(gy, wy)


@pytest.mark.keras
def test_keras_compat_runs_keras_own_loader_on_the_real_file(
    keras_reuters: Any, keras_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safenpz.datasets import keras_compat

    path = str(keras_home / "reuters.npz")
    monkeypatch.setattr(keras_reuters, "get_file", lambda *a, **k: path)
    outside = keras_reuters.load_data(num_words=10000)
    with keras_compat():
        inside = keras_reuters.load_data(num_words=10000)
    for (ix, iy), (ox, oy) in zip(inside, outside, strict=True):
        assert _typed(ix.tolist()) == _typed(ox.tolist())
        assert_identical(iy, oy)


def test_fetch_reuses_the_real_file_in_keras_home(
    keras_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fetch", "reuters"]) == 0
    out = capsys.readouterr().out
    assert "reuters" in out
    # offline and nothing downloaded: the verified copy in KERAS_HOME was used
    assert (keras_home / "reuters.npz").read_bytes() == (
        REALDATA / REUTERS
    ).read_bytes()


@pytest.mark.parametrize(
    "name",
    [
        "davidsandberg__facenet/det1.npy",
        "soubhiksanyal__RingNet/flame_static_embedding.pkl",
    ],
)
def test_nested_data_to_parquet_is_refused_clearly(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("pyarrow")
    src = REALDATA / name
    assert main(["convert", str(src), str(tmp_path / "out.parquet")]) == 1
    err = capsys.readouterr().err
    assert "not a column" in err
    assert "convert to .npz instead" in err
    assert list(tmp_path.iterdir()) == []
