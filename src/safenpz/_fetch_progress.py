"""The download progress bar of :mod:`safenpz._fetch`, drawn on stderr.

tqdm's bar (rate and ETA) when tqdm is installed (the ``progress`` extra),
else a built-in one line bar redrawn at most every 0.1 s. Neither ever fails a
download: errors writing to the stream are swallowed.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any, Final, Protocol, TextIO

__all__ = ["Bar", "new_bar", "stderr_is_tty"]


def stderr_is_tty() -> bool:
    stream: TextIO | None = sys.stderr  # None under pythonw
    if stream is None:
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


class Bar(Protocol):
    def update(self, done: int) -> None: ...
    def close(self) -> None: ...


def _tqdm_class() -> Any:
    """tqdm's class when tqdm is installed (an optional extra), else None."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


def new_bar(stream: TextIO, label: str, total: int | None) -> Bar:
    tqdm = _tqdm_class()
    if tqdm is None:
        return _ProgressBar(stream, label, total)
    return _TqdmBar(tqdm, stream, label, total)


class _TqdmBar:
    """tqdm's bar (bytes, rate, ETA) behind :class:`_ProgressBar`'s interface."""

    def __init__(
        self, tqdm: Any, stream: TextIO, label: str, total: int | None
    ) -> None:
        self.done = 0
        self.bar = tqdm(
            total=total,
            desc=f"Downloading {label}",
            file=stream,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            mininterval=0.1,
            leave=True,
        )

    def update(self, done: int) -> None:
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # never fail a download
            self.bar.close()


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


class _ProgressBar:
    """One self-overwriting line on a text stream, redrawn at most every 0.1 s."""

    interval: Final = 0.1

    def __init__(self, stream: TextIO, label: str, total: int | None) -> None:
        self.stream = stream
        self.label = label
        self.total = total
        self.done = 0
        self.start = time.monotonic()
        self.last_draw = -float("inf")
        self.width = 0

    def update(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if now - self.last_draw >= self.interval:
            self._draw(now)

    def close(self) -> None:
        self._draw(time.monotonic())
        self._write("\n")

    def _draw(self, now: float) -> None:
        self.last_draw = now
        elapsed = max(now - self.start, 1e-6)
        line = f"Downloading {self.label}: {_human(self.done)}"
        if self.total:
            pct = 100.0 * self.done / self.total
            line += f" / {_human(self.total)} ({pct:3.0f}%)"
        line += f" {_human(self.done / elapsed)}/s"
        pad = " " * max(self.width - len(line), 0)
        self.width = len(line)
        self._write("\r" + line + pad)

    def _write(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # never fail a download
            self.stream.write(text)
            self.stream.flush()
