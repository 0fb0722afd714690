"""Tests for safenpz.datasets (imdb, reuters) beyond Keras parity.

No network: downloads go to a ThreadingHTTPServer on 127.0.0.1 (the
``server`` fixture) through ``$SAFENPZ_DATASETS_URL``, and the known hashes
are replaced by those of generated files. Parity with the real Keras is in
test_keras_parity.py.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import subprocess
import sys
import textwrap
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import safenpz
from safenpz import RaggedArray
from safenpz._exceptions import (
    DownloadError,
    FormatError,
    HashMismatchError,
    UnsafeFileError,
)
from safenpz.datasets import _common, imdb, reuters

# -- local HTTP server -----------------------------------------------------------------


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.modes: dict[str, str] = {}
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        name = self.path.lstrip("/")
        with self.server.lock:
            self.server.hits[name] = self.server.hits.get(name, 0) + 1
        body = self.server.files.get(name)
        mode = self.server.modes.get(name, "ok")
        if body is None or mode == "error":
            self.send_error(404 if body is None else 500)
            return
        self.send_response(200)
        extra = 1000 if mode == "truncate" else 0
        self.send_header("Content-Length", str(len(body) + extra))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("SAFENPZ_DATASETS_URL", srv.url)
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join()


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache, an empty Keras home, no real downloads."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("SAFENPZ_CACHE_DIR", str(cache))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    # tf.keras's ~/.keras/datasets is searched too: never the real one
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("USERPROFILE", str(tmp_path / "home"))
    monkeypatch.setenv("SAFENPZ_DATASETS_URL", "http://127.0.0.1:9/")  # refused
    monkeypatch.delenv("SAFENPZ_OFFLINE", raising=False)
    return cache


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _serve(
    server: _Server, monkeypatch: pytest.MonkeyPatch, remote: str, file: Path
) -> None:
    """Serve `file` as `remote` and make its hash the known one."""
    server.files[remote] = file.read_bytes()
    alg = "md5" if remote.endswith(".json") else "sha256"
    digest = hashlib.new(alg, file.read_bytes()).hexdigest()
    monkeypatch.setitem(_common.KNOWN_HASHES, remote, f"{alg}:{digest}")


def _converted(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.safenpz.npz"))


def _same(a: Any, b: Any) -> None:
    (ax, ay), (bx, by) = a
    (cx, cy), (dx, dy) = b
    for got, want in ((ax, cx), (bx, dx)):
        if isinstance(got, RaggedArray):
            assert got.equals(want)
        else:
            assert got.dtype == want.dtype
            assert got.shape == want.shape
            assert got.tolist() == want.tolist()
    for got, want in ((ay, cy), (by, dy)):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


# -- outputs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"num_words": 20},
        {"maxlen": 15},
        {"start_char": None, "num_words": 50},
        {"oov_char": None, "num_words": 30, "skip_top": 4},
        {"seed": 5},
        {"index_from": 0},
    ],
    ids=["defaults", "num_words", "maxlen", "no-start", "drop-oov", "seed", "index0"],
)
@pytest.mark.parametrize("dataset", ["imdb", "reuters"])
def test_output_modes_agree(
    dataset: str, kwargs: dict[str, Any], keras_data: Any
) -> None:
    module = imdb if dataset == "imdb" else reuters
    file = str(getattr(keras_data, dataset)())
    (x_train, y_train), (x_test, y_test) = module.load_data(file, **kwargs)
    (r_train, ry_train), (r_test, ry_test) = module.load_data(
        file, output="ragged", **kwargs
    )
    assert isinstance(r_train, RaggedArray)
    assert r_train.dtype == np.int32
    assert r_train.to_lists() == x_train.tolist()
    assert r_test.to_lists() == x_test.tolist()
    np.testing.assert_array_equal(ry_train, y_train)
    np.testing.assert_array_equal(ry_test, y_test)
    (p_train, _), (p_test, _) = module.load_data(
        file, output="padded", pad_maxlen=12, padding="post", pad_value=-1, **kwargs
    )
    want = RaggedArray.from_lists(x_train.tolist()).pad(12, padding="post", value=-1)
    np.testing.assert_array_equal(p_train, want)
    assert p_train.dtype == np.int32
    assert p_test.shape == (len(x_test), 12)


def test_lists_are_python_lists_of_python_ints(keras_data: Any) -> None:
    (x_train, y_train), (x_test, y_test) = imdb.load_data(str(keras_data.imdb()))
    assert x_train.dtype == object
    assert x_train.ndim == 1
    assert type(x_train[0]) is list
    assert type(x_train[0][0]) is int
    assert x_train[0][0] == 1  # start_char
    assert y_train.dtype == np.int64
    assert len(y_train) == len(x_train) == 120
    assert len(x_test) == len(y_test) == 80


def test_equal_length_rows_give_a_2d_object_array(keras_data: Any) -> None:
    (x_train, _), _ = imdb.load_data(str(keras_data.imdb(width=4)))
    assert x_train.shape == (120, 5)
    assert x_train.dtype == object
    assert type(x_train[0, 0]) is int
    (x_train, _), _ = imdb.load_data(
        str(keras_data.imdb("e.npz", width=0)), start_char=None, num_words=3
    )
    assert x_train.shape == (120, 0)


def test_vectorised_path_for_plain_arguments(
    keras_data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        msg = "the slow reference path was used"
        raise AssertionError(msg)

    monkeypatch.setattr(_common, "_reference", refuse)
    file = str(keras_data.imdb())
    for kwargs in ({}, {"num_words": 10, "skip_top": 3, "maxlen": 20, "seed": 1}):
        imdb.load_data(file, **kwargs)
        imdb.load_data(file, output="ragged", **kwargs)


def test_option_errors(keras_data: Any) -> None:
    file = str(keras_data.imdb())
    with pytest.raises(ValueError, match="output must be one of"):
        imdb.load_data(file, output="tensor")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="compat must be"):
        imdb.load_data(file, compat="keras1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="only apply to output='padded'"):
        imdb.load_data(file, pad_maxlen=10)
    with pytest.raises(ValueError, match="only apply to output='padded'"):
        reuters.load_data(str(keras_data.reuters()), output="ragged", padding="post")


def test_imdb_ignores_unknown_keywords_reuters_rejects_them(keras_data: Any) -> None:
    imdb.load_data(str(keras_data.imdb()), nb_words=3, anything="goes")
    with pytest.raises(TypeError, match="unexpected keyword argument 'nb_words'"):
        reuters.load_data(str(keras_data.reuters()), nb_words=3)  # type: ignore[call-arg]


def test_decode_review_and_newswire() -> None:
    word_index = {"the": 1, "movie": 17, "great": 84}
    ids = [0, 0, 1, 4, 20, 2, 87, 5000]
    assert imdb.decode_review(ids, word_index) == "[START] the movie [OOV] great [UNK]"
    assert imdb.decode_review(np.array(ids), word_index, pad_char=None).startswith(
        "[UNK] [UNK] [START]"
    )
    # index_from=0: ids are the ranks; start/oov take precedence over words 1 and 2
    assert imdb.decode_review([1, 17, 84], word_index, index_from=0) == (
        "[START] movie great"
    )
    assert imdb.decode_review([1, 17], word_index, index_from=0, start_char=None) == (
        "the movie"
    )
    assert reuters.decode_newswire([1, 4, 5], {"the": 1, "of": 2}) == "[START] the of"


def test_decode_round_trip(keras_data: Any, tmp_path: Path) -> None:
    words = {f"w{i}": i for i in range(1, 301)}
    index_file = tmp_path / "idx" / "imdb_word_index.json"
    index_file.parent.mkdir()
    index_file.write_text(json.dumps(words))
    word_index = imdb.get_word_index(str(index_file))
    assert word_index == words
    (x_train, _), _ = imdb.load_data(str(keras_data.imdb()), index_from=5, start_char=3)
    text = imdb.decode_review(x_train[0], word_index, index_from=5, start_char=3)
    assert text.split()[0] == "[START]"
    # id 2 is the OOV id (the largest id too: Keras's num_words=None quirk)
    words = [("[OOV]" if i == 2 else f"w{i - 5}") for i in x_train[0][1:]]
    assert text.split()[1:] == words


def test_label_names() -> None:
    names = reuters.get_label_names()
    assert len(names) == 46
    assert names[:3] == ("cocoa", "grain", "veg-oil")
    assert names[-1] == "lead"


# -- Keras 2.2 compatibility -----------------------------------------------------------


def keras22_imdb(
    path: Path,
    num_words: Any = None,
    skip_top: Any = 0,
    maxlen: Any = None,
    seed: Any = 113,
    start_char: Any = 1,
    oov_char: Any = 2,
    index_from: Any = 3,
) -> Any:
    """Keras 2.2.4's ``imdb.load_data`` steps, as an independent oracle.

    Reads our own generated file with ``allow_pickle=True`` (trusted here),
    and builds the results with ``dtype=object`` (what Keras 2.2 got from
    NumPy of its time for ragged rows, and what the compat mode returns).
    """
    with np.load(path, allow_pickle=True) as f:
        x_train, labels_train = f["x_train"], f["y_train"]
        x_test, labels_test = f["x_test"], f["y_test"]
    np.random.seed(seed)  # noqa: NPY002
    indices = np.arange(len(x_train))
    np.random.shuffle(indices)  # noqa: NPY002
    x_train, labels_train = x_train[indices], labels_train[indices]
    indices = np.arange(len(x_test))
    np.random.shuffle(indices)  # noqa: NPY002
    x_test, labels_test = x_test[indices], labels_test[indices]
    xs: Any = np.concatenate([x_train, x_test])
    labels: Any = np.concatenate([labels_train, labels_test])
    if start_char is not None:
        xs = [[start_char] + [w + index_from for w in x] for x in xs]
    elif index_from:
        xs = [[w + index_from for w in x] for x in xs]
    if maxlen:
        kept = [(x, y) for x, y in zip(xs, labels, strict=True) if len(x) < maxlen]
        xs, labels = [x for x, _ in kept], [y for _, y in kept]
        if not xs:
            msg = f"After filtering for sequences shorter than maxlen={maxlen}, ..."
            raise ValueError(msg)
    if not num_words:
        num_words = max([max(x) for x in xs])
    if oov_char is not None:
        xs = [[w if skip_top <= w < num_words else oov_char for w in x] for x in xs]
    else:
        xs = [[w for w in x if skip_top <= w < num_words] for x in xs]
    idx = len(x_train)
    return (
        (np.array(xs[:idx], dtype=object), np.array(labels[:idx])),
        (np.array(xs[idx:], dtype=object), np.array(labels[idx:])),
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"maxlen": 15},
        {"maxlen": 25, "num_words": 40},
        {"seed": 3, "oov_char": None, "num_words": 60},
        {"maxlen": 2, "num_words": 10},
        {"start_char": None, "index_from": 0, "num_words": 99},
    ],
    ids=["defaults", "maxlen", "maxlen-nw", "seed-drop", "tiny-maxlen", "no-shift"],
)
def test_keras22_compat_matches_keras_224(
    kwargs: dict[str, Any], keras_data: Any
) -> None:
    file = keras_data.imdb()
    want = keras22_imdb(file, **kwargs)
    want_state = np.random.get_state()[1].copy()  # type: ignore[index]  # noqa: NPY002
    np.random.seed(0)  # noqa: NPY002
    got = imdb.load_data(str(file), compat="keras2.2", **kwargs)
    # Keras 2.2 left NumPy's global RNG seeded and advanced; so does safenpz.
    np.testing.assert_array_equal(np.random.get_state()[1], want_state)  # type: ignore[index]  # noqa: NPY002
    _same(got, want)
    (r_train, _), (r_test, _) = imdb.load_data(
        str(file), compat="keras2.2", output="ragged", **kwargs
    )
    assert r_train.to_lists() == [list(r) for r in want[0][0]]
    assert r_test.to_lists() == [list(r) for r in want[1][0]]


def test_keras22_maxlen_moves_test_rows_into_train(keras_data: Any) -> None:
    file = str(keras_data.imdb())
    (x_train, y_train), _ = imdb.load_data(file, maxlen=15, compat="keras2.2")
    (k_train, _), (k_test, _) = imdb.load_data(file, maxlen=15)
    # Keras 2.2 split the filtered train+test at the original 120 training rows
    assert len(x_train) == min(120, len(k_train) + len(k_test)) == len(y_train)
    assert len(x_train) > len(k_train)


def test_keras22_errors(keras_data: Any) -> None:
    with pytest.raises(ValueError, match="maxlen=1, no sequence was kept"):
        imdb.load_data(str(keras_data.imdb()), maxlen=1, compat="keras2.2")


def test_keras22_reuters_only_changes_the_rng(keras_data: Any) -> None:
    file = str(keras_data.reuters())
    np.random.seed(1)  # noqa: NPY002
    _same(reuters.load_data(file, compat="keras2.2"), reuters.load_data(file))
    np.random.seed(113)  # noqa: NPY002
    np.random.shuffle(np.arange(150))  # noqa: NPY002
    want = np.random.get_state()[1].copy()  # type: ignore[index]  # noqa: NPY002
    reuters.load_data(file, compat="keras2.2")
    np.testing.assert_array_equal(np.random.get_state()[1], want)  # type: ignore[index]  # noqa: NPY002


# -- downloads -------------------------------------------------------------------------


def test_download_checked_and_cached(
    server: _Server, keras_data: Any, monkeypatch: pytest.MonkeyPatch, cache: Path
) -> None:
    source = keras_data.imdb()
    _serve(server, monkeypatch, "imdb.npz", source)
    first = imdb.load_data(num_words=50)
    assert server.hits == {"imdb.npz": 1}
    assert (cache / "imdb.npz").read_bytes() == source.read_bytes()
    assert [p.name for p in _converted(cache)] == [
        f"imdb-{_sha256(source)[:16]}.safenpz.npz"
    ]
    # Later loads use the converted copy only: no download, no pickle, and
    # they work offline even without the downloaded file.
    (cache / "imdb.npz").unlink()
    monkeypatch.setenv("SAFENPZ_OFFLINE", "1")
    _same(imdb.load_data(num_words=50), first)
    assert server.hits == {"imdb.npz": 1}


def test_download_progress_bar(
    server: _Server,
    keras_data: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _serve(server, monkeypatch, "reuters.npz", keras_data.reuters())
    reuters.load_data(progress=True)
    assert "Downloading reuters.npz" in capsys.readouterr().err


def test_corrupt_download_is_refused_and_nothing_cached(
    server: _Server, keras_data: Any, monkeypatch: pytest.MonkeyPatch, cache: Path
) -> None:
    _serve(server, monkeypatch, "imdb.npz", keras_data.imdb())
    server.files["imdb.npz"] = server.files["imdb.npz"][:-10] + b"0123456789"
    with pytest.raises(HashMismatchError, match="hash mismatch"):
        imdb.load_data()
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize(
    ("mode", "match"), [("truncate", "truncated"), ("error", "HTTP 500")]
)
def test_failed_download(
    mode: str,
    match: str,
    server: _Server,
    keras_data: Any,
    monkeypatch: pytest.MonkeyPatch,
    cache: Path,
) -> None:
    _serve(server, monkeypatch, "reuters.npz", keras_data.reuters())
    server.modes["reuters.npz"] = mode
    with pytest.raises(DownloadError, match=match):
        reuters.load_data()
    assert not any(p.name.startswith("reuters") for p in cache.iterdir())


def test_offline_error_says_where_to_put_the_file(
    monkeypatch: pytest.MonkeyPatch, cache: Path
) -> None:
    monkeypatch.setenv("SAFENPZ_OFFLINE", "1")
    with pytest.raises(DownloadError, match="offline") as info:
        imdb.load_data()
    assert str(cache / "imdb.npz") in str(info.value)


def test_keras_cache_copy_is_reused(
    server: _Server, keras_data: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source = keras_data.imdb()
    _serve(server, monkeypatch, "imdb.npz", source)
    keras_datasets = tmp_path / "keras-home" / "datasets"
    keras_datasets.mkdir(parents=True)
    (keras_datasets / "imdb.npz").write_bytes(source.read_bytes())
    (x_train, _), _ = imdb.load_data()
    assert server.hits == {}
    assert len(x_train) == 120


def test_bare_name_other_than_default(
    server: _Server, keras_data: Any, monkeypatch: pytest.MonkeyPatch, cache: Path
) -> None:
    # Keras's path= names the cache entry; the URL stays the dataset's.
    _serve(server, monkeypatch, "imdb.npz", keras_data.imdb())
    imdb.load_data("my_imdb.npz")
    assert server.hits == {"imdb.npz": 1}
    assert (cache / "my_imdb.npz").is_file()


def test_word_index_download(
    server: _Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source = tmp_path / "imdb_word_index.json"
    source.write_text(json.dumps({"the": 1, "a": 2}))
    _serve(server, monkeypatch, "imdb_word_index.json", source)
    assert imdb.get_word_index() == {"the": 1, "a": 2}
    source.write_text(json.dumps({"x": 1}))
    server.files["reuters_word_index.json"] = source.read_bytes()  # md5 unknown
    with pytest.raises(HashMismatchError):
        reuters.get_word_index()


def test_word_index_must_be_an_object(tmp_path: Path) -> None:
    bad = tmp_path / "list.json"
    bad.write_text("[1, 2]")
    with pytest.raises(FormatError, match="not a word index"):
        imdb.get_word_index(str(bad))
    bad.write_text("{")
    with pytest.raises(FormatError, match="not a JSON word index"):
        reuters.get_word_index(str(bad))


def test_real_hashes_are_the_defaults() -> None:
    # SPEC section 4: the hashes Keras 3.15.1 checks.
    imdb_sha = "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"
    reuters_sha = "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916"
    assert {
        "imdb.npz": f"sha256:{imdb_sha}",
        "imdb_word_index.json": "md5:bfafd718b763782e994055a2d397834f",
        "reuters.npz": f"sha256:{reuters_sha}",
        "reuters_word_index.json": "md5:4d44cc38712099c9e383dc6e5f11a921",
    } == _common.KNOWN_HASHES


# -- local paths and the converted cache -----------------------------------------------


def test_local_path_is_converted_once(
    keras_data: Any, monkeypatch: pytest.MonkeyPatch, cache: Path
) -> None:
    file = str(keras_data.imdb())
    first = imdb.load_data(file, num_words=40)
    [converted] = _converted(cache)
    assert converted.name.startswith(f"imdb-{_sha256(Path(file))[:16]}")
    other = _reference_run(file, seed=9, maxlen=20, num_words=40)
    # The second load neither decodes the source nor hashes it again.
    monkeypatch.setattr(_common, "_decode_source", _forbidden("_decode_source"))
    monkeypatch.setattr(_common._fetch, "file_hash", _forbidden("file_hash"))
    _same(imdb.load_data(file, num_words=40), first)
    _same(imdb.load_data(file, num_words=40, seed=9, maxlen=20), other)


def _forbidden(name: str) -> Any:
    def fail(*args: object, **kwargs: object) -> None:
        msg = f"{name} was called"
        raise AssertionError(msg)

    return fail


def _reference_run(file: str, **kwargs: Any) -> Any:
    """The same load through the decoded source, bypassing the cache."""
    loaded = _common._decode_source(imdb.SPEC, Path(file))
    return _common.run_pipeline("imdb", loaded, imdb.SPEC, _common.Params(**kwargs))


def test_local_copy_of_the_known_file_shares_the_cache(
    keras_data: Any, monkeypatch: pytest.MonkeyPatch, cache: Path
) -> None:
    # A local file whose sha256 is the known one is the official dataset:
    # its converted copy also serves loads by the bare name, offline.
    source = keras_data.imdb()
    monkeypatch.setitem(_common.KNOWN_HASHES, "imdb.npz", f"sha256:{_sha256(source)}")
    first = imdb.load_data(str(source), num_words=20)
    monkeypatch.setenv("SAFENPZ_OFFLINE", "1")
    monkeypatch.setattr(_common, "_decode_source", _forbidden("_decode_source"))
    _same(imdb.load_data(num_words=20), first)
    assert not (cache / "imdb.npz").exists()


def test_changed_local_file_is_converted_again(keras_data: Any, cache: Path) -> None:
    path = keras_data.imdb()
    imdb.load_data(str(path))
    keras_data.imdb(seed=5)  # same name, new content
    (x_train, _), _ = imdb.load_data(str(path))
    assert len(_converted(cache)) == 2
    _same(imdb.load_data(str(path)), _reference_run(str(path)))
    assert len(x_train) == 120


def test_relative_path_with_directory(
    keras_data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(keras_data.root.parent)
    keras_data.imdb()
    (x_train, _), _ = imdb.load_data(os.path.join("keras-data", "imdb.npz"))
    assert len(x_train) == 120
    with pytest.raises(FileNotFoundError, match="does not exist"):
        imdb.load_data(os.path.join("keras-data", "missing.npz"))


def _damage_truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def _damage_flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("x_train.values.npy")
    data[info.header_offset + 200] ^= 0xFF  # inside the member's data: bad CRC
    path.write_bytes(bytes(data))


def _rewrite(path: Path, change: Any) -> None:
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    change(arrays)
    with open(path, "wb") as fp:
        np.savez(fp, **arrays)


def _damage_offsets(path: Path) -> None:
    def change(arrays: dict[str, Any]) -> None:
        offsets = arrays["x_train.offsets"].copy()
        offsets[5], offsets[6] = offsets[6], offsets[5]  # decreasing
        arrays["x_train.offsets"] = offsets

    _rewrite(path, change)


def _damage_members(path: Path) -> None:
    _rewrite(path, lambda arrays: arrays.pop("y_test"))


def _damage_record(path: Path) -> None:
    def change(arrays: dict[str, Any]) -> None:
        record = json.loads(str(arrays["safenpz_dataset"]))
        record["source_sha256"] = "0" * 64
        arrays["safenpz_dataset"] = np.array(json.dumps(record))

    _rewrite(path, change)


def _damage_labels(path: Path) -> None:
    _rewrite(path, lambda arrays: arrays.update(y_train=arrays["y_train"][:-1]))


def _damage_slots(path: Path) -> None:
    def change(arrays: dict[str, Any]) -> None:
        values = arrays["x_test.values"].copy()
        values[0] = 10**6
        arrays["x_test.values"] = values

    _rewrite(path, change)


def _damage_garbage(path: Path) -> None:
    path.write_bytes(b"not a zip file at all")


@pytest.mark.parametrize(
    "damage",
    [
        _damage_truncate,
        _damage_flip,
        _damage_offsets,
        _damage_members,
        _damage_record,
        _damage_labels,
        _damage_slots,
        _damage_garbage,
    ],
    ids=lambda f: f.__name__.removeprefix("_damage_"),
)
def test_damaged_converted_copy_is_rebuilt(
    damage: Any, keras_data: Any, monkeypatch: pytest.MonkeyPatch, cache: Path
) -> None:
    file = str(keras_data.imdb())
    first = imdb.load_data(file)
    [converted] = _converted(cache)
    damage(converted)
    calls = []
    decode = _common._decode_source

    def spy(*args: Any) -> Any:
        calls.append(args)
        return decode(*args)

    monkeypatch.setattr(_common, "_decode_source", spy)
    _same(imdb.load_data(file), first)
    assert len(calls) == 1  # rebuilt from the source
    _same(imdb.load_data(file), first)
    assert len(calls) == 1  # and the rebuilt copy is used again


def test_unwritable_cache_still_loads(
    keras_data: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    monkeypatch.setenv("SAFENPZ_CACHE_DIR", str(not_a_dir))
    (x_train, _), _ = imdb.load_data(str(keras_data.imdb()))
    assert len(x_train) == 120


def test_missing_member_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "x" / "imdb.npz"
    path.parent.mkdir()
    np.savez(path, x_train=np.zeros(3), y_train=np.zeros(3))
    with pytest.raises(FormatError, match="no member 'x_test'"):
        imdb.load_data(str(path))


def test_rows_that_are_not_lists_still_load(tmp_path: Path) -> None:
    # A 2-D numeric x cannot take the fast layout; the Keras steps still run.
    path = tmp_path / "x" / "reuters.npz"
    path.parent.mkdir()
    np.savez(path, x=np.arange(40).reshape(10, 4), y=np.arange(10))
    (x_train, y_train), (x_test, _) = reuters.load_data(str(path), num_words=30)
    assert x_train.shape == (8, 5)
    assert len(x_test) == 2
    # what Keras gives for such rows: NumPy integers (oov_char stays an int)
    assert {type(w) for w in x_train.ravel()} == {int, np.int64}
    assert sorted(
        y_train.tolist() + reuters.load_data(str(path))[1][1].tolist()
    ) == list(range(10))


# -- hostile files ---------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["imdb", "reuters"])
def test_hostile_local_file(
    dataset: str, keras_data: Any, tmp_path: Path, cache: Path
) -> None:
    sentinel = tmp_path / "sentinel"
    path = keras_data.hostile(sentinel, reuters=dataset == "reuters")
    module = imdb if dataset == "imdb" else reuters
    with pytest.raises(UnsafeFileError, match="system"):
        module.load_data(str(path))
    assert not sentinel.exists()
    assert _converted(cache) == []


def test_hostile_download(
    server: _Server, keras_data: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sentinel = tmp_path / "sentinel"
    _serve(server, monkeypatch, "imdb.npz", keras_data.hostile(sentinel))
    with pytest.raises(UnsafeFileError):
        imdb.load_data()
    assert not sentinel.exists()


# -- two processes at once -------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import hashlib, os, sys, time
    from safenpz.datasets import _common, imdb
    _common.KNOWN_HASHES["imdb.npz"] = sys.argv[2]
    go = sys.argv[3]
    while not os.path.exists(go):
        time.sleep(0.001)
    path = sys.argv[1] or "imdb.npz"
    (x, y), (xt, yt) = imdb.load_data(path, num_words=50)
    digest = hashlib.sha256(repr((x.tolist(), y.tolist(), xt.tolist())).encode())
    print(digest.hexdigest())
    """
)


@pytest.mark.parametrize("where", ["local", "download"])
def test_two_processes_at_once(
    where: str,
    server: _Server,
    keras_data: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    cache: Path,
) -> None:
    source = keras_data.imdb(n_train=2000, n_test=2000)
    _serve(server, monkeypatch, "imdb.npz", source)
    go = tmp_path / "go"
    args = [
        str(source) if where == "local" else "",
        f"sha256:{_sha256(source)}",
        str(go),
    ]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        for _ in range(2)
    ]
    go.touch()
    results = [child.communicate(timeout=120) for child in children]
    for child, (_, err) in zip(children, results, strict=True):
        assert child.returncode == 0, err
    assert results[0][0] == results[1][0] != ""
    assert len(_converted(cache)) == 1
    assert not list(cache.glob("*.part"))
    (x, _), _ = imdb.load_data(
        str(source) if where == "local" else "imdb.npz", num_words=50
    )
    assert len(x) == 2000


def test_public_exports() -> None:
    import safenpz.datasets as datasets

    assert datasets.__all__ == ["imdb", "keras_compat", "reuters"]
    assert imdb.__all__ == ["decode_review", "get_word_index", "load_data"]
    assert reuters.__all__ == [
        "decode_newswire",
        "get_label_names",
        "get_word_index",
        "load_data",
    ]
    assert safenpz.datasets is datasets


def test_cli_fetch_downloads_and_caches(
    server: _Server,
    keras_data: Any,
    monkeypatch: pytest.MonkeyPatch,
    cache: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from safenpz.cli import main

    _serve(server, monkeypatch, "reuters.npz", keras_data.reuters())
    assert main(["fetch", "reuters"]) == 0
    assert "reuters: 120 train / 30 test rows, cached" in capsys.readouterr().out
    assert server.hits == {"reuters.npz": 1}
    assert _converted(cache)
    server.files["reuters.npz"] = b"corrupt"  # a later fetch would be refused
    assert main(["fetch", "reuters"]) == 0  # served from the converted copy
    assert server.hits == {"reuters.npz": 1}


def test_cli_fetch_hash_mismatch_is_one_line(
    server: _Server,
    keras_data: Any,
    monkeypatch: pytest.MonkeyPatch,
    cache: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from safenpz.cli import main

    _serve(server, monkeypatch, "imdb.npz", keras_data.imdb())
    server.files["imdb.npz"] += b"tampered"
    assert main(["fetch", "imdb"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: HashMismatchError: ")
    assert "Traceback" not in err
    assert not list(cache.glob("imdb*"))
