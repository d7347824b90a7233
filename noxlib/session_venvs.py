"""Session virtualenvs that are kept while nothing they install changes, and safe to share.

nox rebuilds a session's venv on every run unless told to reuse it; the noxfile turns reuse on
(`nox.options.reuse_venv = "yes"`), so a warm session only runs nox-uv's `uv sync --locked`,
which is a no-op while uv.lock, the session's groups and its Python are unchanged and brings the
venv up to date when they changed. A venv is rebuilt when the interpreter nox resolves for the
session is another one than it was built with (its path is part of the fingerprint, so nox's
slower staleness check is not needed); `--reuse-venv never` rebuilds on request.

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

import fcntl
import functools
import hashlib
import os
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
from noxlib.paths import REPO_ROOT
from noxlib.signals import interrupt_once

# The file whose change means "what the sessions install changed": it pins every group's packages.
LOCK_FILE = REPO_ROOT / "uv.lock"
INPUTS_MARKER = ".noxlib-inputs"
# Open lock files of the venvs this process uses (closing one would drop its lock), and which of
# them are held exclusively until the session's `uv sync` is done.
_held: list[int] = []
_exclusive: list[int] = []


def inputs_fingerprint(python: str) -> str:
    """What a venv was built from: the interpreter nox resolved for the session, and uv.lock."""
    return f"{python}\n{hashlib.sha256(LOCK_FILE.read_bytes() if LOCK_FILE.exists() else b'').hexdigest()}\n"


class SharedVirtualEnv(nox.virtualenv.VirtualEnv):
    """nox's uv venv, created under an exclusive lock and used under a shared one."""

    def create(self) -> bool:
        handle = _open_lock(Path(f"{self.location}.lock"))
        _flock(handle, fcntl.LOCK_SH, f"waiting for the run rebuilding {self.location_name}")
        if self._unchanged():
            logger.debug(f"Reusing {self.location_name}: nothing it installs changed.")
            self._reused = True
            return False
        # Upgrading a shared lock is not atomic: release it and queue for the exclusive one.
        fcntl.flock(handle, fcntl.LOCK_UN)
        _flock(handle, fcntl.LOCK_EX, f"waiting until no other run uses {self.location_name}")
        if self._built_with() not in (None, self._resolved_interpreter):
            self.reuse_existing = False  # another Python: uv sync would keep the old one
        created = super().create()
        Path(self.location, INPUTS_MARKER).write_text(inputs_fingerprint(self._resolved_interpreter))
        # Exclusive until nox-uv's `uv sync` is done (see `session`): it may change packages.
        # (No UV_COMPILE_BYTECODE: compiling the whole venv costs a cold run tens of seconds, and
        # each process compiles what it imports once anyway, noxlib/bytecode.py.)
        _exclusive.append(handle)
        return created

    def _built_with(self) -> str | None:
        """The interpreter this venv was built with, when noxlib built it."""
        marker = Path(self.location, INPUTS_MARKER)
        lines = marker.read_text().splitlines() if marker.is_file() else []
        return lines[0] if lines else None

    def _unchanged(self) -> bool:
        """True when reusing is allowed and the venv was built from the current inputs."""
        if not self.reuse_existing or not os.path.isdir(self.location):
            return False
        marker = Path(self.location, INPUTS_MARKER)
        if not marker.is_file() or marker.read_text() != inputs_fingerprint(self._resolved_interpreter):
            return False
        # nox's own reuse checks (backend type, broken interpreter links). With the uv backend
        # they only read: uv itself clears the directory when it recreates it.
        return not self._clean_location()


def _open_lock(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
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
DECLARATION_KEYS = ("inputs", "env", "tools", "always_runs", "exclusive", "local", "after", "cold_seconds")


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
    declare(kwargs.get("name") or function.__name__, **declared)
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
        while _exclusive:
            fcntl.flock(_exclusive.pop(), fcntl.LOCK_SH)
        with interrupt_once():
            return checked(*call_args, **call_kwargs)

    return nox_uv.session(after_sync, **kwargs)


def share_between_runs() -> None:
    """Make every uv session venv a SharedVirtualEnv.

    nox picks a venv class from `nox.virtualenv.ALL_VENVS` by backend name; replacing the "uv"
    entry is the one hook it offers for how a venv is created.
    """
    nox.virtualenv.ALL_VENVS["uv"] = functools.partial(SharedVirtualEnv, venv_backend="uv")
