"""The containment graph: cycles and nesting decided before decoding.

Every container the stream creates is a :class:`~safenpz._pickle._values.Node`,
with an edge to each container an opcode puts into it. At ``STOP`` the scanner
checks, for what the stream returns, what the decoder's final walk would
otherwise be the first to see: that no container contains itself and that at
most ``max_depth + 1`` containers lie inside one another (the walk's depth 0
is the outermost), so ``safenpz scan`` and :func:`safenpz.load` reach one
verdict.

The graph is a superset of what the walk visits: a ``REDUCE`` result holds its
args tuple and a ``BUILD`` target its state, so the walk's depth is
over-estimated by one level per ``REDUCE`` and one per ``BUILD`` (an object
array's items are three levels below it here, one in the walk).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NoReturn

from ._values import Node, StackError

__all__ = ["check_graph"]


def check_graph(root: object, max_depth: int) -> None:
    """Refuse a container holding itself, or nesting deeper than the walk
    allows, in what `root` (the value ``STOP`` returns) holds.

    One iterative depth-first search, linear in containers + edges: a kid on
    the current path is a cycle; the longest path from `root`, counted in
    containers, may not exceed ``max_depth + 1``. The whole graph is searched
    before the depth is judged, so a cycle is always a format error, however
    deep.

    Raises
    ------
    StackError
        A cycle (format) or nesting deeper than `max_depth` (limit).
    """
    if not isinstance(root, Node) or not root.kids:
        return
    root.h = -1
    path: list[Node] = [root]
    kids_of: list[Iterator[Node]] = [iter(root.kids)]
    best = [1]
    while path:
        for kid in kids_of[-1]:
            if not kid.kids:  # an empty container (maybe a shared one)
                best[-1] = max(best[-1], 2)
                continue
            h = kid.h
            if h > 0:
                best[-1] = max(best[-1], h + 1)
                continue
            if h < 0:
                _cycle()
            below = kid.kids
            if len(below) == 1 and below[0].h > 0:  # one kid, searched already
                kid.h = h = below[0].h + 1  # (a NumPy scalar and its args)
                best[-1] = max(best[-1], h + 1)
                continue
            kid.h = -1
            path.append(kid)
            kids_of.append(iter(kid.kids))
            best.append(2)  # `kid` holds a container
            break
        else:
            node = path.pop()
            kids_of.pop()
            node.h = h = best.pop()
            if best:
                best[-1] = max(best[-1], h + 1)
            elif h > max_depth + 1:
                _too_deep(h - 1, max_depth)


def _cycle() -> NoReturn:
    msg = (
        "a container that contains itself (directly or through "
        "other containers): plain data holds no cycles"
    )
    raise StackError(msg)


def _too_deep(depth: int, max_depth: int) -> NoReturn:
    msg = (
        f"containers (lists, dicts, sets, tuples, arrays) nested deeper "
        f"than max_depth={max_depth}"
    )
    raise StackError(msg, "limit", limit="max_depth", value=depth, maximum=max_depth)
