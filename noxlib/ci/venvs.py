"""The noxfile's `session` decorator; session venvs kept, synced and shared by runs in one checkout.

nox keeps each uv venv (`reuse_venv = "yes"`); `uv sync --locked` brings it to the session's groups
unless `.nox/<session>/.noxlib-inputs` records a sync from the same Python, uv.lock and groups (a
warm run installs nothing). The record goes before a sync and comes only after one succeeded: uv
counts a package killed mid-install as installed (`Program alembic not found`), so a venv with
packages and no valid record is rebuilt. `.nox/<session>.lock` (beside the venv, which `uv venv
--clear` empties) is held shared while a run uses an unchanged venv and exclusive while one syncs:
no sync pulls packages from under another run's pytest (`No module named 'iniconfig'`).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import nox

from noxlib.ci import arguments as session_args
from noxlib.ci.cache import declare
from noxlib.core.errors import reported
from noxlib.core.json_store import lock_path, write_atomically
from noxlib.core.paths import REPO_ROOT
from noxlib.core.signals import interrupt_once

INPUTS_MARKER = ".noxlib-inputs"
# What `@session` takes beside nox's own arguments (noxlib/ci/cache.py `Declaration`).
DECLARATION_KEYS = ("inputs", "env", "tools", "always_runs", "exclusive", "local", "cold_seconds", "skip_reason")
_UNUSABLE: dict[type[BaseException], str] = {
    FileNotFoundError: "no record that its last install finished (a run stopped during it?)",
    IsADirectoryError: f"a directory in place of its record {INPUTS_MARKER}",
    UnicodeDecodeError: f"its record {INPUTS_MARKER} is not text",
}
_held: list[Any] = []  # the venv locks of this run: dropping one would release it


def session(*args: Any, uv_groups: Sequence[str] = (), **kwargs: Any) -> Callable[..., Any]:
    """`nox.session` that syncs the venv to `uv_groups` first; `inputs=`... are recorded for `ci`.

    `options=` are checked before anything starts (noxlib/ci/arguments.py), a `UserError` ends the
    session in one line (noxlib/core/errors.py), and the signal gate (noxlib/core/signals.py) has SIGTERM,
    SIGHUP and a server exiting 0 on Ctrl+C still end it 143/129/130 after its cleanup.
    """
    if not args:
        return functools.partial(session, uv_groups=uv_groups, **kwargs)
    [function] = args
    declared = {key: kwargs.pop(key) for key in DECLARATION_KEYS if key in kwargs}
    options: session_args.Options = kwargs.pop("options", None)
    name = kwargs.get("name") or function.__name__
    # `requires=` goes to nox and is recorded too: `nox -s ci` orders its own plan by it.
    declare(name, requires=kwargs.get("requires", ()), **declared)
    description = (function.__doc__ or "").strip().splitlines()[0] if function.__doc__ else ""
    session_args.declare(name, description, options)

    @reported
    def checked(session: nox.Session, *call_args: Any, **call_kwargs: Any) -> Any:
        if not session_args.check(session.name, description, options, list(session.posargs)):
            return None  # --help printed
        if session.venv_backend == "uv":
            sync_venv(session, uv_groups)
        return function(session, *call_args, **call_kwargs)

    @functools.wraps(function)
    def gated(*call_args: Any, **call_kwargs: Any) -> Any:
        with interrupt_once():
            return checked(*call_args, **call_kwargs)

    # nox's own venv creation (a cold start, `--reuse-venv never`) runs before this lock is taken:
    # `--allow-existing` keeps it from emptying a venv another run uses; `sync_venv` rebuilds.
    return nox.session(venv_params=kwargs.pop("venv_params", ["--allow-existing"]), **kwargs)(gated)


def sync_venv(session: nox.Session, groups: Sequence[str]) -> None:
    """Sync the session's venv under an exclusive lock unless its record matches; leave it shared."""
    from fasteners import InterProcessReaderWriterLock  # type: ignore[import-untyped]  # here: `nox -l` stays cheap

    venv, wanted = session.env_dir, fingerprint(session, groups)
    wanted_python = session.python if isinstance(session.python, str) else str(venv)
    uv_env = {"UV_PROJECT_ENVIRONMENT": str(venv)}
    lock = InterProcessReaderWriterLock(lock_path(Path(f"{venv}.lock")))
    _held.append(lock)
    _acquire(session, lock.acquire_read_lock, f"Waiting for the run syncing {venv} …")
    if read_record(venv)[0] == wanted:
        return
    lock.release_read_lock()  # two runs upgrading in place would wait for each other forever
    _acquire(session, lock.acquire_write_lock, f"Waiting until no other run uses {venv} …")
    record, unusable = read_record(venv)  # another run may have synced it meanwhile
    if record != wanted:
        # Gone before the venv changes: a stopped sync leaves no record (a directory there too).
        shutil.rmtree(venv / INPUTS_MARKER, ignore_errors=True)
        (venv / INPUTS_MARKER).unlink(missing_ok=True)
        if record is not None:  # nox created it again since (`--reuse-venv never`), or only the inputs changed
            unusable = (
                "created again since its last sync" if record.splitlines()[-1:] != wanted.splitlines()[-1:] else ""
            )
        elif not any(venv.glob("lib/python*/site-packages/*.dist-info")):
            unusable = ""  # nox has just created it: nothing in it to distrust
        if unusable:
            base = os.path.realpath(venv / "bin" / "python") if (venv / "bin" / "python").exists() else wanted_python
            if session.run_install("uv", "venv", "--clear", "--python", base, str(venv), silent=True) is not None:
                session.warn(f"Rebuilding {venv}: {unusable}")
        # uv recreates the venv when it does not satisfy the session's `python=`.
        sync = ("uv", "sync", "--no-default-groups", "--locked", "--python", wanted_python)
        if session.run_install(*sync, *(f"--group={group}" for group in groups), env=uv_env) is not None:
            write_atomically(venv / INPUTS_MARKER, fingerprint(session, groups))
        elif record is not None:
            write_atomically(venv / INPUTS_MARKER, record)  # `--no-install`: nothing ran, the record holds
    lock.acquire_read_lock()  # a POSIX lock changes mode in place: no other run slips in between


def fingerprint(session: nox.Session, groups: Sequence[str]) -> str:
    """What a venv is synced from: the Python asked for and the one it runs, uv.lock, the groups,
    and when nox last created it (`pyvenv.cfg` is rewritten then: `--reuse-venv never` asks for a rebuild)."""
    lock_file, venv = REPO_ROOT / "uv.lock", session.env_dir
    digest = hashlib.sha256(lock_file.read_bytes() if lock_file.exists() else b"").hexdigest()
    created = (venv / "pyvenv.cfg").stat().st_mtime_ns if (venv / "pyvenv.cfg").exists() else None
    return (
        f"python {session.python}\n{os.path.realpath(venv / 'bin' / 'python')}\nuv.lock {digest}\n"
        f"groups {' '.join(groups)}\npyvenv.cfg {created}\n"
    )


def read_record(venv: Path) -> tuple[str | None, str]:
    """The venv's record of its last finished sync, or None and why there is none to trust."""
    try:
        return (venv / INPUTS_MARKER).read_text(encoding="utf-8"), ""
    except (OSError, UnicodeDecodeError) as error:
        return None, _UNUSABLE.get(type(error), f"its record {INPUTS_MARKER} is unreadable ({error})")


def _acquire(session: nox.Session, acquire: Callable[..., bool], waiting: str) -> None:
    """Take the lock; say once why the run pauses when another run holds it."""
    if not acquire(blocking=False):
        session.log(waiting)
        acquire()
