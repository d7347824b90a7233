"""The frontend's npm scripts as nox sessions: the same commands GitHub runs, installed only when needed."""

from __future__ import annotations

import sys
from typing import TextIO

import nox

from noxlib.core import node
from noxlib.core.paths import FRONTEND_DIR

NPM_ENV = {"NEXT_TELEMETRY_DISABLED": "1"}


def color_environment(stream: TextIO = sys.stdout) -> dict[str, str | None]:
    """No colour escapes when the output is not a terminal (a `nox -s ci` log, a pipe, a file).

    vitest and next colour their output whenever `CI` is set, terminal or not, and a log file
    then reads `\\x1b[32m✓\\x1b[39m`. Every colour library they use honours NO_COLOR over CI.
    FORCE_COLOR is removed rather than set to 0: Node warns on every start when it sees both.
    """
    if stream.isatty():
        return {}
    return {"NO_COLOR": "1", "FORCE_COLOR": None}


def install(session: nox.Session) -> None:
    """`npm ci` in apps/frontend if package-lock.json changed since the last install.

    Runs that share the checkout's node_modules call this before they start side by side (the
    journeys' dev and smoke runs): two `npm ci` at once would wipe each other's install.
    """
    if node.npm_install_needed(FRONTEND_DIR):
        node.ensure_node_modules(FRONTEND_DIR, purpose="the frontend", log=session.log, ignore_scripts=False)


def npm_script(session: nox.Session, script: str, *args: str) -> None:
    """`npm run <script>` in apps/frontend after `npm ci` if package-lock.json changed."""
    install(session)
    npm = node.npm_executable("the frontend")
    env = {**NPM_ENV, **color_environment()}
    with session.chdir(FRONTEND_DIR):
        session.run(npm, "run", script, *([*["--"], *args] if args else []), env=env, external=True)
