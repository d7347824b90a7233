"""State files written whole or not at all, and the JSON file read-modify-written under a lock.

Concurrent sessions (parallel `ci` jobs, test runs of several clones) read these files while
others write them: a reader must see the old content or the new, never half a file, so every
write goes to a temporary file beside the target and is renamed over it (atomic on POSIX).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` in one rename; the temporary file is removed if the write fails."""
    # The pid in the name: two processes writing the same file never share a temporary file.
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text)
        temporary.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def move_aside(path: Path, what: str, reason: str) -> Path:
    """Keep a corrupt state file for a post-mortem (`<name>.corrupt-<time>`) and say so in one line."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    backup = path.with_name(f"{path.name}.corrupt-{stamp}")
    counter = 1
    while backup.exists():
        backup = path.with_name(f"{path.name}.corrupt-{stamp}-{counter}")
        counter += 1
    path.replace(backup)
    print(f"warning: {what} was unreadable ({reason}); moved it to {backup}", file=sys.stderr)
    return backup


def lock_path(path: Path) -> str:
    """`path` for a lock file, with a directory found in its place moved aside in one line.

    A directory there stopped every later run with IsADirectoryError; nobody can hold a lock
    that is a directory, so moving it aside takes nothing from anyone.
    """
    if path.is_dir() and not path.is_symlink():
        with contextlib.suppress(FileNotFoundError):  # another process moved it first
            move_aside(path, path.name, "a directory, not a file")
    return str(path)


class JsonFile:
    """A JSON object on disk that one process at a time reads, changes and writes back."""

    def __init__(self, path: Path, *, timeout: float = 60) -> None:
        self.path = path
        self.timeout = timeout

    @contextlib.contextmanager
    def locked(self) -> Iterator[dict[str, Any]]:
        """The file's object (empty when missing or unreadable), written back when the block succeeds.

        A directory in place of the file or of its lock is moved aside with one line: it would
        otherwise stop every later run with IsADirectoryError.
        """
        # filelock is imported where it is used: `nox -l` imports the modules using this and must stay cheap.
        from filelock import FileLock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(lock_path(Path(f"{self.path}.lock")), timeout=self.timeout):
            try:
                data = json.loads(self.path.read_text())
                if not isinstance(data, dict):
                    data = {}
            except IsADirectoryError:
                move_aside(self.path, self.path.name, "a directory, not a file")
                data = {}
            except (FileNotFoundError, ValueError):  # a torn or hand-edited file: start afresh
                data = {}
            yield data
            write_atomically(self.path, json.dumps(data, indent=2, sort_keys=True))
