"""What `nox -s ci` shows while it runs: a live view at a terminal, the plain lines everywhere else.

At a terminal each running session gets a bar of its elapsed time against how long it took in
this checkout's last run (`.nox/ci-durations.json`), under a line with an estimate of what is
left; each session's result is printed above the view as it ends, a failure with its log's
tail. In a pipe, a log file, on CI (`CI=true`) or with `TERM=dumb` the run prints exactly the
lines it always has — `━━━ nox -s X (log …)` when a session starts, `━━━ nox -s X: passed (12.3s,
log …)` when it ends — because CI logs and tools read them.

rich draws the view and is imported only when the view is shown: every `nox -l` imports this
module (tests/test_startup_cost.py).
"""

from __future__ import annotations

import contextlib
import heapq
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import RenderableType

# How often the view redraws: elapsed times are shown in whole seconds, and the cores are busy.
REFRESH_PER_SECOND = 2
RESULTS = ("passed", "FAILED", "cached", "skipped", "stopped", "not run")
RESULT_STYLES = {"passed": "green", "FAILED": "bold red", "cached": "dim", "skipped": "yellow"}


@dataclass
class Outcome:
    """A session's result in a ci run: passed, FAILED, cached, skipped, stopped or not run."""

    session: str
    result: str
    seconds: float


def interactive(stream: IO[str] | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """A person watches `stream`: a terminal that is neither CI's nor a dumb one."""
    stream = sys.stdout if stream is None else stream
    environ = os.environ if environ is None else environ
    on_ci = environ.get("CI", "").lower() in ("1", "true", "yes")
    return stream.isatty() and not on_ci and environ.get("TERM", "") != "dumb"


def time_left(remaining: Sequence[float], pending: Sequence[float], jobs: int) -> float:
    """When the run should end: each pending session, longest first, takes the job that frees first.

    `remaining` is what each running session has left, `pending` the expected duration of each
    session not started yet; like ci's own start order (longest-processing-time first). Waits
    for a dependency or an exclusive group are left out: it is an estimate.
    """
    slots = list(remaining) + [0.0] * max(0, max(1, jobs) - len(remaining))
    heapq.heapify(slots)
    for seconds in sorted(pending, reverse=True):
        heapq.heappush(slots, heapq.heappop(slots) + seconds)
    return max(slots)


def describe_left(seconds: float) -> str:
    """`~40 s left`, or minutes once seconds stop being easy to read."""
    if seconds < 90:
        return f"~{seconds:.0f} s left"
    return f"~{seconds / 60:.0f} min left"


def print_line(text: str) -> None:
    """Flushed at once: the log of a long run is read while it runs."""
    print(text, flush=True)


def started_line(name: str, log_path: Path | None) -> str:
    return f"━━━ nox -s {name}" + ("" if log_path is None else f" (log {log_path})")


def cached_line(name: str) -> str:
    return f"━━━ nox -s {name}: cached (inputs unchanged since its last green run)"


def skipped_line(name: str) -> str:
    return f"━━━ nox -s {name}: skipped (by its own check, asked before it started)"


def result_line(outcome: Outcome, log_path: Path) -> str:
    return f"━━━ nox -s {outcome.session}: {outcome.result} ({outcome.seconds:.1f}s, log {log_path})"


class PlainProgress:
    """The lines ci has always printed, one when a session starts and one when it ends."""

    def started(self, name: str, log_path: Path | None) -> None:
        """`log_path` is None when the session's output goes to the terminal itself (`-j 1`)."""
        self.line(started_line(name, log_path))

    def cached(self, name: str) -> None:
        self.line(cached_line(name))

    def skipped(self, name: str, reason: str) -> None:
        """A session whose own check said it would skip (`skip_reason=`): no nox ran, no log."""
        self.line(skipped_line(name))
        self.line(f"    {reason}")

    def finished(self, outcome: Outcome, log_path: Path) -> None:
        self.line(result_line(outcome, log_path))

    def line(self, text: str) -> None:
        """A line of the run's own (a skip reason, a log's tail, a signal's note)."""
        print_line(text)

    def close(self) -> None:
        """Nothing to take down; ci calls it before printing the summary."""


class LiveProgress(PlainProgress):
    """Running sessions with elapsed against expected seconds, redrawn in place under the printed lines.

    rich's Live redraws from its own thread; `render` reads what the main thread writes, so both
    hold `lock` — and nothing prints while holding it, since printing waits for Live's own lock.
    """

    def __init__(self, plan: Sequence[str], expected: Mapping[str, float], jobs: int) -> None:
        from rich.console import Console
        from rich.live import Live

        self.plan = list(plan)
        self.expected = dict(expected)
        self.jobs = jobs
        self.lock = threading.Lock()
        self.running: dict[str, float] = {}  # name -> when it started (perf_counter)
        self.done: set[str] = set()
        self.console = Console()
        # transient: the summary that follows replaces the view; the result lines stay above it.
        self.live = Live(
            console=self.console,
            get_renderable=self.render,
            refresh_per_second=REFRESH_PER_SECOND,
            transient=True,
        )
        self.live.start()

    def started(self, name: str, log_path: Path | None) -> None:
        with self.lock:
            self.running[name] = time.perf_counter()
        self.live.refresh()

    def cached(self, name: str) -> None:
        with self.lock:
            self.done.add(name)
        self.live.refresh()  # printing above the view redraws the view as last drawn
        self.line(cached_line(name), style=RESULT_STYLES["cached"])

    def skipped(self, name: str, reason: str) -> None:
        with self.lock:
            self.done.add(name)
        self.live.refresh()
        self.line(skipped_line(name), style=RESULT_STYLES["skipped"])
        self.line(f"    {reason}")

    def finished(self, outcome: Outcome, log_path: Path) -> None:
        with self.lock:
            self.running.pop(outcome.session, None)
            self.done.add(outcome.session)
        self.live.refresh()
        self.line(result_line(outcome, log_path), style=RESULT_STYLES.get(outcome.result))

    def line(self, text: str, style: str | None = None) -> None:
        from rich.text import Text

        # Above the view, as printed: a log's tail holds brackets that are no markup. The style
        # goes on the Text, not on print, which would paint the view redrawn below it too.
        self.console.print(Text(text, style=style or ""), highlight=False, no_wrap=True, overflow="ignore", crop=False)

    def close(self) -> None:
        """Take the view down and show the cursor again (also after Ctrl+C); safe to call twice."""
        self.live.stop()

    def render(self) -> RenderableType:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        now = time.perf_counter()
        with self.lock:
            running = sorted(self.running.items(), key=lambda item: item[1])
            done = len(self.done)
            waiting = [name for name in self.plan if name not in self.done and name not in self.running]
        remaining = [max(0.0, self.expected.get(name, 0.0) - (now - since)) for name, since in running]
        left = time_left(remaining, [self.expected.get(name, 0.0) for name in waiting], self.jobs)
        counts = f"ci: {done} of {len(self.plan)} done, {len(running)} running, {len(waiting)} waiting"
        table = Table.grid(padding=(0, 2))
        for name, since in running:
            elapsed, expected = now - since, self.expected.get(name, 0.0)
            # Nothing on record: a pulsing bar rather than a made-up percentage.
            bar = ProgressBar(total=expected or None, completed=min(elapsed, expected), width=30)
            times = f"{elapsed:.0f} s / {expected:.0f} s" if expected else f"{elapsed:.0f} s / ?"
            overrun = "yellow" if expected and elapsed > expected else ""
            table.add_row(Text(f"  {name}"), bar, Text(times, style=overrun))
        return Group(Text(f"{counts}  {describe_left(left)}", style="bold"), table)


def start_view(plan: Sequence[str], expected: Mapping[str, float], *, jobs: int, live: bool) -> PlainProgress:
    """The view of one ci run: live at a terminal (see `interactive`), the plain lines otherwise.

    `expected` holds each session's seconds on record (missing or 0: unknown). The caller
    closes it before printing its summary, however the run ends (`progress` does that).
    """
    return LiveProgress(plan, expected, jobs) if live else PlainProgress()


@contextlib.contextmanager
def progress(plan: Sequence[str], expected: Mapping[str, float], *, jobs: int, live: bool) -> Iterator[PlainProgress]:
    """`start_view` for a block: the view is taken down when it ends, also by Ctrl+C."""
    view = start_view(plan, expected, jobs=jobs, live=live)
    try:
        yield view
    finally:
        view.close()


def summary(outcomes: Sequence[Outcome], notes: Sequence[str]) -> str:
    """The table in plan order, the notes, and the closing count lines that .ci/run and bench read."""
    width = max([len(o.session) for o in outcomes] + [len("session")])
    lines = [f"{'session':<{width}}  {'result':<8}  seconds", f"{'-' * width}  {'-' * 8}  -------"]
    lines += [f"{o.session:<{width}}  {o.result:<8}  {o.seconds:7.1f}" for o in outcomes]
    lines.append(f"{'total':<{width}}  {'':<8}  {sum(o.seconds for o in outcomes):7.1f}")
    lines += [f"note: {note}" for note in notes]
    count = {result: sum(o.result == result for o in outcomes) for result in RESULTS}
    others = [f"{count[r]} {r}" for r in ("stopped", "not run") if count[r]]
    lines.append(", ".join([f"ci: {count['passed']} passed", f"{count['FAILED']} failed",
                            f"{count['cached']} cached", f"{count['skipped']} skipped", *others]))  # fmt: skip
    lines.append(f"{count['passed']} passed, {count['FAILED']} failed, {count['skipped']} skipped")
    return "\n".join(lines)
