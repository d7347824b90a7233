"""One line per phase of a run, with its duration and no secret in it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from noxlib.core.redaction import redact

Log = Callable[[str], None]


@dataclass
class Phases:
    """One line per phase with its duration — the run's story in a handful of lines."""

    log: Log
    secrets: list[str] = field(default_factory=list)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[list[str]]:
        details: list[str] = []
        started = time.perf_counter()
        yield details
        elapsed = time.perf_counter() - started
        self.log(redact(f"{name:<10} {' '.join(details)} ({elapsed:.2f}s)", self.secrets))
