"""The parameter documentation the ``load_data`` functions share.

IMDb's and Reuters's ``load_data`` take the same Keras parameters and the
same safenpz options, with the same meaning; their docstrings hold
``%(name)s`` placeholders that :func:`fill_doc` replaces with the fragments
below (the matplotlib ``%(name)s`` convention), so each text exists once.
A fragment may itself use words of the dataset (``%(row)s`` is
``"review"`` for IMDb), filled from the keywords of :func:`fill_doc`.

Examples
--------
>>> @fill_doc()
... def f():
...     '''Parameters
...     ----------
...     %(progress)s
...     '''
>>> print(f.__doc__.strip())
Parameters
    ----------
    progress : bool, optional
        Show a download progress bar (default: when stderr is a terminal).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import Final, TypeVar

__all__ = ["FRAGMENTS", "WORDS", "fill_doc"]

_F = TypeVar("_F", bound=Callable[..., object])

#: the words fragments use, and their defaults
WORDS: Final[dict[str, str]] = {
    "row": "row",  # one row of the dataset: "review", "newswire"
    "rows": "rows",
    "remote": "data.npz",  # the file name at the origin
    "seed_order": "",  # how the shuffle runs over the splits, if it matters
}

#: name -> the numpydoc text of one or more parameters, written flush left
FRAGMENTS: Final[dict[str, str]] = {
    "path": """
path : str or path-like, default "%(remote)s"
    A bare file name is an entry of the download cache (as in Keras): it
    is taken from safenpz's cache, or a matching copy in Keras's cache
    (``~/.keras/datasets``), or downloaded, and always checked against
    the published sha256. A path with a directory part
    (``"./%(remote)s"``, ``"/data/%(remote)s"``) is a local file, used as
    it is; it is still decoded safely, whatever it contains.
""",
    "vocabulary": """
num_words : int, optional
    Keep ids below ``num_words`` (after the ``index_from`` shift); others
    become `oov_char`. If falsy (None or 0), ``num_words`` is the largest
    id present, which itself then becomes `oov_char` (Keras's quirk).
skip_top : int, default 0
    Ids below `skip_top` also become `oov_char` (the comparison sees the
    shifted ids and the start character, as in Keras).
""",
    "maxlen": """
maxlen : int, optional
    If truthy, keep only %(rows)s *shorter* than `maxlen` (counting the
    start character); this filters, it does not truncate (use
    ``output="padded"`` with `pad_maxlen` to truncate).
""",
    "seed": """
seed : int, default 113
    Seed of the shuffle (``np.random.RandomState(seed)``%(seed_order)s).
""",
    "markers": """
start_char : int or None, default 1
    Put in front of every %(row)s; None for none.
oov_char : int or None, default 2
    Replaces out-of-vocabulary ids; None drops them instead.
index_from : int, default 3
    Added to every word id.
""",
    "output": """
output : {"lists", "ragged", "padded"}, default "lists"
    ``"lists"``: Keras's types (object arrays of Python lists of Python
    ints; a 2-D object array if all %(rows)s happen to have the same
    length). ``"ragged"``: each ``x`` is a :class:`~safenpz.RaggedArray`
    (fastest, least memory; ``int32`` values when every id fits, as for
    the Keras datasets, else ``int64``). ``"padded"``: each
    ``x`` is ``keras.utils.pad_sequences(x, maxlen=pad_maxlen,
    dtype=pad_dtype, padding=padding, truncating=truncating,
    value=pad_value)``. The labels are the same in every mode.
""",
    "padding": """
pad_maxlen : int, optional
    ``output="padded"`` only: number of columns (default: the longest
    %(row)s). Unrelated to `maxlen`, which filters.
padding, truncating : {"pre", "post"}, default "pre"
    ``output="padded"`` only: where to pad and where to cut.
pad_value : scalar, default 0
    ``output="padded"`` only: the padding value.
pad_dtype : data-type, default "int32"
    ``output="padded"`` only: dtype of the padded arrays.
""",
    "compat": """
compat : {None, "keras3", "keras2.2"}, default None
    None or ``"keras3"``: Keras 3.15.1. ``"keras2.2"``: reproduce Keras
    2.2.x, which seeded NumPy's *global* RNG with `seed` and shuffled with
    it (this function does the same, so the global RNG is left in the state
    Keras 2.2 left it in).
""",
    "progress": """
progress : bool, optional
    Show a download progress bar (default: when stderr is a terminal).
""",
    "file_errors": """
DownloadError
    The file cannot be downloaded (or offline mode is on and it is not
    cached; the message says where to put it).
HashMismatchError
    The download does not match the published sha256; nothing is kept.
UnsafeFileError
    The file would need code execution to load; nothing from it ran.
FormatError, LimitError
    The file is malformed or exceeds a safety limit.
""",
}


def fill_doc(**words: str) -> Callable[[_F], _F]:
    """Fill the ``%(name)s`` placeholders of a docstring from :data:`FRAGMENTS`.

    Each placeholder stands alone on a line at the docstring's indentation
    (4 spaces); `words` fill the fragments' own words (see :data:`WORDS`).
    """
    filled = {**WORDS, **words}
    fragments = {
        name: textwrap.indent(text.strip("\n") % filled, "    ")[4:]
        for name, text in FRAGMENTS.items()
    }

    def apply(func: _F) -> _F:
        func.__doc__ = (func.__doc__ or "") % fragments
        return func

    return apply
