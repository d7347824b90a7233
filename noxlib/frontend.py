"""The frontend's npm scripts as nox sessions: the same commands GitHub runs, installed only when needed."""

from __future__ import annotations

import nox

from noxlib import node
from noxlib.paths import FRONTEND_DIR

NPM_ENV = {"NEXT_TELEMETRY_DISABLED": "1"}


def npm_script(session: nox.Session, script: str, *args: str) -> None:
    """`npm run <script>` in apps/frontend after `npm ci` if package-lock.json changed."""
    if node.npm_install_needed(FRONTEND_DIR):
        node.ensure_node_modules(FRONTEND_DIR, purpose="the frontend", log=session.log, ignore_scripts=False)
    npm = node.npm_executable("the frontend")
    with session.chdir(FRONTEND_DIR):
        session.run(npm, "run", script, *([*["--"], *args] if args else []), env=NPM_ENV, external=True)
