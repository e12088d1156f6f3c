"""One progress display for a command's long loop: compare's runs (and ablate's, search's).

A comparison of 200 runs x 25 epochs takes hours, so people follow it two ways:

- On a terminal (stderr is a TTY): one tqdm bar of items done of N, with an ETA from the rate
  at which items finished, a status the command chooses (compare: the running medians of
  test accuracy) and what each worker does now (`w0 run 12 baseline ep 3/25 40 s`). A
  thread redraws it about once a second, so the workers' epochs and times move between two
  finished runs, which can be minutes apart.
- Off a terminal (a log file, CI): no tqdm, whose redraws would fill the log, but exactly one
  line per finished item, short and greppable:
  `run 12/200 done in 82 s: baseline acc 0.912, optimized acc 0.925 (medians 0.905/0.918) |
  eta 2.1 h`.

The ETA is the items left over the rate of items finished since the display started (wall
time, not the items' own training time): with N workers, runs finish N at a time, and only
their rate says when the last one will. With a cap (`compare --until-decided`) the total is
the most items, and the ETA says "at most".
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from toonvision.model_utils.engine.serial import WorkerActivity

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 1.0   # how often the terminal bar is redrawn between finished items
SEPARATOR = " · "
BAR_FORMAT = "{desc} {n_fmt}/{total_fmt} |{bar}| {elapsed}{postfix}"
MIN_BAR_WIDTH = 45      # columns kept for the bar and the counts when the postfix is trimmed


def duration(seconds: float) -> str:
    """`45 s`, `12 min` or `4.7 h`."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def describe_activity(activity: Iterable[WorkerActivity], now: float) -> str:
    """What each worker does, for people: `w0 run 12 baseline ep 3/25 40 s · w1 idle`.

    Args:
        activity: the engine's `activity()`.
        now: the `time.monotonic()` the workers' times are measured to.
    """
    parts = []
    for item in activity:
        name = f"w{item.worker}" if item.worker.isdigit() else item.worker
        if item.run is None:
            parts.append(f"{name} idle")
            continue
        text = f"{name} run {item.run + 1} {item.config}"
        if item.epoch is not None and item.epochs:
            text += f" ep {item.epoch}/{item.epochs}"
        if item.since is not None:
            text += f" {max(0.0, now - item.since):.0f} s"
        parts.append(text)
    return SEPARATOR.join(parts)


class RunProgress:
    """Items done of N: a live tqdm bar on a terminal, one line per finished item elsewhere.

    Use it as a context manager: leaving it (at the end, or on an exception) stops the redraw
    thread and closes the bar. Nothing it does raises into the loop it watches: a failed
    redraw is logged and the next one tried.

    Args:
        total: the items to reach (with `capped`, the most); None when unknown (a search
            bounded by time): the lines then count without a total and the ETA is `?`.
        done: items already done before (a resumed comparison), counted but not timed.
        unit: the item's name, `run` or `trial`; the log lines start with it.
        capped: `total` is a cap the loop may stop before (`--until-decided`).
        activity: returns what each worker does now (`engine.activity`), or None.
        file: where to write (default: sys.stderr, as it is when the display starts).
        interactive: draw a bar (default: whether `file` is a terminal).
        clock: the time source (`time.monotonic`; tests pass a fake one).
        refresh_seconds: how often the bar is redrawn between finished items.

    Example:
        >>> with RunProgress(200, activity=engine.activity) as progress:  # doctest: +SKIP
        ...     for update in comparison.run(task_data, configs, engine=engine):
        ...         progress.finished("done in 41 s: baseline acc 0.912", status="0.905")
    """

    def __init__(self, total: int | None, done: int = 0, unit: str = "run", capped: bool = False,
                 activity: Callable[[], Sequence[WorkerActivity]] | None = None,
                 file: TextIO | None = None, interactive: bool | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 refresh_seconds: float = REFRESH_SECONDS) -> None:
        self.total, self.done, self.unit, self.capped = total, done, unit, capped
        self.file = file if file is not None else sys.stderr
        self.activity, self.clock = activity, clock
        self.status = ""
        self.started = self.last_finished = clock()
        self._initial = done
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._bar: Any = None
        self._thread: threading.Thread | None = None
        if interactive is None:
            interactive = bool(getattr(self.file, "isatty", lambda: False)())
        if interactive:
            from tqdm import tqdm

            cap = " (at most)" if capped else ""
            self._bar = tqdm(total=total, initial=done, unit=unit, file=self.file,
                             desc=f"{unit}s{cap}", dynamic_ncols=True, bar_format=BAR_FORMAT)
            self._draw()
            self._thread = threading.Thread(target=self._redraw, args=(refresh_seconds,),
                                            name="toonvision-progress", daemon=True)
            self._thread.start()

    def __enter__(self) -> RunProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def eta_seconds(self, now: float | None = None) -> float | None:
        """Seconds until the last item, from the rate items finished at; None before one has.

        The rate is (items finished here) / (time from the start to the last finish); between
        two finishes the ETA counts down from the one given at the last.
        """
        finished = self.done - self._initial
        if finished <= 0 or self.total is None:
            return None
        per_item = (self.last_finished - self.started) / finished
        now = self.clock() if now is None else now
        return max(0.0, (self.total - self.done) * per_item - (now - self.last_finished))

    def eta_text(self, now: float | None = None) -> str:
        """`eta 2.1 h`, `eta at most 2.1 h` with a cap, `eta ?` before the first item."""
        eta = self.eta_seconds(now)
        return f"eta {'at most ' if self.capped else ''}{'?' if eta is None else duration(eta)}"

    def finished(self, text: str, status: str | None = None, completed: int | None = None,
                 ) -> str:
        """Counts one more finished item and shows it.

        Args:
            text: what the item gave, for its log line (`done in 41 s: baseline acc 0.912`).
            status: what the bar shows from now on (compare: the running medians); None:
                the one before.
            completed: the items done now, when the loop knows it (default: one more).

        Returns:
            The item's line, `run 12/200 done in 41 s: ... | eta 2.1 h`; written to the file
            when there is no bar.
        """
        with self._lock:
            self.done = self.done + 1 if completed is None else completed
            self.last_finished = self.clock()
            if status is not None:
                self.status = status
            count = f"{self.done}" if self.total is None else f"{self.done}/{self.total}"
            cap = " (cap)" if self.capped else ""
            line = f"{self.unit} {count}{cap} {text} | {self.eta_text(self.last_finished)}"
            if self._bar is None:
                print(line, file=self.file, flush=True)
            else:
                self._bar.n = self.done
                self._draw()
        return line

    def set_status(self, status: str) -> None:
        """Shows `status` on the bar from now on, counting nothing (in a log: nothing).

        For what changes between two finished items, e.g. search's `trial 5 run 2/3` or its
        best value so far.
        """
        with self._lock:
            self.status = status
            if self._bar is not None:
                self._draw()

    def bar_text(self, now: float | None = None) -> str:
        """The bar's postfix: the ETA, the status and what the workers do."""
        now = self.clock() if now is None else now
        parts = [self.eta_text(now), self.status]
        if self.activity is not None:
            parts.append(describe_activity(self.activity(), now))
        return SEPARATOR.join(part for part in parts if part)

    def close(self) -> None:
        """Stops the redraw thread and closes the bar; calling it again does nothing."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10 * REFRESH_SECONDS)
            self._thread = None
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None

    def _draw(self) -> None:
        """Redraws the bar with the current text, trimmed to the terminal's width.

        It never raises: a display must not stop the loop it shows (a failed redraw, say an
        engine's `activity` that broke, is logged and the next one tried).
        """
        try:
            text = self.bar_text()
            columns = self._bar.format_dict.get("ncols") or 0
            room = max(10, columns - MIN_BAR_WIDTH) if columns else len(text)
            if len(text) > room:
                text = text[:room - 1] + "…"
            self._bar.set_postfix_str(text, refresh=True)
        except Exception:
            logger.debug("progress redraw failed", exc_info=True)

    def _redraw(self, seconds: float) -> None:
        """The redraw thread: a redraw every `seconds` until `close`."""
        while not self._stop.wait(seconds):
            with self._lock:
                if self._bar is not None:
                    self._draw()


class LogBar:
    """A progress bar for a log: at most `lines` plain lines (every quarter), never a redraw.

    The same calls as the part of tqdm the commands use (`update`, `n`, `set_postfix_str`,
    `write`, iteration, `with`), so a command takes `progress_bar(...)` and does not care
    where its stderr goes.
    """

    def __init__(self, iterable: Iterable[Any] | None = None, total: int | None = None,
                 desc: str = "", unit: str = "it", file: TextIO | None = None,
                 lines: int = 4) -> None:
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.file = file or sys.stderr
        self.n = 0
        self.postfix = ""
        self._marks = ([] if not total else
                       sorted({max(1, round(total * part / lines)) for part in range(1, lines)}))
        self._start = time.monotonic()
        self._closed = False
        self._printed_at = 0

    def __iter__(self):
        for item in self.iterable or ():
            yield item
            self.update(1)

    def __enter__(self) -> LogBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def update(self, count: int = 1) -> None:
        """Counts `count` more items; prints a line when a quarter mark is passed."""
        before, self.n = self.n, self.n + count
        if any(before < mark <= self.n for mark in self._marks):
            self._line()

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text

    def write(self, text: str, file: TextIO | None = None) -> None:
        print(text, file=file or self.file)

    def close(self) -> None:
        """Prints the last line (once), if anything was done."""
        if not self._closed and self.n and self._printed_at != self.n:
            self._line()
        self._closed = True

    def _line(self) -> None:
        self._printed_at = self.n
        of = f"/{self.total}" if self.total else ""
        extra = f" ({self.postfix})" if self.postfix else ""
        print(f"{self.desc + ': ' if self.desc else ''}{self.n}{of} {self.unit} in "
              f"{duration(time.monotonic() - self._start)}{extra}", file=self.file, flush=True)


def progress_bar(iterable: Iterable[Any] | None = None, total: int | None = None,
                 desc: str = "", unit: str = "it", leave: bool = True) -> Any:
    """One live tqdm bar on a terminal; a few plain lines (`LogBar`) in a log or CI.

    Args:
        iterable: what to iterate over, counting each item (or None: call `update`).
        total: the number of items, when known.
        desc: what is counted, shown first.
        unit: the items' name (`crop`, `screenshot`).
        leave: keep the finished terminal bar on screen.
    """
    if sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc or None, unit=unit, file=sys.stderr,
                    leave=leave)
    return LogBar(iterable, total, desc, unit)


def decode_bar(show_progress: bool = True) -> tuple[Callable[[int, int], None],
                                                    Callable[[], None]]:
    """A `(done, total)` callback that draws a "decoding images" bar, and its closer.

    `disable=None` hides the bar off a terminal, where each redraw would be a log line.
    """
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=total, desc="decoding images", unit="img", file=sys.stderr,
                       disable=None if show_progress else True)
        bar.update(done - bar.n)

    def close() -> None:
        if bar is not None:
            bar.close()

    return progress, close
