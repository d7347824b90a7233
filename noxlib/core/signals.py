"""Signals a run must survive: Ctrl+C (once or twice), SIGTERM, a closed terminal (SIGHUP).

Cleanup is the point of every run, so the rules are:
- The first SIGINT, SIGTERM or SIGHUP interrupts the run (SIGINT as `KeyboardInterrupt`, the
  other two as `Terminated`, a subclass, so every `finally` runs the same cleanup).
- Any later one is only noted: one Ctrl+C under `uvx` reaches nox twice (the terminal sends it
  to the whole foreground group and uv passes its own copy on to its child), and a second
  exception raised in the middle of a `finally` would skip the rest of the cleanup.
- The exit status says what came: 130 for SIGINT (nox's own), 128 + n for SIGTERM and SIGHUP.
- A signal that the run inherited as ignored (`nohup`, a background job's SIGINT) stays ignored.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from types import FrameType
from typing import Any

# The signals that end a run; each is turned into an exception exactly once per gate.
ENDING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl+C so every `finally` between here and nox runs its cleanup."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def interrupt_for(signum: int) -> KeyboardInterrupt:
    """The exception a signal becomes: Ctrl+C stays nox's KeyboardInterrupt (exit 130)."""
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


class _Gate:
    """Process-wide: the first ending signal raises, the rest are noted; deferral postpones the raise."""

    def __init__(self) -> None:
        self.received: int | None = None  # the signal that interrupted the run, once one did
        self.raised = False
        self.deferring = 0
        self.depth = 0
        self.previous: dict[int, Any] = {}

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            if self.raised:
                print("cleanup in progress; it ends on its own", file=sys.stderr, flush=True)
            return
        self.received = signum
        if self.deferring:
            return  # raised when the deferred block ends
        self.raised = True
        raise interrupt_for(signum)

    def install(self) -> None:
        if self.depth == 0:
            self.received, self.raised = None, False
            for sig in ENDING_SIGNALS:
                current = signal.getsignal(sig)
                self.previous[sig] = current
                if current is signal.SIG_IGN:
                    continue  # inherited as ignored: the caller chose not to be interrupted by it
                signal.signal(sig, self.handle)
        self.depth += 1

    def uninstall(self) -> None:
        self.depth -= 1
        if self.depth == 0:
            for sig, handler in self.previous.items():
                signal.signal(sig, handler)
            self.previous.clear()


_GATE = _Gate()


@contextlib.contextmanager
def interrupt_once() -> Iterator[None]:
    """Interrupt the block at the first ending signal only; exit 128 + n after cleanup for SIGTERM/SIGHUP.

    Nested uses share one gate, so a signal is never turned into two exceptions.
    """
    _GATE.install()
    outermost = _GATE.depth == 1
    try:
        yield
    except Terminated as terminated:
        if not outermost:
            raise
        raise SystemExit(terminated.exit_code) from None
    else:
        # The signal was raised and then swallowed on its way out: nox's popen drops the
        # KeyboardInterrupt when the command it waited for still exits 0 (a pytest whose last
        # test had just ended). The run was interrupted all the same; it must not end green.
        swallowed = _GATE.received if outermost and _GATE.raised else None
        if swallowed == signal.SIGINT:
            raise KeyboardInterrupt
        if swallowed is not None:
            raise SystemExit(Terminated(swallowed).exit_code)
    finally:
        _GATE.uninstall()


def raise_if_lost() -> None:
    """Raise again an interrupt that was raised but never arrived, for a loop that outlives it.

    A signal's exception is raised wherever the main thread is; in a weakref callback or a
    `__del__` Python only prints it ("Exception ignored in …") and goes on, and a scheduler's
    wait loop would then run to its end (seen: Ctrl+C in `ci`'s live view was lost in a WeakSet
    callback). A loop that is still polling after the gate raised knows it was lost.
    """
    if _GATE.raised and _GATE.received is not None and not _GATE.deferring:
        raise interrupt_for(_GATE.received)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Cleanup must finish: a signal arriving during it is raised only after it, and only once."""
    installed_here = _GATE.depth == 0
    if installed_here:
        _GATE.install()
    _GATE.deferring += 1
    try:
        yield
    finally:
        _GATE.deferring -= 1
        pending = _GATE.received if (_GATE.received is not None and not _GATE.raised) else None
        if pending is not None and not _GATE.deferring:
            _GATE.raised = True
        if installed_here:
            _GATE.uninstall()
    if pending is not None and not _GATE.deferring:
        raise interrupt_for(pending)
