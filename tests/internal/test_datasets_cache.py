"""White-box tests of safenpz.datasets' downloads and converted cache: the
known hashes are replaced by those of generated files (``_spec.KNOWN_HASHES``),
and spies on the private decode and hash steps check what runs when. No
network: downloads go to a ThreadingHTTPServer on 127.0.0.1 (the ``server``
fixture) through ``$SAFENPZ_DATASETS_URL``. The loaders' public behaviour is
tested in tests/test_datasets.py.
"""

from __future__ import annotations

import hashlib
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

from dataset_home import assert_same_data, converted, isolate
from dataset_server import Server, serve
from safenpz import (
    DownloadError,
    HashMismatchError,
    UnsafeFileError,
    _fetch,
)
from safenpz.datasets import _pipeline, _reference, _source, _spec, imdb, reuters


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache, an empty Keras home, no real downloads."""
    return isolate(tmp_path, monkeypatch)


# -- local HTTP server ----------------------------------------------------------------


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("SAFENPZ_DATASETS_URL", srv.url)
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- which path runs -------------------------------------------------------------------


def test_vectorised_path_for_plain_arguments(
    keras_data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        msg = "the slow reference path was used"
        raise AssertionError(msg)

    monkeypatch.setattr(_reference, "keras_steps", refuse)
    file = str(keras_data.imdb())
    plain: list[dict[str, Any]] = [
        {},
        {"num_words": 10, "skip_top": 3, "maxlen": 20, "seed": 1},
    ]
    for kwargs in plain:
        imdb.load_data(file, **kwargs)
        imdb.load_data(file, output="ragged", **kwargs)


# -- downloads -------------------------------------------------------------------------


def test_download_checked_and_cached(
    server: Server, keras_data: Any, monkeypatch: pytest.MonkeyPatch, cache: Path
) -> None:
    source = keras_data.imdb()
    serve(server, monkeypatch, "imdb.npz", source)
    first = imdb.load_data(num_words=50)
    assert server.hits == {"imdb.npz": 1}
    assert (cache / "imdb.npz").read_bytes() == source.read_bytes()
    assert [p.name for p in converted(cache)] == [
        f"imdb-{_sha256(source)[:16]}.safenpz.npz"
    ]
    # Later loads use the converted copy only: no download, no pickle, and
    # they work offline even without the downloaded file.
    (cache / "imdb.npz").unlink()
    monkeypatch.setenv("SAFENPZ_OFFLINE", "1")
    assert_same_data(imdb.load_data(num_words=50), first)
    assert server.hits == {"imdb.npz": 1}


def test_download_progress_bar(
    server: Server,
    keras_data: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    serve(server, monkeypatch, "reuters.npz", keras_data.reuters())
    reuters.load_data(progress=True)
    assert "Downloading reuters.npz" in capsys.readouterr().err


def test_corrupt_download_is_refused_and_nothing_cached(
    server: Server, keras_data: Any, monkeypatch: pytest.MonkeyPatch, cache: Path
) -> None:
    serve(server, monkeypatch, "imdb.npz", keras_data.imdb())
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
    server: Server,
    keras_data: Any,
    monkeypatch: pytest.MonkeyPatch,
    cache: Path,
) -> None:
    serve(server, monkeypatch, "reuters.npz", keras_data.reuters())
    server.modes["reuters.npz"] = mode
    with pytest.raises(DownloadError, match=match):
        reuters.load_data()
    assert not any(p.name.startswith("reuters") for p in cache.iterdir())


def test_keras_cache_copy_is_reused(
    server: Server, keras_data: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source = keras_data.imdb()
    serve(server, monkeypatch, "imdb.npz", source)
    keras_datasets = tmp_path / "keras-home" / "datasets"
    keras_datasets.mkdir(parents=True)
    (keras_datasets / "imdb.npz").write_bytes(source.read_bytes())
    (x_train, _), _ = imdb.load_data()
    assert server.hits == {}
    assert len(x_train) == 120


def test_bare_name_other_than_default(
    server: Server, keras_data: Any, monkeypatch: pytest.MonkeyPatch, cache: Path
) -> None:
    # Keras's path= names the cache entry; the URL stays the dataset's.
    serve(server, monkeypatch, "imdb.npz", keras_data.imdb())
    imdb.load_data("my_imdb.npz")
    assert server.hits == {"imdb.npz": 1}
    assert (cache / "my_imdb.npz").is_file()


def test_word_index_download(
    server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source = tmp_path / "imdb_word_index.json"
    source.write_text(json.dumps({"the": 1, "a": 2}))
    serve(server, monkeypatch, "imdb_word_index.json", source)
    assert imdb.get_word_index() == {"the": 1, "a": 2}
    source.write_text(json.dumps({"x": 1}))
    server.files["reuters_word_index.json"] = source.read_bytes()  # md5 unknown
    with pytest.raises(HashMismatchError):
        reuters.get_word_index()


def test_real_hashes_are_the_defaults() -> None:
    # SPEC section 4: the hashes Keras 3.15.1 checks.
    imdb_sha = "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"
    reuters_sha = "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916"
    assert {
        "imdb.npz": f"sha256:{imdb_sha}",
        "imdb_word_index.json": "md5:bfafd718b763782e994055a2d397834f",
        "reuters.npz": f"sha256:{reuters_sha}",
        "reuters_word_index.json": "md5:4d44cc38712099c9e383dc6e5f11a921",
    } == _spec.KNOWN_HASHES


# -- local paths and the converted cache -----------------------------------------------


def test_local_path_is_converted_once(
    keras_data: Any, monkeypatch: pytest.MonkeyPatch, cache: Path
) -> None:
    file = str(keras_data.imdb())
    first = imdb.load_data(file, num_words=40)
    [conv] = converted(cache)
    assert conv.name.startswith(f"imdb-{_sha256(Path(file))[:16]}")
    other = _reference_run(file, seed=9, maxlen=20, num_words=40)
    # The second load neither decodes the source nor hashes it again.
    monkeypatch.setattr(_source, "decode_source", _forbidden("decode_source"))
    monkeypatch.setattr(_fetch, "file_hash", _forbidden("file_hash"))
    assert_same_data(imdb.load_data(file, num_words=40), first)
    assert_same_data(imdb.load_data(file, num_words=40, seed=9, maxlen=20), other)


def _forbidden(name: str) -> Any:
    def fail(*args: object, **kwargs: object) -> None:
        msg = f"{name} was called"
        raise AssertionError(msg)

    return fail


def _reference_run(file: str, **kwargs: Any) -> Any:
    """The same load through the decoded source, bypassing the cache."""
    loaded = _source.decode_source(imdb.SPEC, Path(file))
    return _pipeline.run_pipeline(loaded, imdb.SPEC, _reference.Params(**kwargs))


def test_local_copy_of_the_known_file_shares_the_cache(
    keras_data: Any, monkeypatch: pytest.MonkeyPatch, cache: Path
) -> None:
    # A local file whose sha256 is the known one is the official dataset:
    # its converted copy also serves loads by the bare name, offline.
    source = keras_data.imdb()
    monkeypatch.setitem(_spec.KNOWN_HASHES, "imdb.npz", f"sha256:{_sha256(source)}")
    first = imdb.load_data(str(source), num_words=20)
    monkeypatch.setenv("SAFENPZ_OFFLINE", "1")
    monkeypatch.setattr(_source, "decode_source", _forbidden("decode_source"))
    assert_same_data(imdb.load_data(num_words=20), first)
    assert not (cache / "imdb.npz").exists()


def test_changed_local_file_is_converted_again(keras_data: Any, cache: Path) -> None:
    path = keras_data.imdb()
    imdb.load_data(str(path))
    keras_data.imdb(seed=5)  # same name, new content
    (x_train, _), _ = imdb.load_data(str(path))
    assert len(converted(cache)) == 2
    assert_same_data(imdb.load_data(str(path)), _reference_run(str(path)))
    assert len(x_train) == 120


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
    [conv] = converted(cache)
    damage(conv)
    calls = []
    decode = _source.decode_source

    def spy(*args: Any) -> Any:
        calls.append(args)
        return decode(*args)

    monkeypatch.setattr(_source, "decode_source", spy)
    assert_same_data(imdb.load_data(file), first)
    assert len(calls) == 1  # rebuilt from the source
    assert_same_data(imdb.load_data(file), first)
    assert len(calls) == 1  # and the rebuilt copy is used again


# -- hostile files ---------------------------------------------------------------------


def test_hostile_download(
    server: Server, keras_data: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sentinel = tmp_path / "sentinel"
    serve(server, monkeypatch, "imdb.npz", keras_data.hostile(sentinel))
    with pytest.raises(UnsafeFileError):
        imdb.load_data()
    assert not sentinel.exists()


# -- two processes at once -------------------------------------------------------------


_CHILD = textwrap.dedent(
    """
    import hashlib, os, sys, time
    from safenpz.datasets import _spec, imdb
    _spec.KNOWN_HASHES["imdb.npz"] = sys.argv[2]
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
    server: Server,
    keras_data: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    cache: Path,
) -> None:
    source = keras_data.imdb(n_train=2000, n_test=2000)
    serve(server, monkeypatch, "imdb.npz", source)
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
    assert len(converted(cache)) == 1
    assert not list(cache.glob("*.part"))
    (x, _), _ = imdb.load_data(
        str(source) if where == "local" else "imdb.npz", num_words=50
    )
    assert len(x) == 2000


# -- safenpz fetch ---------------------------------------------------------------------


def test_cli_fetch_downloads_and_caches(
    server: Server,
    keras_data: Any,
    monkeypatch: pytest.MonkeyPatch,
    cache: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from safenpz.cli import main

    serve(server, monkeypatch, "reuters.npz", keras_data.reuters())
    assert main(["fetch", "reuters"]) == 0
    assert "reuters: 120 train / 30 test rows, cached" in capsys.readouterr().out
    assert server.hits == {"reuters.npz": 1}
    assert converted(cache)
    server.files["reuters.npz"] = b"corrupt"  # a later fetch would be refused
    assert main(["fetch", "reuters"]) == 0  # served from the converted copy
    assert server.hits == {"reuters.npz": 1}


def test_cli_fetch_hash_mismatch_is_one_line(
    server: Server,
    keras_data: Any,
    monkeypatch: pytest.MonkeyPatch,
    cache: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from safenpz.cli import main

    serve(server, monkeypatch, "imdb.npz", keras_data.imdb())
    server.files["imdb.npz"] += b"tampered"
    assert main(["fetch", "imdb"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: HashMismatchError: ")
    assert "Traceback" not in err
    assert not list(cache.glob("imdb*"))
