"""Long-lived processes: started in one place, remembered by PID *and* start time, stopped politely.

A PID alone is not an identity: after a crash or a reboot the number can belong to someone
else's process. Every process we start is recorded with its start time, and we only ever signal
a PID whose start time still matches — so a stale record can never kill a stranger. Every stop,
of one process, a tree, a process group or a run's workers, goes through `stop_processes`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from noxlib.core.errors import ServiceError

if TYPE_CHECKING:
    import psutil

# psutil reports start times rounded to the clock tick: two readings of one process's start
# time (one of them written in a record) agree within this, a reused PID's does not.
START_TIME_TOLERANCE = 0.05
# How long a process that ignored the polite signal is given to die of SIGKILL.
KILL_TIMEOUT = 5.0


def same_start(first: float, second: float) -> bool:
    """Whether two recorded start times are those of one process."""
    return abs(first - second) <= START_TIME_TOLERANCE


@dataclass(frozen=True)
class TrackedProcess:
    """A process we started: enough to find it again, and to know it is still the same one."""

    name: str
    pid: int
    create_time: float

    def live(self) -> psutil.Process | None:
        """The process this record names while it runs; None once it is gone or its PID is another's."""
        # psutil is imported where it is used: `nox -l` imports this module and must stay cheap.
        import psutil

        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            process = psutil.Process(self.pid)
            if same_start(process.create_time(), self.create_time) and _alive(process):
                return process
        return None

    def is_running(self) -> bool:
        return self.live() is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrackedProcess:
        return cls(name=str(data["name"]), pid=int(data["pid"]), create_time=float(data["create_time"]))

    @classmethod
    def of_pid(cls, name: str, pid: int) -> TrackedProcess:
        import psutil

        return cls(name=name, pid=pid, create_time=psutil.Process(pid).create_time())


def start(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path | None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
    detach: bool = True,
) -> tuple[TrackedProcess, subprocess.Popen[bytes]]:
    """Start `argv` with its output in `log_path` and return its tracked identity.

    `detach` puts the process in its own session: Ctrl+C in the terminal signals the whole
    foreground process group, and shared services must outlive the run that started them.
    Without a `log_path`, output goes to the terminal with every line prefixed by `name`, so
    two servers in one terminal (`nox -s dev -- --frontend`) stay readable.
    """
    import psutil

    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    with open_log(log_path) if log_path is not None else contextlib.nullcontext() as log:
        try:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log if log is not None else subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                user=user,
                start_new_session=detach,
            )
        except FileNotFoundError as error:
            raise ServiceError(f"cannot start {name}: {argv[0]} not found") from error
    try:
        if log is None:
            _prefix_output(popen, name)
        tracked = TrackedProcess.of_pid(name, popen.pid)
    except psutil.NoSuchProcess as error:
        raise ServiceError(f"{name} exited at once; see {log_path or 'the output above'}") from error
    except BaseException:
        # Interrupted before the caller could record it: nobody would ever stop it otherwise.
        popen.kill()
        popen.wait()
        raise
    return tracked, popen


def open_log(path: Path) -> BinaryIO:
    """`path` opened for appending, never through a symbolic link.

    Root appends every service's output to its log; a link planted where the log belongs
    would have root append to (or create) whatever file it names.
    """
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        descriptor = os.open(path, flags, 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ServiceError(f"{path} is a symbolic link, not a log file; remove it.") from None
        raise
    return os.fdopen(descriptor, "ab")


def _prefix_output(popen: subprocess.Popen[bytes], name: str) -> None:
    from noxlib.core.terminal_text import printable_line

    colours = sys.stdout.isatty()

    def pump() -> None:
        assert popen.stdout is not None
        for raw in iter(popen.stdout.readline, b""):
            text = raw.decode(errors="replace").rstrip()
            plain = printable_line(text)
            if text and not plain.strip():
                continue  # nothing but control sequences (`next dev` showing the cursor on exit)
            # Each line is cleaned once, and again only when colours are kept for a terminal.
            line = printable_line(text, keep_colours=True) if colours else plain
            sys.stdout.write(f"{name:>8} | {line}\n")
            sys.stdout.flush()

    threading.Thread(target=pump, name=f"output-{name}", daemon=True).start()


# ----- stopping ----------------------------------------------------------------------------
def stop_processes(procs: Sequence[psutil.Process], *, sig: int = signal.SIGTERM, timeout: float = 15.0) -> bool:
    """Send `sig` to each, wait up to `timeout`, SIGKILL the survivors and wait again; True when all are gone.

    The one way anything here is stopped. A `psutil.Process` remembers its start time and psutil
    refuses to signal its PID once another process has it, so a stale object never kills a stranger.
    """
    import psutil

    alive = [process for process in procs if _alive(process)]
    for signal_to_send, wait in ((sig, timeout), (signal.SIGKILL, KILL_TIMEOUT)):
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal_to_send)
        # wait_procs reaps our own children, but waits for another's zombie until its parent reaps
        # it (init here does so seconds later): in short rounds, a zombie counting as gone.
        deadline = time.monotonic() + wait
        while alive and (left := deadline - time.monotonic()) > 0:
            alive = [process for process in psutil.wait_procs(alive, timeout=min(left, 0.25))[1] if _alive(process)]
    return not alive


def _alive(process: psutil.Process) -> bool:
    import psutil

    with contextlib.suppress(psutil.NoSuchProcess):
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    return False


def stop(process: TrackedProcess, *, sig: int = signal.SIGTERM, timeout: float = 15.0) -> bool:
    """Stop a process we started, if its PID is still that process; True when it is gone afterwards."""
    live = process.live()
    return live is None or stop_processes([live], sig=sig, timeout=timeout)


def stop_tree(*roots: TrackedProcess, sig: int = signal.SIGTERM, timeout: float = 15.0) -> bool:
    """Stop processes we started and every process they started (reloaders, build workers), all at once.

    Descendants are listed before anything is signalled: once a parent dies they are
    reparented and could no longer be told apart from strangers.
    """
    import psutil

    family: list[psutil.Process] = []
    for root in roots:
        if (live := root.live()) is not None:
            with contextlib.suppress(psutil.NoSuchProcess):
                family += live.children(recursive=True)
            family.append(live)
    return stop_processes(family, sig=sig, timeout=timeout)


def tail(path: Path, lines: int = 5) -> str:
    """The last lines of a log, for error messages that point at the cause."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:] if line.strip())


def wait_until(
    ready: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    process: TrackedProcess | None = None,
    log_path: Path | None = None,
    interval: float = 0.05,
) -> None:
    """Poll `ready` until it holds; fail early, with the log's tail, if the process died."""
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return
        if process is not None and not process.is_running():
            detail = f": {tail(log_path)}" if log_path else ""
            raise ServiceError(f"{what} exited during start-up{detail}")
        if time.monotonic() > deadline:
            detail = f"; see {log_path}" if log_path else ""
            raise ServiceError(f"{what} was not ready after {timeout:.0f}s{detail}")
        time.sleep(interval)
        interval = min(interval * 1.5, 0.5)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Servers bind with SO_REUSEADDR, so a port in TIME_WAIT after a restart is free to them.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(preferred: int | None = None, host: str = "127.0.0.1") -> int:
    """`preferred` when nothing listens there, else a port the kernel says is free."""
    if preferred and port_is_free(preferred, host):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def current_process_identity() -> TrackedProcess:
    return TrackedProcess.of_pid("self", os.getpid())


# ----- the processes of one run ------------------------------------------------------------
_PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


def adopt_orphans() -> bool:
    """Make this process the reaper of its descendants' orphans (Linux); True when it took effect.

    When nox kills pytest's controller on Ctrl+C, its xdist workers are orphaned; without this
    they would be re-parented to init and could no longer be told apart from strangers' processes.
    As a subreaper we stay their parent, so the run can find and stop them before dropping the
    databases they use.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def find_in_directory(directory: Path, accept: Callable[[psutil.Process], bool]) -> list[TrackedProcess]:
    """Live processes of our own account working in `directory` that `accept` recognises.

    How a service is found when the record of it is lost: a server works in its own directory
    (Redis chdirs to its `--dir`, weed is started there), which no record has to remember.
    """
    import psutil

    found = []
    me = os.geteuid()
    for process in psutil.process_iter():
        try:
            if process.uids().effective != me or process.status() == psutil.STATUS_ZOMBIE:
                continue
            if Path(process.cwd()) == directory and accept(process):
                found.append(TrackedProcess(name=process.name(), pid=process.pid, create_time=process.create_time()))
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    return found


def listening_ports(process: TrackedProcess) -> set[int]:
    """The TCP ports `process` listens on (a server like weed listens on several)."""
    import psutil

    try:
        connections = psutil.Process(process.pid).net_connections(kind="tcp")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return set()
    return {c.laddr.port for c in connections if c.status == psutil.CONN_LISTEN and c.laddr}


def descendants_with_env(key: str, value: str) -> list[psutil.Process]:
    """Our live descendants whose environment has `key=value` (a run's pytest and its workers)."""
    import psutil

    found = []
    try:
        children = psutil.Process().children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    session = os.getsid(0)
    for child in children:
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                with contextlib.suppress(psutil.Error):
                    child.wait(timeout=0)  # an orphan we adopted: reaped, so it does not linger
                continue
            # Services run in sessions of their own and may rightly outlive the run.
            if os.getsid(child.pid) == session and child.environ().get(key) == value:
                found.append(child)
        except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError, PermissionError):
            continue
    return found


def stop_descendants_with_env(key: str, value: str, *, timeout: float = 10.0) -> list[int]:
    """Stop every descendant carrying `key=value`; returns the PIDs that had to go.

    Returns only when they are gone: a database is dropped only after nothing of the run can
    still write to it.
    """
    return _stop_all_found(lambda: descendants_with_env(key, value), timeout)


def group_members(pgid: int) -> list[psutil.Process]:
    """The live processes of process group `pgid`."""
    import psutil

    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process)
        except (ProcessLookupError, psutil.NoSuchProcess, psutil.AccessDenied, PermissionError):
            continue
    return members


def stop_group(pgid: int, *, timeout: float = 10.0) -> bool:
    """Stop a process group we created; True when nothing of it is left.

    Only for groups we made ourselves (a child started with `start_new_session`): the group ID
    is its leader's PID, and every member descends from that leader.
    """
    _stop_all_found(lambda: group_members(pgid), timeout)
    return not group_members(pgid)


def _stop_all_found(find: Callable[[], list[psutil.Process]], timeout: float) -> list[int]:
    """Stop what `find` lists, and look again: a member may start a child while it is stopped."""
    stopped: list[int] = []
    for _ in range(3):
        if not (found := find()):
            break
        stop_processes(found, timeout=timeout)
        stopped += [process.pid for process in found]
    return stopped
