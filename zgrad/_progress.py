"""A text progress bar on stderr, shared by the toy studies and the validation suite.

Pure Python (no TensorFlow): it counts finished items, shows the elapsed time and an
estimate of the time left, and redraws itself in place on a terminal. Anywhere else (a
log file, CI) it writes one line per update, so logs stay readable.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

__all__ = ["ProgressBar", "wants_bar"]


def wants_bar(progress: Any, stream: Any = None) -> bool:
    """Resolve a ``progress=None/True/False`` option: None means "when ``stream`` is a terminal".

    Raises
    ------
    TypeError
        If ``progress`` is not None or a bool.

    Examples
    --------
    >>> import io
    >>> from zgrad._progress import wants_bar
    >>> wants_bar(None, io.StringIO()), wants_bar(True, io.StringIO())
    (False, True)
    """
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(
            f"progress must be None (a bar when stderr is a terminal), True or False; got {progress!r}."
        )
    if progress is None:
        stream = stream if stream is not None else sys.stderr
        return bool(getattr(stream, "isatty", lambda: False)())
    return progress


class ProgressBar:
    """A text progress bar with counts, elapsed time and an ETA.

    Parameters
    ----------
    total : int
        How many items make 100 %.
    stream : file-like, optional
        Where to draw (default: ``sys.stderr`` at construction time).
    width : int, default 24
        Characters of the bar itself.

    Examples
    --------
    >>> import io
    >>> from zgrad._progress import ProgressBar
    >>> stream = io.StringIO()
    >>> bar = ProgressBar(4, stream=stream, width=8)
    >>> bar.advance("toy 0-1", count=2)
    >>> stream.getvalue().startswith("[####----] 2/4  50% ")
    True
    """

    def __init__(self, total: int, stream: Any = None, width: int = 24) -> None:
        self.total = total
        self.done = 0
        self.stream = stream or sys.stderr
        self.width = width
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._start = time.perf_counter()

    def line(self, label: str) -> str:
        """Return the bar for the current count, e.g. ``[######------] 12/48  25%  3s  ETA 9s  label``."""
        elapsed = time.perf_counter() - self._start
        fraction = self.done / self.total if self.total else 1.0
        filled = int(round(self.width * fraction))
        eta = elapsed / self.done * (self.total - self.done) if self.done else math.nan
        eta_text = "?" if math.isnan(eta) else f"{eta:.0f}s"
        bar = "#" * filled + "-" * (self.width - filled)
        return f"[{bar}] {self.done}/{self.total} {fraction:4.0%} {elapsed:.0f}s ETA {eta_text}  {label}"

    def advance(self, label: str = "", count: int = 1) -> None:
        """Count ``count`` finished items and redraw, ending with ``label``."""
        self.done += count
        text = self.line(label)
        if self._tty:
            end = "\n" if self.done >= self.total else ""
            self.stream.write(f"\r\033[K{text}{end}")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def __call__(self, task: Any) -> None:
        """Count one finished task (an object with a ``label``) and redraw."""
        self.advance(task.label)
