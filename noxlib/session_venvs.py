"""Session virtualenvs that are kept while nothing they install changes, and safe to share.

nox rebuilds a session's venv on every run unless told to reuse it; the noxfile turns reuse on
(`nox.options.reuse_venv = "yes"`), so a warm session only runs nox-uv's `uv sync --locked`,
which is a no-op while uv.lock, the session's groups and its Python are unchanged and brings the
venv up to date when they changed. A venv is rebuilt when the interpreter nox resolves for the
session is another one than it was built with (its path is part of the fingerprint, so nox's
slower staleness check is not needed); `--reuse-venv never` rebuilds on request.

What a venv was built from is recorded in `.nox/<session>/.noxlib-inputs` only once its
`uv sync` has finished, and the record is removed before a venv is created or re-synced: a run
killed during the install leaves no record, and the next run rebuilds the venv from scratch
(uv counts a package whose metadata landed before its files as installed, so a re-sync would
keep it half-made: `Program alembic not found`). A record that is a directory or not text is no
record either.

Runs in one checkout share `.nox/<session>`: three `nox -s test` in three terminals, or
`nox -s test` beside `nox -s ci`. A run that rebuilt the venv under another would pull packages
out from under its pytest (`No module named 'iniconfig'`). So every run holds a lock on
`.nox/<session>.lock` while it uses the venv: shared when it reuses an unchanged venv (any number
of such runs go on together), exclusive when it creates, rebuilds or re-syncs it (it waits until
no other run is using the venv, and the others wait for it until its `uv sync` is done). The lock
lives beside the venv, not inside it, because `uv venv --clear` empties the directory; it is
released when the run exits.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nox
import nox.virtualenv
import nox_uv
from nox.logger import logger

from noxlib import session_args
from noxlib.cache import declare
from noxlib.errors import reported
from noxlib.json_store import lock_path, write_atomically
from noxlib.paths import REPO_ROOT
from noxlib.signals import interrupt_once

# The file whose change means "what the sessions install changed": it pins every group's packages.
LOCK_FILE = REPO_ROOT / "uv.lock"
INPUTS_MARKER = ".noxlib-inputs"
# Open lock files of the venvs this process uses (closing one would drop its lock), and the venvs
# it created or re-syncs: held exclusively, and recorded, once the session's `uv sync` is done.
_held: list[int] = []
_unsynced: list[tuple[int, Path, str]] = []


def inputs_fingerprint(python: str) -> str:
    """What a venv was built from: the interpreter nox resolved for the session, and uv.lock."""
    return f"{python}\n{hashlib.sha256(LOCK_FILE.read_bytes() if LOCK_FILE.exists() else b'').hexdigest()}\n"


class SharedVirtualEnv(nox.virtualenv.VirtualEnv):
    """nox's uv venv, created under an exclusive lock and used under a shared one."""

    def create(self) -> bool:
        handle = _open_lock(Path(f"{self.location}.lock"))
        _flock(handle, fcntl.LOCK_SH, f"waiting for the run rebuilding {self.location_name}")
        record, unusable = read_record(Path(self.location, INPUTS_MARKER))
        if self._unchanged(record):
            logger.debug(f"Reusing {self.location_name}: nothing it installs changed.")
            self._reused = True
            return False
        # Upgrading a shared lock is not atomic: release it and queue for the exclusive one.
        fcntl.flock(handle, fcntl.LOCK_UN)
        _flock(handle, fcntl.LOCK_EX, f"waiting until no other run uses {self.location_name}")
        record, unusable = read_record(Path(self.location, INPUTS_MARKER))
        if record is None and os.path.isdir(self.location):
            # uv installs a package's metadata before its files and scripts: after a kill during
            # `uv sync` it counts a half-installed package as installed. Only a fresh venv is sure.
            logger.warning(f"Rebuilding {self.location_name}: {unusable}")
            self.reuse_existing = False
        elif record is not None and record.splitlines()[:1] != [self._resolved_interpreter]:
            self.reuse_existing = False  # another Python: uv sync would keep the old one
        # Gone before the venv changes: a run stopped from here on leaves no record to trust.
        _forget_record(Path(self.location, INPUTS_MARKER))
        created = super().create()
        # Recorded, and exclusive, until nox-uv's `uv sync` is done (see `session`): the record
        # says that sync finished, and until then it may change packages under other runs.
        # (No UV_COMPILE_BYTECODE: compiling the whole venv costs a cold run tens of seconds, and
        # each process compiles what it imports once anyway, noxlib/bytecode.py.)
        _unsynced.append((handle, Path(self.location, INPUTS_MARKER), inputs_fingerprint(self._resolved_interpreter)))
        return created

    def _unchanged(self, record: str | None) -> bool:
        """True when reusing is allowed and the venv's last finished sync was from the current inputs."""
        if not self.reuse_existing or not os.path.isdir(self.location):
            return False
        if record != inputs_fingerprint(self._resolved_interpreter):
            return False
        # nox's own reuse checks (backend type, broken interpreter links). With the uv backend
        # they only read: uv itself clears the directory when it recreates it.
        return not self._clean_location()


def read_record(marker: Path) -> tuple[str | None, str]:
    """The venv's record of its last finished sync, or None and why there is none to trust."""
    try:
        return marker.read_text(encoding="utf-8"), ""
    except FileNotFoundError:
        return None, "no record that its last install finished (a run stopped during it?)"
    except IsADirectoryError:
        return None, f"a directory in place of its record {INPUTS_MARKER}"
    except UnicodeDecodeError:
        return None, f"its record {INPUTS_MARKER} is not text"
    except OSError as error:
        return None, f"its record {INPUTS_MARKER} is unreadable ({error.strerror})"


def _forget_record(marker: Path) -> None:
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        if marker.is_dir() and not marker.is_symlink():
            shutil.rmtree(marker)
        else:
            marker.unlink()


def _open_lock(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o644)
    _held.append(handle)
    return handle


def _flock(handle: int, mode: int, waiting: str) -> None:
    """Take the lock; say once why the run pauses when another run holds it."""
    try:
        fcntl.flock(handle, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        logger.info(waiting.capitalize() + " …")
        fcntl.flock(handle, mode)


# What `@session` takes beside nox's and nox-uv's own arguments (noxlib/cache.py `Declaration`).
DECLARATION_KEYS = ("inputs", "env", "tools", "always_runs", "exclusive", "local", "cold_seconds")


def session(*args: Any, **kwargs: Any) -> Callable[..., Any]:
    """`nox_uv.session` with what the session declares for `ci`, and its errors reported in one line.

    `inputs=`, `exclusive=`, ... (noxlib/cache.py `Declaration`) are recorded under the session's
    name, so the noxfile is the one list of sessions and of what each depends on; `options=` says
    what arguments it takes (noxlib/session_args.py), checked before the body runs. A `UserError`
    ends the session with its one-line message (noxlib/errors.py `reported`). Once nox-uv's
    `uv sync` is done, other runs may use the venv again: wrapping the function nox-uv calls
    after the sync is the first moment after it, so that is where an exclusive lock becomes shared.

    Every session body runs under the signal gate (noxlib/signals.py): without it SIGTERM and
    SIGHUP kill nox on the spot, whatever it had half-started, and a server that exits 0 on
    Ctrl+C (`mkdocs serve`, `next dev`) has nox drop the interrupt and report success. Under
    it every session ends 130, 143 or 129 after its cleanup.
    """
    if not args:
        return functools.partial(session, **kwargs)
    [function] = args
    declared = {key: kwargs.pop(key) for key in DECLARATION_KEYS if key in kwargs}
    options: session_args.Options = kwargs.pop("options", None)
    # `requires=` goes to nox and is recorded too: `nox -s ci` orders its own plan by it.
    declare(kwargs.get("name") or function.__name__, requires=kwargs.get("requires", ()), **declared)
    description = (function.__doc__ or "").strip().splitlines()[0] if function.__doc__ else ""
    session_args.declare(kwargs.get("name") or function.__name__, description, options)

    @reported
    def checked(session: nox.Session, *call_args: Any, **call_kwargs: Any) -> Any:
        # Before anything starts: a mistake is one line, and --help only prints.
        if session_args.check(session.name, description, options, list(session.posargs)):
            return function(session, *call_args, **call_kwargs)
        return None

    @functools.wraps(function)
    def after_sync(*call_args: Any, **call_kwargs: Any) -> Any:
        while _unsynced:
            handle, record, fingerprint = _unsynced.pop()
            write_atomically(record, fingerprint)
            fcntl.flock(handle, fcntl.LOCK_SH)
        with interrupt_once():
            return checked(*call_args, **call_kwargs)

    return nox_uv.session(after_sync, **kwargs)


def share_between_runs() -> None:
    """Make every uv session venv a SharedVirtualEnv.

    nox picks a venv class from `nox.virtualenv.ALL_VENVS` by backend name; replacing the "uv"
    entry is the one hook it offers for how a venv is created.
    """
    nox.virtualenv.ALL_VENVS["uv"] = functools.partial(SharedVirtualEnv, venv_backend="uv")
