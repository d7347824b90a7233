"""Where things live: the repository, and the per-user state shared by every checkout.

Services, leases and templates are shared by all worktrees of one user (that is what makes the
second run fast), so their state lives in the user's cache directory, not in the repository.
"""

from __future__ import annotations

import os
import pwd
import stat
import sys
from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BACKEND_DIR = REPO_ROOT / "apps" / "backend"
FRONTEND_DIR = REPO_ROOT / "apps" / "frontend"
NOX_DIR = REPO_ROOT / ".nox"
# The one home of what sessions write for people to read (screenshots, app logs, reports).
# Never `.nox/<session>`: that is the session's virtualenv, which uv refuses to recreate once
# anything else lives there. No session is named "artefacts", so no venv ever lands here.
ARTEFACTS_DIR = NOX_DIR / "artefacts"

# PostgreSQL refuses to run as root; these accounts exist on most systems and images.
UNPRIVILEGED_ACCOUNTS = ("postgres", "nobody")
# Used when running as root and the service account cannot enter root's home (mode 0700).
ROOT_FALLBACK_STATE_DIR = Path("/var/tmp/finance_report")  # noqa: S108 - created and owned by us


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@cache
def service_account() -> pwd.struct_passwd | None:
    """The account PostgreSQL runs as when we are root; None when we are not root."""
    if not is_root():
        return None
    for name in UNPRIVILEGED_ACCOUNTS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    return None


def account_can_enter(path: Path, account: pwd.struct_passwd) -> bool:
    """Whether `account` can traverse every directory from / down to `path` (as far as it exists)."""
    current = Path(path).resolve()
    chain = [current, *current.parents]
    for directory in reversed(chain):
        try:
            info = directory.stat()
        except FileNotFoundError:
            break
        if info.st_uid == account.pw_uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid == account.pw_gid:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            return False
    return True


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "finance_report"


@cache
def state_dir() -> Path:
    """`FR_CACHE_DIR`, else `$XDG_CACHE_HOME/finance_report` (`~/.cache/finance_report`).

    As root, PostgreSQL runs as an unprivileged account that usually cannot enter root's home;
    rather than loosening permissions on a directory we do not own, the state moves to a
    directory of our own under /var/tmp that the account can reach.
    """
    explicit = os.environ.get("FR_CACHE_DIR")
    if explicit:
        # Checked before it is resolved: a link planted where the directory belongs would
        # otherwise be followed to wherever its owner points it.
        require_private_directory(Path(explicit).expanduser(), "FR_CACHE_DIR")
        path = Path(explicit).expanduser().resolve()
        account = service_account()
        if account is not None and not account_can_enter(path, account):
            from noxlib.core.errors import UserError

            raise UserError(
                f"FR_CACHE_DIR={explicit} is not reachable by the {account.pw_name!r} account that "
                "PostgreSQL runs as under root; choose a directory it can enter, e.g. /var/tmp/finance_report."
            )
    else:
        path = _default_state_dir()
        account = service_account()
        if account is not None and not account_can_enter(path, account):
            print(
                f"note: {account.pw_name!r} cannot enter {path.parent}; "
                f"keeping service state in {ROOT_FALLBACK_STATE_DIR}",
                file=sys.stderr,
            )
            path = ROOT_FALLBACK_STATE_DIR
    what = "FR_CACHE_DIR" if explicit else "the state directory"
    require_private_directory(path, what)
    _require_writable(path, what)
    return path


def require_private_directory(path: Path, what: str) -> None:
    """Create `path`, or check that the existing one is ours and that nobody else can write in it.

    Root writes passwords, logs and markers under the state directory and acts on what it finds
    there (stops processes, wipes a half-made cluster): a directory another account owns or can
    write lets that account plant a symlink that root then follows, or a marker root then obeys.
    So a squatted, pre-created or loosened directory is refused, never repaired behind the
    owner's back.
    """
    from noxlib.core.errors import UserError

    try:
        path.mkdir(mode=0o755, parents=True, exist_ok=True)
        link = path.lstat()
        info = path.stat()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise UserError(
            f"{what} {path} cannot be created ({reason}); set FR_CACHE_DIR to a directory you own."
        ) from None
    me, my_group = os.geteuid(), os.getegid()
    problem = ""
    if stat.S_ISLNK(link.st_mode) and link.st_uid != me:
        problem = f"is a symbolic link owned by {_account_name(link.st_uid)}"
    elif not stat.S_ISDIR(info.st_mode):
        problem = "is not a directory"
    elif info.st_uid != me:
        problem = f"is owned by {_account_name(info.st_uid)}, not by you"
    elif info.st_mode & stat.S_IWOTH or (info.st_mode & stat.S_IWGRP and info.st_gid != my_group):
        problem = f"is writable by other accounts (mode {stat.S_IMODE(info.st_mode):04o})"
    if problem:
        raise UserError(
            f"{what} {path} {problem}; remove it (or `chmod go-w` it if it is yours) "
            "or set FR_CACHE_DIR to a directory you own."
        )


def _account_name(uid: int) -> str:
    try:
        return repr(pwd.getpwuid(uid).pw_name)
    except KeyError:
        return f"uid {uid}"


def _require_writable(path: Path, what: str) -> None:
    """Leases, locks and service data are written here: a directory we cannot write wedges every
    run with a traceback deep inside a lock, so it is checked once, up front, with one line."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".writable-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        from noxlib.core.errors import UserError

        reason = error.strerror or type(error).__name__
        raise UserError(
            f"{what} {path} is not writable ({reason}); make it writable or set FR_CACHE_DIR to a directory you own."
        ) from None


def create_exclusively(path: Path, content: bytes, mode: int, account: pwd.struct_passwd | None = None) -> None:
    """A new file at `path` (never through a link, never an existing file), handed to `account`.

    The ownership changes on the open descriptor, so it is this very file that is handed over.
    """
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    with os.fdopen(descriptor, "wb") as handle:
        if account is not None:
            os.fchown(handle.fileno(), account.pw_uid, account.pw_gid)
        handle.write(content)
