"""Progress that a person can read: bars on a terminal, lines in a log.

On a terminal, long work shows tqdm bars (redrawn in place). When stderr is a file or a
pipe — CI, Slurm's ``slurm-*.out``, ``nohup`` — redraws would fill the log with hundreds of
carriage-return frames, so progress is instead one line per tenth of the work (and at
least every :data:`LOG_EVERY_SECONDS`), each with the elapsed time and an estimate of the
time left, and a last line when the work ends. ``DEFSTAB_PROGRESS=bars|lines`` forces
either. Inner bars (``leave=False``: chunks of one measurement) only log on the clock.

Example:
    >>> import io
    >>> log = io.StringIO()
    >>> for _ in progress(range(4), desc="runs", unit="run", file=log, force="lines"):
    ...     pass
    >>> log.getvalue().splitlines()[-1].split(",")[0]
    'runs: 4/4 runs (100%)'
"""

from __future__ import annotations

import os
import sys
import time

#: In a log, at least one line this often while work goes on (seconds).
LOG_EVERY_SECONDS = 60.0


def interactive(file=None) -> bool:
    """Whether progress goes to a terminal (bars) rather than a log (lines)."""
    forced = os.environ.get("DEFSTAB_PROGRESS", "").strip().lower()
    if forced in ("bars", "lines"):
        return forced == "bars"
    stream = file or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


def progress(
    iterable=None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    initial: int = 0,
    leave: bool = True,
    file=None,
    force: str | None = None,
):
    """A tqdm bar on a terminal, else a :class:`LogProgress`; both take ``update(n)``,
    ``set_postfix_str``, ``set_postfix``, ``close`` and iteration."""
    bars = interactive(file) if force is None else force == "bars"
    if bars:
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, leave=leave,
                    dynamic_ncols=True, file=file)  # fmt: skip
    return LogProgress(iterable, total, desc, unit, initial, leave, file)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class LogProgress:
    """Progress as log lines: ``desc: n/total units (p%), H:MM:SS elapsed, ~H:MM:SS left,
    R units/s`` (the rate once a second has passed)."""

    def __init__(self, iterable, total, desc, unit, initial, leave, file=None):
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.desc, self.unit = total, desc, unit
        self.n = self.start = initial
        self.leave, self.file = leave, file
        self.postfix = ""
        self.t0 = self.last_time = time.monotonic()
        self.last_tenth = self._tenth()
        self.logged_n = None

    def _tenth(self) -> int:
        return self.n * 10 // self.total if self.total else 0

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        tenth = self._tenth()
        if (self.leave and tenth > self.last_tenth) or now - self.last_time >= LOG_EVERY_SECONDS:
            self._log(now)
        self.last_tenth = tenth

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.postfix = text

    def set_postfix(self, refresh: bool = True, **values) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())

    def close(self) -> None:
        if self.leave and self.logged_n != self.n:
            self._log(time.monotonic())
        self.leave = False  # closed: nothing more

    def _log(self, now: float) -> None:
        elapsed = now - self.t0
        units = self.unit + ("s" if self.unit and not self.unit.endswith("s") else "")
        line = f"{self.desc}: {self.n}"
        if self.total:
            line += f"/{self.total} {units} ({100 * self.n // self.total}%)"
        else:
            line += f" {units}"
        line += f", {_clock(elapsed)} elapsed"
        done = self.n - self.start
        if self.total and 0 < done and self.n < self.total:
            line += f", ~{_clock(elapsed / done * (self.total - self.n))} left"
        if done > 0 and elapsed >= 1:  # a rate over less than a second says little
            line += f", {done / elapsed:.3g} {units}/s"
        if self.postfix:
            line += f" ({self.postfix})"
        print(line, file=self.file or sys.stderr, flush=True)
        self.last_time, self.logged_n = now, self.n
