"""Progress bars: tqdm on a terminal, a plain line now and then on a log.

::

    progress_bar(total, desc=, unit=) ──stderr is a TTY──> tqdm (redrawn in place with \\r)
                                      └─otherwise───────> PlainProgress: "desc: n/total unit (t s), postfix"
                                                           one line every PLAIN_INTERVAL_S and one at close

Every progress bar of vidlat comes from here, so a log file never fills with hundreds of ``\\r``
frames per line.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

PLAIN_INTERVAL_S = 30.0


class PlainProgress:
    """The part of tqdm's interface vidlat uses, written as plain, occasional lines."""

    def __init__(self, total: int, *, desc: str, unit: str, initial: int = 0, stream: TextIO,
                 interval_s: float = PLAIN_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.stream, self.interval_s, self.clock = stream, interval_s, clock
        self.postfix = ""
        self.started = self.printed_at = clock()
        self.printed_n: int | None = None

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.clock() - self.printed_at >= self.interval_s:
            self._print()

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        del refresh  # lines are written on their own schedule
        self.postfix = text

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())

    def close(self) -> None:
        if self.printed_n != self.n:
            self._print()

    def _print(self) -> None:
        self.printed_at, self.printed_n = self.clock(), self.n
        line = f"{self.desc}: {self.n}/{self.total} {self.unit} ({self.printed_at - self.started:.0f} s)"
        self.stream.write(line + (f", {self.postfix}" if self.postfix else "") + "\n")
        self.stream.flush()


def progress_bar(total: int, *, desc: str, unit: str, initial: int = 0, stream: TextIO | None = None) -> Any:
    """A tqdm bar when ``stream`` (default stderr) is a terminal, else a ``PlainProgress``."""
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True, file=stream)
    return PlainProgress(total, desc=desc, unit=unit, initial=initial, stream=stream)
