"""The strict scan's report, from the compiled pre-check's facts.

When the pre-check (:mod:`safenpz._pickle._prescan`) proves a stream, the
strict scan passes and its :class:`~safenpz._pickle._report.PickleReport` is
determined by a few facts the same pass collects:
``_verdict.report(data, max_depth, max_items, encoding, plain_codes)`` gives
``None`` (not proven) or

* the protocol (``PROTO``'s argument, 0 without one);
* how many times each opcode code was executed, and how many maximal runs
  of :data:`~safenpz._pickle._values.PLAIN_CODES` opcodes there were (the
  scan loop counts such a run once, as ``"(plain data)"``);
* every global named: the opcode's offset and code, and where its module
  and name lie in the data (printable ASCII there: the pre-check takes no
  other);
* the result: its kind (the C record kind), and for an array its dtype
  (byte order and code, ``"<f8"``) and shape, for a NumPy scalar its dtype.

:func:`fast_report` maps them to the report exactly as the loop builds it
(:func:`safenpz._pickle._scanner._tally`, the container count of
:mod:`safenpz._pickle._handlers`, :func:`safenpz._pickle._general._named`
and ``_describe``); a stream not proven gives ``None`` and the scan runs.
The test suite checks every fast report against the loop's
(``_prescan.CROSS_CHECK``).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from . import _prescan
from ._globals import SAFE_GLOBALS
from ._opcodes import BY_CODE, OPS
from ._report import GlobalRef, PickleReport
from ._values import PLAIN_CODES

__all__ = ["fast_report"]

_PLAIN = bytes(PLAIN_CODES)
#: Opcodes whose container the scan counts (the empty tuple is one shared
#: object: not counted), as :mod:`safenpz._pickle._handlers` does.
_COUNTED = frozenset(op.code for op in OPS.values() if op.container) - {
    OPS["EMPTY_TUPLE"].code
}
#: The type names of the result, by the C record kind (_verdict.c's K_*).
_KINDS = {
    2: "NoneType",
    3: "bool",
    4: "int",
    5: "int",
    6: "float",
    7: "str",
    8: "bytes",
    10: "list",
    11: "dict",
    12: "tuple",
    13: "ndarray",
}
_NPSCALAR = 9


def fast_report(
    data: bytes, max_depth: int, max_items: int, encoding: str
) -> PickleReport | None:
    """The strict scan's report of `data` with these limits and `encoding`,
    when the pre-check proves the stream (``None``: not proven, the scan
    must run)."""
    facts = _prescan.facts(data, max_depth, max_items, encoding, _PLAIN)
    if facts is None:
        return None
    protocol, counts, plain_runs, globs, result = facts
    report = PickleReport(protocol=protocol, length=len(data))
    report.opcodes = _opcodes(counts, plain_runs)
    report.containers = sum(n for c, n in counts.items() if c in _COUNTED)
    report.globals = [_global(data, *g) for g in globs]
    kind, dtype, shape = result
    if kind == _NPSCALAR:
        assert dtype is not None
        report.result = np.dtype(dtype).type.__name__
    else:
        report.result = _KINDS[kind]
    if shape is not None:
        report.shape, report.dtype = shape, np.dtype(dtype)
    return report


def _opcodes(counts: dict[int, int], plain_runs: int) -> Counter[str]:
    """``report.opcodes``: each opcode by name, a run of plain ones once."""
    ops: Counter[str] = Counter()
    if plain_runs:
        ops["(plain data)"] = plain_runs
    for c, n in counts.items():
        if c not in _PLAIN:
            ops[BY_CODE[c].name] += n
    return ops


def _global(
    data: bytes, at: int, op: int, mo: int, mn: int, no: int, nn: int
) -> GlobalRef:
    """A :class:`GlobalRef` as :func:`safenpz._pickle._general._named` makes it."""
    mod = data[mo : mo + mn].decode("ascii")
    nam = data[no : no + nn].decode("ascii")
    return GlobalRef(mod, nam, BY_CODE[op].name, at, (mod, nam) in SAFE_GLOBALS)
