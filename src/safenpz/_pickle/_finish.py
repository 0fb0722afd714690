"""The end of a decode: what the unpickler returned, as plain data.

:func:`finish` gives the final walk's result (:mod:`safenpz._pickle._walk`:
builders swapped for their values, only plain data, no cycle, at most
``max_depth`` levels and ``max_items`` items, hashable keys) the cheapest
way that is sure to give that result:

1. **Nothing to walk** (:func:`nothing_to_walk`), when the scan proved the
   rest: the value is the unpickler's own containers of leaves, with at most
   one builder, at the top (the object array of a ``.npy`` file), which is
   then finished. Nothing is visited.
2. **In bulk** (:func:`~safenpz._pickle._walk_bulk.bulk_walk`): a level at a
   time, at C speed; it leaves to the exact walk what it does not handle.
3. **The exact walk** (:class:`~safenpz._pickle._walk.Walker`), which also
   raises the walk's errors.

Why "nothing to walk" is sure
-----------------------------
Each of the walk's checks is known without it when

* **types**: the only objects the C unpickler makes that are not plain data
  come from ``find_class`` (the decoder's constructors, :mod:`._constructors`)
  and from calling them: of the globals in :data:`PROVEN`, leaves or builders
  (each builder registers itself in ``ctx.made``); any other global sends
  the value to the walk. The buffer opcodes, which would leave a
  ``memoryview``, are refused by the scan. Once the unpickler (and its memo)
  is gone, CPython counts every reference a container holds: a constructor or
  builder that no container of the value holds has exactly as many
  references as a new object held by the same list
  (:func:`_held_only_here`). The value may be a builder itself (then it is
  finished here, as the walk would), but may not hold any;
* **cycles and depth**: the scan of the same stream with the same limits
  checked the containment graph at ``STOP``
  (:func:`~safenpz._pickle._graph.check_graph`): no container contains
  itself, and the walk's nesting is at most the graph's, within
  ``max_depth``. A ``max_depth`` beyond
  :data:`~safenpz._pickle._walk_bulk.MAX_LEVELS` sends the value to the walk,
  which then decides about nesting too deep for Python's recursion limit;
* **items**: each item of a container the C unpickler fills was pushed by an
  opcode of at least one byte, so a stream of `size` bytes holds at most
  `size` items (``set()`` and ``frozenset()``, which copy a list that may be
  shared, are not in :data:`PROVEN`);
* **OrderedDicts**, which ``BUILD`` could give attributes, are not either;
* **hashable keys**: only swapping a builder can make a key unhashable, and
  there is none to swap.
"""

from __future__ import annotations

import sys
from typing import Any

from ._context import Context
from ._walk import LEAF_TYPES, Walker
from ._walk_bulk import BAIL, BUILDER_TYPES, MAX_LEVELS, bulk_walk

__all__ = ["PROVEN", "finish", "nothing_to_walk"]

#: The containers the C unpickler makes itself.
_NATIVE = frozenset({list, tuple, dict, set, frozenset})
#: The globals (by name) whose values are leaves or builders: a stream that
#: names any other (``set``, ``frozenset``: they copy a list that may be
#: shared; ``OrderedDict``: it may carry attributes) is walked.
PROVEN = frozenset(
    {"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"}
    | {"encode", "bytes", "bytearray", "complex"}
)
#: Reference counts mean what the proof needs only in CPython.
_COUNTS_REFERENCES = sys.implementation.name == "cpython"
#: Items the bulk walk may count per byte of the stream before it leaves the
#: value to the exact walk (objects shared through the memo count each time).
_BULK_ITEMS_PER_BYTE = 8


def _held_only_here(objs: list[Any]) -> bool:
    """Whether no reference to an item of ``objs[1:]`` is held outside `objs`.

    ``objs[0]`` must be a new object held only by `objs` (the yardstick); each
    other item must be in `objs` once and held by nothing the caller still
    references. Stops at the first item held elsewhere. Every reference a
    container holds is counted, so an item in a container never passes; a
    reference the caller forgot (a debugger's, say) only makes it answer
    False, and the value is walked.
    """
    counts = map(sys.getrefcount, objs)
    return all(map(next(counts).__eq__, counts))


def nothing_to_walk(
    root: Any, ctx: Context, constructors: dict[tuple[str, str], Any], size: int
) -> bool:
    """Whether `root` needs no walk (see the module docstring).

    Only valid after a strict scan of the same `size`-byte stream with the
    same limits passed, and after the unpickler is gone. Takes the builders
    out of ``ctx.made`` and empties `constructors` (so that only a list held
    here references them).
    """
    made, ctx.made = ctx.made, []
    held: list[Any] = [object()]  # the yardstick
    held += [obj for obj in made if obj is not root]
    held += constructors.values()
    names = {name for _, name in constructors}
    constructors.clear()
    del made
    tp = type(root)
    return (
        _COUNTS_REFERENCES
        and size <= ctx.limits.max_items
        and ctx.limits.max_depth <= MAX_LEVELS
        and names <= PROVEN
        and (tp in LEAF_TYPES or tp in _NATIVE or tp in BUILDER_TYPES)
        and _held_only_here(held)
    )


def finish(
    root: Any,
    ctx: Context,
    constructors: dict[tuple[str, str], Any],
    *,
    scanned: bool,
    size: int,
) -> Any:
    """`root` as plain data: the final walk's result (see the module docstring).

    Parameters
    ----------
    root : object
        What the unpickler returned (the unpickler must be gone).
    ctx : Context
        The decode's context; its builders are taken out of ``ctx.made``.
    constructors : dict
        The constructors ``find_class`` handed out, by ``(module, name)``;
        emptied.
    scanned : bool
        Whether a strict scan of the stream, with ``ctx.limits``, passed.
    size : int
        The stream's length in bytes.
    """
    if scanned and nothing_to_walk(root, ctx, constructors, size):
        return root.result() if type(root) in BUILDER_TYPES else root
    ctx.made = []
    constructors.clear()
    out = bulk_walk(root, ctx, _BULK_ITEMS_PER_BYTE * size + 4096)
    if out is BAIL:
        out = Walker(ctx).walk(root, 0)
    return out
