"""Starting whole `nox` runs from the suite's tests, and checking what they leave behind.

Shared by the lifecycle tests and the fault-injection tests. A run is a real `nox -s test` (or
`infra`, `down`) in a subprocess, with the inner test venv prepared once by the noxlib_test
session; `leftovers()` is the one definition of "this run cleaned up after itself".
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import psycopg
import pytest

from noxlib.ci.listing import nested_nox_env
from noxlib.names.namespace import get_s3_bucket, get_test_db_name, sanitize_namespace
from noxlib.run import buckets, service_leases
from noxlib.run.leases import LeaseRegistry
from noxlib.services import ServiceUrls

if TYPE_CHECKING:
    from noxlib.run.lifecycle import IsolatedRun
    from noxlib.sessions.stack import RunningApp

REPO = Path(__file__).resolve().parent.parent
# Prepared once by the noxlib_test session (noxlib/sessions/suite_tests.py); every inner run reuses it.
ENVDIR = os.environ.get("FR_SUITE_NOX_ENVDIR", str(REPO / ".nox" / "suite-envs"))
PROBE = Path(__file__).resolve().parent / "lifecycle" / "probe_run.py"
# Waits for a go-ahead file instead of sleeping, so a fault can be injected at a known moment.
GATED_PROBE = Path(__file__).resolve().parent / "faults" / "gated_probe.py"
# Facts a journey proves of the tool and a docs check (marker `docs`) finds in the docs, so the
# journeys read no docs page and a docs edit never re-runs them.
# docs/development.md's example of a narrowed run, as `nox -s test -- <these>`.
DOCS_SUBSET_EXAMPLE = ("-k", "reconciliation", "-n", "0")
# `uvx nox`'s last line when no Python 3.12+ is installed (nox's own, before the noxfile runs).
NO_PYTHON_312 = """No Python satisfies "requires-python": '>=3.12'"""
# Plugins the backend's test venv loads by itself that no probe uses: schemathesis and hypothesis
# alone import for ~1.4 s, in pytest and again in every xdist worker, which made them most of
# a probe run's cost. A probe run is about leases, databases, signals and names, not them.
# (pytest-cov stays: `--no-cov` is its option.)
UNUSED_PLUGINS = ("-p", "no:schemathesis", "-p", "no:hypothesispytest", "-p", "no:anyio")


def probe_args(*probes: Path, workers: int = 0) -> list[str]:
    """pytest's arguments for a `nox -s test` whose point is the lifecycle around the probes."""
    return ["--no-cov", "-n", str(workers), "-p", "no:cacheprovider", *UNUSED_PLUGINS, *map(str, probes)]


def nox_env(**extra: str) -> dict[str, str]:
    """The outer session's venv variables would point the inner nox's uv at the wrong venv."""
    return dict(nested_nox_env(), **extra)


def fresh_clone(target: Path) -> Path:
    """A clone of this checkout's commit at `target`: only what is committed, as a newcomer gets it."""
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(target)], check=True, timeout=120)
    return target


def nox_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "nox", "--envdir", str(ENVDIR), "-R", *args]


def run_nox(*args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
    """A short nox session (infra, down) to completion; stdout and stderr together."""
    return subprocess.run(
        nox_command(*args),
        cwd=REPO,
        env=nox_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_run(
    branch: str,
    tmp_path: Path,
    *,
    sleep: float = 0,
    workers: int = 2,
    probes: Sequence[Path] = (PROBE,),
    **env: str,
) -> subprocess.Popen:
    """`nox -s test` on the probe(s) in namespace `branch`, in the background; output in tmp_path."""
    ready = tmp_path / f"ready-{branch}"
    ready.mkdir(exist_ok=True)
    return start_in_terminal(
        nox_command("-s", "test", "--", *probe_args(*probes, workers=workers)),
        tmp_path / f"{branch}.log",
        BRANCH_NAME=branch, PROBE_READY_DIR=str(ready), PROBE_SLEEP=str(sleep), **env,
    )  # fmt: skip


def start_in_terminal(argv: Sequence[str], log: Path, **env: str) -> subprocess.Popen:
    """`argv` as a shell starts a foreground job: its own process group, Ctrl+C and hang-up acting.

    Its output goes to `log`. The child gets its own copy of the descriptor; ours is closed at
    once (a file left to the garbage collector is a ResourceWarning, an error under
    filterwarnings=error).
    """
    with open(log, "wb") as handle:
        return subprocess.Popen(
            list(argv), cwd=REPO, env=nox_env(**env), stdout=handle, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_terminal_signals,
        )  # fmt: skip


def _terminal_signals() -> None:
    """A terminal's foreground run: Ctrl+C and hang-up act. xdist workers ignore SIGINT, and a
    suite run under `nohup` (or a CI runner) ignores SIGHUP; children would inherit either."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def output(branch: str, tmp_path: Path) -> str:
    return (tmp_path / f"{branch}.log").read_text(errors="replace")


def wait_ready(branch: str, tmp_path: Path, count: int, proc: subprocess.Popen) -> None:
    """Until `count` probe workers are inside their test; fails with the run's output if it ended."""
    deadline = time.monotonic() + 120
    while len(list((tmp_path / f"ready-{branch}").iterdir())) < count:
        assert proc.poll() is None, output(branch, tmp_path)
        assert time.monotonic() < deadline, output(branch, tmp_path)
        time.sleep(0.1)


def release_gate(branch: str, tmp_path: Path) -> None:
    """Let the gated probe of `branch` carry on past its gate."""
    (tmp_path / f"ready-{branch}" / "go").write_text("go")


def leftovers(namespace: str, urls: ServiceUrls, registry: LeaseRegistry | None = None) -> list[str]:
    """Everything a run of `namespace` could leave behind; empty when it cleaned up.

    `registry` defaults to this process's state directory; runs under another FR_CACHE_DIR
    pass theirs.
    """
    found = []
    with psycopg.connect(urls.database_url(), autocommit=True) as connection:
        rows = connection.execute("SELECT datname FROM pg_database").fetchall()
    found += [name for (name,) in rows if name.startswith(get_test_db_name(namespace))]
    if buckets.bucket_exists(urls, get_s3_bucket(namespace)):
        found.append(f"bucket {get_s3_bucket(namespace)}")
    leases = (registry or service_leases.registry()).snapshot().leases
    found += [f"lease pid {lease.pid}" for lease in leases if lease.namespace == namespace]
    found += [f"process {pid}" for pid in run_processes(namespace)]
    return found


def run_processes(namespace: str) -> list[int]:
    """Live processes of a run of `namespace`: its nox (by BRANCH_NAME) and its pytest (TEST_NAMESPACE).

    Services a run starts inherit its BRANCH_NAME too, and may rightly outlive it; only nox
    itself is matched by branch.
    """
    pids = []
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        try:
            environ = process.environ()
            is_nox = "nox" in process.cmdline()
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        branch = environ.get("BRANCH_NAME")
        by_branch = is_nox and branch is not None and sanitize_namespace(branch) == namespace
        if by_branch or environ.get("TEST_NAMESPACE") == namespace:
            pids.append(process.pid)
    return pids


# ----- a real backend, as `nox -s smoke` and `nox -s perf` start one --------------------------------
def backend_python() -> Path:
    """The backend venv's Python, prepared by the session running the suite (noxlib/sessions/suite_tests.py)."""
    python = Path(ENVDIR) / "test" / "bin" / "python"
    if not python.exists():
        pytest.skip(f"{python} is prepared by `nox -s noxlib_test`; run the suite through it")
    return python


def alembic_runner(python: Path) -> Callable[..., None]:
    """A stand-in for `session.run` that runs alembic from the backend's venv, for `migrate_with_alembic`."""

    def run(program: str, *args: str, env: dict[str, str], silent: bool = True) -> None:
        subprocess.run(
            [str(python.parent / program), *args], env={**os.environ, **env}, check=True, capture_output=silent
        )

    return run


@contextlib.contextmanager
def real_backend(run: IsolatedRun, log: Path) -> Iterator[RunningApp]:
    """uvicorn on the run's database, bucket and Redis prefix, on a free port; stopped on leaving."""
    from noxlib.core.processes import free_port
    from noxlib.sessions import stack

    port = free_port()
    env = stack.backend_environment(run.contract, frontend_origin=f"http://127.0.0.1:{port}")
    with stack.running_stack() as apps:
        yield stack.start_backend(apps, backend_python(), env, port=port, log_path=log)
