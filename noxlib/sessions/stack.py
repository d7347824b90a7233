"""The app as processes: uvicorn for the backend, Next.js for the frontend.

`dev` and `smoke` both run the app; this module is the one place that knows how. Every
process is started through `noxlib.core.processes` (PID + start time recorded) and stopped with
its descendants (uvicorn's reloader worker, Next's build workers) — and nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nox

from noxlib.core import processes
from noxlib.core.errors import ServiceError, UserError
from noxlib.core.node import npm_executable
from noxlib.core.paths import BACKEND_DIR, FRONTEND_DIR, REPO_ROOT
from noxlib.core.processes import TrackedProcess
from noxlib.names.run_contract import RunContract
from noxlib.services.probes import http_answers

HOST = "127.0.0.1"
START_TIMEOUT = 120.0


@dataclass
class RunningApp:
    name: str
    url: str
    process: TrackedProcess
    log_path: Path | None = None


@dataclass
class Stack:
    """What one `dev` or `smoke` run started; `stop()` undoes exactly that."""

    apps: list[RunningApp] = field(default_factory=list)

    def stop(self) -> None:
        processes.stop_tree(*(app.process for app in self.apps))
        self.apps.clear()

    def url(self, name: str) -> str:
        return next(app.url for app in self.apps if app.name == name)


@contextlib.contextmanager
def running_stack() -> Iterator[Stack]:
    stack = Stack()
    try:
        yield stack
    finally:
        stack.stop()


def git_sha() -> str:
    result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def require_port(port: int, what: str, variable: str) -> int:
    """The exact port a developer expects, or a clear line about who holds it."""
    import psutil

    if processes.port_is_free(port):
        return port
    holder = ""
    with contextlib.suppress(psutil.Error):
        for connection in psutil.net_connections("tcp"):
            if connection.laddr and connection.laddr.port == port and connection.pid:
                holder = f" by pid {connection.pid} ({psutil.Process(connection.pid).name()})"
                break
    raise UserError(f"port {port} for the {what} is taken{holder}; stop it or set {variable}.")


def backend_environment(contract: RunContract, *, frontend_origin: str) -> dict[str, str]:
    """The run's contract plus what a served app needs beyond it (CORS, environment, build sha)."""
    return dict(
        contract.to_env(),
        # The frontend answers on both loopback names (next dev's allowedDevOrigins); so does CORS.
        CORS_ORIGINS=",".join(
            sorted({frontend_origin, frontend_origin.replace(f"//{HOST}:", "//localhost:"), "http://localhost:3000"})
        ),
        ENVIRONMENT="development",
        GIT_COMMIT_SHA=git_sha(),
    )


def health(url: str) -> dict[str, Any]:
    """The backend's /api/health body (also when it answers 503)."""
    try:
        with urllib.request.urlopen(f"{url}/api/health", timeout=5) as response:  # noqa: S310
            body = json.loads(response.read())
    except urllib.error.HTTPError as error:
        body = json.loads(error.read() or b"{}")
    return body if isinstance(body, dict) else {}


def start_backend(
    stack: Stack,
    python: Path,
    env: dict[str, str],
    *,
    port: int,
    reload: bool = False,
    log_path: Path | None = None,
) -> RunningApp:
    argv = [str(python), "-m", "uvicorn", "src.main:create_app", "--factory",
            "--host", HOST, "--port", str(port)]  # fmt: skip
    if reload:
        argv += ["--reload", "--reload-dir", str(BACKEND_DIR / "src")]
    process, _ = processes.start(
        "backend", argv, log_path=log_path, env={**os.environ, **env}, cwd=BACKEND_DIR,
        detach=False,
    )  # fmt: skip
    app = RunningApp("backend", f"http://{HOST}:{port}", process, log_path)
    stack.apps.append(app)
    processes.wait_until(
        lambda: http_answers(f"{app.url}/api/health"),
        what=f"the backend on port {port}",
        timeout=START_TIMEOUT,
        process=process,
        log_path=log_path,
    )
    return app


def start_frontend(
    stack: Stack,
    *,
    port: int,
    backend_url: str,
    production: bool,
    log_path: Path | None = None,
) -> RunningApp:
    """`next dev` for people, the production build (`npm run start`) for smoke runs."""
    script = "start" if production else "dev"
    env = {**os.environ, "PORT": str(port), "HOST": HOST, "BACKEND_URL": backend_url,
           "NEXT_TELEMETRY_DISABLED": "1"}  # fmt: skip
    process, _ = processes.start(
        "frontend", [npm_executable("the frontend"), "run", script], log_path=log_path, env=env, cwd=FRONTEND_DIR,
        detach=False,
    )  # fmt: skip
    app = RunningApp("frontend", f"http://{HOST}:{port}", process, log_path)
    stack.apps.append(app)
    processes.wait_until(
        lambda: http_answers(app.url + "/"),
        what=f"the frontend on port {port}",
        timeout=START_TIMEOUT,
        process=process,
        log_path=log_path,
    )
    return app


def wait_forever(stack: Stack) -> None:
    """Block until Ctrl+C, or until one of the apps exits on its own (then say which)."""
    import psutil

    watched = {app.process.live(): app for app in stack.apps}
    exited = watched.get(None)
    while exited is None:
        gone, _ = psutil.wait_procs([process for process in watched if process is not None], timeout=1.0)
        exited = watched[gone[0]] if gone else None
    # Ctrl+C reaches the apps (same process group) and us at once; give our own
    # KeyboardInterrupt a moment to arrive so an interrupt is not reported as a crash.
    time.sleep(1.0)
    raise ServiceError(f"the {exited.name} exited; see its output above")


# ----- sessions ----------------------------------------------------------------------------
BACKEND_PORT = 8000
FRONTEND_PORT = 3000


def _port_from_env(variable: str, default: int) -> int:
    value = os.environ.get(variable, str(default))
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise UserError(f"{variable}={value!r} is not a port number (1-65535).")
    return int(value)


def dev_options(parser: argparse.ArgumentParser) -> None:
    """`nox -s dev -- --frontend`."""
    parser.add_argument("--frontend", action="store_true", help="also run the Next.js dev server on :3000")


def boot_options(parser: argparse.ArgumentParser) -> None:
    """`nox -s boot -- MODE`."""
    parser.add_argument(
        "mode", nargs="?", default="full", choices=("dry-run", "critical", "full"),
        help="dry-run: the configuration loads and the app builds; critical: also the database answers at the "
        "alembic head; full (default): also Redis, the bucket and the Vault secrets file",
    )  # fmt: skip


def run_dev(session: nox.Session, *, frontend: bool) -> None:
    """Services (kept for the next run), the dev database migrated, uvicorn --reload; Ctrl+C stops the apps only."""
    from noxlib.core import node
    from noxlib.core.paths import state_dir
    from noxlib.core.signals import interrupt_once
    from noxlib.run import buckets, lifecycle
    from noxlib.run.databases import ensure_database
    from noxlib.run.service_leases import leased_services
    from noxlib.sessions.service_access import service_lines

    backend_port = require_port(_port_from_env("BACKEND_PORT", BACKEND_PORT), "backend", "BACKEND_PORT")
    frontend_port = _port_from_env("FRONTEND_PORT", FRONTEND_PORT)
    if frontend:
        require_port(frontend_port, "frontend", "FRONTEND_PORT")
        node.ensure_node_modules(FRONTEND_DIR, purpose="the frontend", log=session.log, ignore_scripts=False)
    namespace = lifecycle.run_namespace()
    with (
        interrupt_once(),
        leased_services("dev", namespace, keep=True, log=session.log) as service_lease,
    ):
        urls = service_lease.urls
        contract = RunContract.for_run("dev", urls, namespace)
        database, bucket = contract.database, contract.bucket
        ensure_database(urls.database_url(), database)
        lifecycle.migrate_with_alembic(session.run)(contract.database_url)
        buckets.ensure_bucket(urls, bucket)
        origin = f"http://{HOST}:{frontend_port}"
        env = backend_environment(contract, frontend_origin=origin)
        for line in service_lines(urls, database=database, bucket=bucket, redis_prefix=contract.redis_key_prefix):
            session.log(line)
        with running_stack() as stack:
            backend = start_backend(stack, Path(session.bin) / "python", env, port=backend_port, reload=True)
            session.log(f"backend    {backend.url}  (API docs {backend.url}/api/docs)")
            opened = f"{backend.url}/api/docs"
            if frontend:
                app = start_frontend(stack, port=frontend_port, backend_url=backend.url, production=False)
                session.log(f"frontend   {app.url}")
                opened = app.url
            labels = " and ".join(f"`{app.name} |`" for app in stack.apps)
            session.log(
                f"Ctrl+C stops the app (its output: the {labels} lines); services stay up for the next run "
                f"(`nox -s down` stops them; state in {state_dir()})"
            )
            # Last, so it is the line a person sees: what to open.
            session.log(f"open       {opened}" + ("" if frontend else "  (-- --frontend adds the web app)"))
            wait_forever(stack)


def run_boot(session: nox.Session, *, mode: str) -> None:
    """`python -m src.boot --mode MODE` with the environment a test run gets (its own database and bucket)."""
    from noxlib.run import lifecycle

    if mode not in ("dry-run", "critical", "full"):
        raise UserError(f"boot mode {mode!r} is not one of dry-run, critical, full.")
    with (
        lifecycle.isolated_run(
            lifecycle.migrate_with_alembic(session.run), log=session.log, namespace_suffix="boot"
        ) as run,
        session.chdir(BACKEND_DIR),
    ):
        session.run("python", "-m", "src.boot", "--mode", mode, env=run.env)
