"""`nox -s smoke`: check the deployment at --base-url, or start the whole stack and check that.

Without a URL the session starts the stack itself: the services through the test lifecycle,
uvicorn, and the frontend's production build on free ports; then it runs `python -m noxlib.smoke`
(the deploy runner's exact code path) against the frontend, which proxies /api/* to the backend.
`nox -s perf` loads the same stack (`own_stack`). Session code: python 3.12 like the rest of
noxlib, unlike the checks it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from noxlib.core.errors import UserError
from noxlib.core.paths import FRONTEND_DIR, REPO_ROOT
from noxlib.smoke.checks import OWN_STACK_MODE, SCREENSHOT_DIR
from noxlib.smoke.cli import SESSION_PROG, UsageError, parse_arguments

# Generated or not read by `next build`: their being newer must not force a rebuild.
NOT_BUILD_INPUTS = {"node_modules", ".next", "out", "tests", "coverage", "next-env.d.ts"}
NOT_BUILD_INPUT_SUFFIXES = (".tsbuildinfo", ".md")
# BUILD_ID and server.js come from `next build`; the static copy from the build script's last step.
BUILD_OUTPUTS = (".next/BUILD_ID", ".next/standalone/server.js", ".next/standalone/.next/static")


def stale_build_reason(frontend: Path = FRONTEND_DIR) -> str | None:
    """Why the production build must be redone, or None when .next/ is newer than every input."""
    built_at = []
    for output in BUILD_OUTPUTS:
        try:
            built_at.append((frontend / output).stat().st_mtime)
        except FileNotFoundError:
            return f"{output} is missing"
    newest, newest_path = 0.0, ""
    for directory, subdirectories, files in os.walk(frontend):
        subdirectories[:] = [name for name in subdirectories if name not in NOT_BUILD_INPUTS]
        for name in files:
            if name in NOT_BUILD_INPUTS or name.endswith(NOT_BUILD_INPUT_SUFFIXES):
                continue
            path = Path(directory) / name
            modified = path.stat().st_mtime
            if modified > newest:
                newest, newest_path = modified, str(path.relative_to(frontend))
    if newest > min(built_at):
        return f"{newest_path} changed since the last build"
    return None


def run_session(session: Any) -> None:
    """`nox -s smoke`: check the deployment at --base-url, or start the whole stack and check that."""
    try:
        options = parse_arguments(list(session.posargs), prog=SESSION_PROG)
    except UsageError as error:
        raise UserError(f"smoke: {error}") from None
    except SystemExit as printed:  # --help: argparse printed it; nothing starts
        if printed.code in (0, None):
            return
        raise
    if options.base_url:
        run_module(session, list(session.posargs))
    else:
        check_own_stack(session, options)


def run_module(session: Any, argv: list[str]) -> None:
    """This module in the session's Python, where playwright is installed: the script's exact code path."""
    from nox.command import CommandFailed

    with session.chdir(REPO_ROOT):
        try:
            session.run("python", "-m", "noxlib.smoke", *argv)
        except CommandFailed:
            raise UserError("smoke checks failed; the FAIL lines above say which and why.") from None


def check_own_stack(session: Any, options: argparse.Namespace) -> None:
    """Services, backend and the frontend's production build on free ports; checked; all stopped."""
    if options.api_only:
        raise UserError("--api-only needs --base-url (the backend's); without a URL smoke checks its own frontend.")
    with own_stack(session, artefacts=SCREENSHOT_DIR, namespace_suffix="smoke") as app:
        argv = ["--base-url", app.url, "--mode", options.mode or OWN_STACK_MODE, "--timeout", str(options.timeout),
                "--screenshots", str(options.screenshots)]  # fmt: skip
        if options.no_browser:
            argv.append("--no-browser")
        try:
            run_module(session, argv)
        except UserError as error:
            raise UserError(f"{error} App logs: {', '.join(map(str, app.logs))}") from None


@dataclass
class OwnStack:
    """The frontend a session checks (it proxies /api/* to the backend) and where both apps log."""

    url: str
    logs: tuple[Path, Path]


@contextlib.contextmanager
def own_stack(session: Any, *, artefacts: Path, namespace_suffix: str) -> Iterator[OwnStack]:
    """Services, backend and the frontend's production build on free ports, stopped however the block ends.

    `smoke` and `perf` check the same stack a deployment runs: the production build, not `next dev`.
    """
    from noxlib.core import node
    from noxlib.core.processes import free_port
    from noxlib.run import lifecycle
    from noxlib.sessions import frontend, stack

    reinstalled = node.ensure_node_modules(FRONTEND_DIR, purpose="the frontend", log=session.log, ignore_scripts=False)
    reason = "node_modules were reinstalled" if reinstalled else stale_build_reason()
    if reason:
        session.log(f"frontend   npm run build ({reason})")
        frontend.npm_script(session, "build")
    else:
        session.log(
            "frontend   build is current (.next/ is newer than every source file and package-lock.json); "
            "skipping npm run build"
        )
    artefacts.mkdir(parents=True, exist_ok=True)
    logs = {name: artefacts / f"{name}.log" for name in ("backend", "frontend")}
    for log in logs.values():
        log.unlink(missing_ok=True)
    migrate = lifecycle.migrate_with_alembic(session.run)
    with (
        lifecycle.isolated_run(migrate, workers=0, log=session.log, namespace_suffix=namespace_suffix) as run,
        stack.running_stack() as apps,
    ):
        backend_port, frontend_port = free_port(), free_port()
        while frontend_port == backend_port:
            frontend_port = free_port()
        origin = f"http://{stack.HOST}:{frontend_port}"
        env = stack.backend_environment(run.contract, frontend_origin=origin)
        backend = stack.start_backend(
            apps, Path(session.bin) / "python", env, port=backend_port, log_path=logs["backend"]
        )
        session.log(f"backend    {backend.url}  (log {logs['backend']})")
        app = stack.start_frontend(
            apps, port=frontend_port, backend_url=backend.url, production=True, log_path=logs["frontend"]
        )
        session.log(f"frontend   {app.url}  (log {logs['frontend']})")
        yield OwnStack(app.url, (logs["backend"], logs["frontend"]))
