"""The converted dataset cache is served only when safenpz vouched for it, and
every JSON file of the cache (and a word index) is read with a size cap, never
from a device, and without RecursionError (issue 8)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from safenpz import FormatError
from safenpz.datasets import _source, _store, _words, imdb


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("SAFENPZ_CACHE_DIR", str(cache))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setenv("SAFENPZ_DATASETS_URL", "http://127.0.0.1:9/")  # refused
    monkeypatch.delenv("SAFENPZ_OFFLINE", raising=False)
    return cache


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Records every decode of a source file (a rebuild of the copy)."""
    calls: list[Any] = []
    decode = _source.decode_source

    def spy(*args: Any) -> Any:
        calls.append(args)
        return decode(*args)

    monkeypatch.setattr(_source, "decode_source", spy)
    return calls


def _labels(result: Any) -> list[Any]:
    (_, y_train), (_, y_test) = result
    return [y_train.tolist(), y_test.tolist()]


def _forge(copy: Path) -> None:
    """Rewrite the copy with flipped labels; its own record stays valid (it
    describes shapes and the source hash, which do not change)."""
    with np.load(copy, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["y_train"] = 1 - arrays["y_train"]
    tmp = copy.with_name("forged.npz")
    with open(tmp, "wb") as fp:
        np.savez(fp, **arrays)
    os.replace(tmp, copy)


def test_planted_copy_with_a_valid_record_is_not_served(
    keras_data: Any, cache: Path, decodes: list[Any]
) -> None:
    file = str(keras_data.imdb())
    first = imdb.load_data(file, output="ragged")
    assert len(decodes) == 1
    [copy] = sorted(cache.glob("*.safenpz.npz"))
    assert _store._digest_path(copy).is_file()
    _forge(copy)
    again = imdb.load_data(file, output="ragged")
    assert _labels(again) == _labels(first)  # not the forged labels
    assert len(decodes) == 2  # rebuilt from the verified source
    imdb.load_data(file, output="ragged")
    assert len(decodes) == 2  # and the rebuilt copy is served again


def test_copy_without_its_digest_is_not_served(
    keras_data: Any, cache: Path, decodes: list[Any]
) -> None:
    file = str(keras_data.imdb())
    first = imdb.load_data(file, output="ragged")
    [copy] = sorted(cache.glob("*.safenpz.npz"))
    _forge(copy)
    _store._digest_path(copy).unlink()
    assert _labels(imdb.load_data(file, output="ragged")) == _labels(first)
    assert len(decodes) == 2


def test_copied_or_touched_copy_is_checked_by_content(
    keras_data: Any, cache: Path, decodes: list[Any]
) -> None:
    file = str(keras_data.imdb())
    first = imdb.load_data(file, output="ragged")
    [copy] = sorted(cache.glob("*.safenpz.npz"))
    backup = copy.with_name("backup")
    shutil.copy2(copy, backup)
    os.replace(backup, copy)  # same bytes, new inode and times
    assert _labels(imdb.load_data(file, output="ragged")) == _labels(first)
    assert len(decodes) == 1  # same content: served, no rebuild


@pytest.mark.parametrize("what", ["device", "nested", "huge"])
def test_hostile_sidecars_are_ignored_not_read(
    what: str, keras_data: Any, cache: Path, decodes: list[Any]
) -> None:
    file = str(keras_data.imdb())
    first = imdb.load_data(file, output="ragged")
    [copy] = sorted(cache.glob("*.safenpz.npz"))
    sidecars = [_store._digest_path(copy), *cache.glob("imdb-source-*.json")]
    assert len(sidecars) == 2
    for sidecar in sidecars:
        sidecar.unlink()
        if what == "device":
            sidecar.symlink_to("/dev/zero")
        elif what == "nested":
            sidecar.write_text("[" * 200_000)
        else:
            sidecar.write_text(" " * (1 << 20) + "{}")
    assert _labels(imdb.load_data(file, output="ragged")) == _labels(first)
    assert len(decodes) == 2


@pytest.mark.parametrize("what", ["device", "nested", "fifo"])
def test_hostile_word_index_is_a_format_error(what: str, tmp_path: Path) -> None:
    path = tmp_path / "index.json"
    if what == "device":
        path.symlink_to("/dev/zero")
    elif what == "fifo":
        os.mkfifo(path)
    else:
        path.write_text('{"a": ' + "[" * 200_000)
    with pytest.raises(FormatError):
        imdb.get_word_index(str(path))


def test_oversized_word_index_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_words, "_MAX_WORD_INDEX_BYTES", 100)
    path = tmp_path / "index.json"
    path.write_text(json.dumps({f"w{i}": i for i in range(100)}))
    with pytest.raises(FormatError, match="larger than 100 bytes"):
        imdb.get_word_index(str(path))
