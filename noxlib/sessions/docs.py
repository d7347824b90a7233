"""The docs session: serve with live reload for a person, build strictly for everyone else.

A person at a terminal wants `mkdocs serve` on a port that is free; CI (and anyone piping the
output) wants `mkdocs build --strict`, which fails on a broken link or a stale generated page.
Port 8000 is mkdocs' default but also the backend's, so when it is taken the next free port is
used and the session says which.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from noxlib.ci.arguments import arguments
from noxlib.core.errors import UserError
from noxlib.core.paths import REPO_ROOT
from noxlib.core.processes import port_is_free

if TYPE_CHECKING:
    import nox

HOST = "127.0.0.1"
PREFERRED_PORT = 8000
# How far past 8000 to look before giving up: a developer running this many servers has a
# problem that a port number will not fix.
PORT_SEARCH_SPAN = 100
CONFIG_FILE = REPO_ROOT / "mkdocs.yml"
SITE_DIR = REPO_ROOT / "site"
MODES = ("serve", "build")
# Material for MkDocs prints a multi-line banner about MkDocs 2.0 on every run; it is news
# about upstream, not about these docs, and would bury the line that says where they are served.
MKDOCS_ENV = {"NO_MKDOCS_2_WARNING": "1"}


def choose_port(preferred: int = PREFERRED_PORT, host: str = HOST) -> int:
    """`preferred` when it is free, else the next free port above it."""
    for port in range(preferred, preferred + PORT_SEARCH_SPAN):
        if port_is_free(port, host):
            return port
    raise UserError(
        f"no free port for the docs server in {preferred}-{preferred + PORT_SEARCH_SPAN - 1} "
        f"on {host}; stop a server there, or run `nox -s docs -- build` to build without one"
    )


def choose_mode(posargs: list[str], interactive: bool) -> str:
    """`build` or `serve`: what the user asked for, else serve only when someone is watching."""
    if len(posargs) > 1 or (posargs and posargs[0] not in MODES):
        raise UserError(
            f"unknown docs argument(s) {' '.join(posargs)!r}; use `nox -s docs` "
            "(serve when interactive), `nox -s docs -- serve` or `nox -s docs -- build`"
        )
    if posargs:
        return posargs[0]
    return "serve" if interactive else "build"


def build(session: nox.Session) -> None:
    """`mkdocs build --strict` into site/: any warning (broken link, stale page) fails it."""
    session.run(
        "mkdocs",
        "build",
        "--strict",
        "--config-file",
        str(CONFIG_FILE),
        "--site-dir",
        str(SITE_DIR),
        env=MKDOCS_ENV,
    )


def serve(session: nox.Session) -> None:
    """`mkdocs serve` with live reload on 127.0.0.1, on 8000 or the next free port."""
    port = choose_port()
    if port != PREFERRED_PORT:
        session.log(f"port {PREFERRED_PORT} is taken (usually by the backend); serving on {port}")
    session.log(f"docs: http://{HOST}:{port}/ (live reload; Ctrl+C stops)")
    session.run(
        "mkdocs",
        "serve",
        "--livereload",
        "--config-file",
        str(CONFIG_FILE),
        "--dev-addr",
        f"{HOST}:{port}",
        env=MKDOCS_ENV,
    )


def add_options(parser: argparse.ArgumentParser) -> None:
    """`nox -s docs -- [serve|build]`."""
    parser.add_argument(
        "mode",
        nargs="?",
        choices=MODES,
        help="serve with live reload, or build strictly (default: serve at a terminal)",
    )


def run(session: nox.Session) -> None:
    """Serve or build, as `choose_mode` decides from the arguments and the terminal.

    `mkdocs serve` exits 0 on Ctrl+C; the signal gate every session runs under
    (noxlib/ci/venvs.py) still ends the session 130, not successful.
    """
    mode = getattr(arguments(session), "mode", None)
    if choose_mode([mode] if mode else [], session.interactive) == "serve":
        serve(session)
    else:
        build(session)
