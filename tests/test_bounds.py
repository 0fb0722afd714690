"""The bounds harness (issue 8): every attack of :mod:`attacks` runs in a
child process under a 2 GB address-space cap and a 10 s alarm, and must raise
exactly the expected safenpz error (or load), create no sentinel, and stay
within 10 s and 1.5 GB peak RSS. Batches keep it to about a minute on two
cores. Also checks that SECURITY.md's attack table is the catalogue's."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from attacks import ATTACKS, markdown_table

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
AS_CAP = 2 * 2**30
SECONDS = 10
RSS_CAP_KB = 1536 * 1024
BATCHES = 4
#: actions whose message must hold the expected words (scan reports a verdict)
_MESSAGE_CHECKED = ("load", "save", "convert", "convert-parquet")


def _batch(indices: list[int], work: Path) -> list[dict[str, Any]]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(TESTS)]),
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    proc = subprocess.run(
        [
            sys.executable,
            str(TESTS / "bounds_child.py"),
            str(work),
            str(AS_CAP),
            str(SECONDS),
            *map(str, indices),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=SECONDS * len(indices) + 60,
        check=False,
        cwd=str(work),
    )
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    done = {r["index"] for r in lines}
    missing = [i for i in indices if i not in done]
    assert not missing, (
        f"the child died (exit {proc.returncode}) at {ATTACKS[missing[0]].id}: "
        f"{proc.stderr[-3000:]}"
    )
    return lines


@pytest.mark.parametrize("batch", range(BATCHES))
def test_every_attack_within_bounds(batch: int, tmp_path: Path) -> None:
    indices = list(range(batch, len(ATTACKS), BATCHES))
    failures = []
    for res in _batch(indices, tmp_path):
        attack = ATTACKS[res["index"]]
        err = res["error"]
        problems = []
        if res["sentinel"]:
            problems.append("THE PAYLOAD RAN")
        if res["seconds"] > SECONDS:
            problems.append(f"took {res['seconds']:.1f} s")
        if res["peak_rss_kb"] > RSS_CAP_KB:
            problems.append(f"peak RSS {res['peak_rss_kb'] // 1024} MB")
        if attack.expect is None:
            if err is not None:
                problems.append(f"should load, raised {err['type']}: {err['message']}")
        else:
            want = attack.expect(
                attack.build(str(tmp_path / f"sentinel-{res['index']}"))
            )
            if err is None:
                problems.append(f"loaded; {want.error.__name__} expected")
            elif err["type"] != want.error.__name__ or not err["safenpz"]:
                problems.append(
                    f"raised {err['type']}, {want.error.__name__} expected: "
                    f"{err['message'][:300]}"
                )
            elif attack.action in _MESSAGE_CHECKED and not re.search(
                want.pattern(), err["message"]
            ):
                problems.append(f"message lacks {want.parts()}: {err['message'][:300]}")
        if problems:
            failures.append(f"{attack.id}: {'; '.join(problems)}")
    assert not failures, "\n".join(failures)


def test_catalogue_is_big_enough_and_unique() -> None:
    ids = [a.id for a in ATTACKS]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 100


def test_security_md_table_is_generated_from_the_catalogue() -> None:
    text = (ROOT / "SECURITY.md").read_text(encoding="utf-8")
    start = "<!-- attack-table:start (python tests/attacks.py) -->\n"
    end = "<!-- attack-table:end -->"
    table = text[text.index(start) + len(start) : text.index(end)]
    assert table == markdown_table(), (
        "SECURITY.md's attack table is stale: regenerate it with "
        "`python tests/attacks.py`"
    )
