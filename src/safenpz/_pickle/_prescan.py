"""A compiled pre-check that proves, for common streams, what the scan would say.

:func:`proven` answers one question about a pickle stream: *would the strict
scan* (:func:`safenpz.scan_pickle` with the load's limits and encoding)
*pass?* It answers ``True`` only when it has proven so, and ``False`` ("not
proven") for everything else: every stream it does not fully understand, and
every stream the scan would refuse. The loader
(:func:`safenpz._pickle._decode.safe_loads`) skips the Python scan after a
``True``; after a ``False`` the scan runs as before, so every refusal, every
error and every message still comes from the scan.

The check is :mod:`safenpz._pickle._verdict`, a C extension (built from
``_verdict.c`` when safenpz is installed; optional: without a compiler the
package installs without it and :func:`proven` always answers ``False``). It
reads the stream once, opcode by opcode, at C speed, over a closed subset of
pickle: literals, lists, tuples and dicts of them (keys that cannot be made
to collide: text, bytes, ints below 2**31, ``None``, booleans), the memo
(read back only for values that are not containers), and NumPy's own
layouts of arrays, dtypes and scalars in their canonical forms. Anything
else, anything near a limit, anything it is unsure about: ``False``. It
never builds, imports or calls anything.

Correctness never depends on this module: ``ENABLED = False`` gives the same
results (the differential tests), and the test suite runs with
``CROSS_CHECK = True``: every ``True`` is checked against the scan itself,
and a stream the scan refuses fails the test that met it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType

from .._limits import Limits

__all__ = ["AVAILABLE", "CROSS_CHECK", "ENABLED", "facts", "proven"]

_verdict: ModuleType | None
try:
    from . import _verdict  # type: ignore[attr-defined,no-redef,unused-ignore]
except ImportError:  # built without the extension: the scan decides
    _verdict = None

#: Whether the C extension is installed.
AVAILABLE = _verdict is not None
#: Switch for the differential tests (the scan alone is the reference).
ENABLED = True
#: Check every ``True`` against the strict scan (the test suite sets it).
CROSS_CHECK = False
#: The strict scan loop, for ``CROSS_CHECK`` (data, max_depth, max_items,
#: encoding -> the report, or raise): :mod:`safenpz._pickle._scanner` puts
#: its loop here when imported (it uses this module: no import back).
SCAN: Callable[[bytes, int, int, str], object] | None = None

_ENCODING_CODES = {"latin1": 0, "bytes": 1, "ASCII": 2}
#: What the C pass records for :mod:`safenpz._pickle._fastreport`.
Facts = tuple[
    int,
    dict[int, int],
    int,
    list[tuple[int, int, int, int, int, int]],
    tuple[int, str | None, tuple[int, ...] | None],
]


def proven(data: bytes, limits: Limits, encoding: str) -> bool:
    """Whether the strict scan of `data` with `limits` and `encoding` is
    proven to pass (``False``: not proven; the scan must run).

    Parameters
    ----------
    data : bytes
        The whole pickle stream.
    limits : Limits
        The load's limits (``max_depth`` and ``max_items`` are used).
    encoding : {"latin1", "bytes", "ASCII"}
        What the load makes of Python 2 strings.
    """
    if _verdict is None or not ENABLED:
        return False
    code = _ENCODING_CODES[encoding]
    # a limit beyond the C range is as good as sys.maxsize: whatever is
    # proven under a smaller limit holds under a larger one
    depth = min(limits.max_depth, sys.maxsize)
    items = min(limits.max_items, sys.maxsize)
    ok = bool(_verdict.check(data, depth, items, code))
    if ok and CROSS_CHECK:
        _cross_check(data, limits, encoding)
    return ok


def facts(
    data: bytes, max_depth: int, max_items: int, encoding: str, plain: bytes
) -> Facts | None:
    """What the same pass as :func:`proven` records of a stream it proves
    (``None``: not proven, or no extension, or ``ENABLED`` off), for
    :func:`safenpz._pickle._fastreport.fast_report`; `plain` holds the codes
    the scan counts by runs."""
    if _verdict is None or not ENABLED or encoding not in _ENCODING_CODES:
        return None
    if type(max_depth) is not int or type(max_items) is not int:
        return None  # the scan says what it makes of them
    code = _ENCODING_CODES[encoding]
    depth = min(max_depth, sys.maxsize)
    items = min(max_items, sys.maxsize)
    out: Facts | None = _verdict.report(data, depth, items, code, plain)
    return out


def _cross_check(data: bytes, limits: Limits, encoding: str) -> None:
    """Raise AssertionError if the strict scan refuses what was proven."""
    from .._exceptions import SafenpzError

    if SCAN is None:
        msg = "CROSS_CHECK is set but no scan is registered (_prescan.SCAN)"
        raise AssertionError(msg)
    try:
        SCAN(data, limits.max_depth, limits.max_items, encoding)
    except SafenpzError as err:
        msg = f"the pre-check proved a stream the scan refuses: {err}"
        raise AssertionError(msg) from err
