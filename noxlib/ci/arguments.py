"""One way every session reads its arguments (`nox -s NAME -- ARGS`), like pip's noxfile: argparse.

An unknown option is refused in one line (`nox -s down -- --forse` was silently ignored), and
`-- --help` prints what the session takes and returns before anything starts: no services, no
databases, no server. A session declares what it takes beside its definition (`@session(...,
options=...)`): nothing (the default), a function that adds its options to the parser,
"forwarded" (pytest or mypy judge them, and the session prints the tool's own help before it
starts anything), or "own" (a command line of its own that does the same: `smoke`, `env_keys`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, Literal

from noxlib.core.errors import UserError

Options = Callable[[argparse.ArgumentParser], Any] | Literal["forwarded", "own"] | None
HELP_FLAGS = ("-h", "--help")
# The arguments each session of this nox run was given, parsed (a session name is unique per run).
_PARSED: dict[str, argparse.Namespace] = {}
# What each session of the noxfile declared it takes, by the name `nox -l --json` shows as "name"
# (a parametrized session's base name): the one list a test walks to check every `-- --help`.
DECLARED: dict[str, tuple[str, Options]] = {}


def declare(name: str, description: str, options: Options) -> None:
    """Record what session `name` takes, beside its definition (noxlib/ci/venvs.py `session`)."""
    DECLARED[name] = (description, options)


class SessionParser(argparse.ArgumentParser):
    """argparse whose mistakes are one line for the person (argparse would print its usage block first)."""

    def error(self, message: str) -> Any:
        raise UserError(f"{self.prog}: {message}; `{self.prog} --help` says what it takes")


def parser_for(name: str, description: str, options: Callable[[argparse.ArgumentParser], Any] | None) -> SessionParser:
    """The parser of session `name`: its options, or none at all."""
    parser = SessionParser(prog=f"nox -s {name} --", description=description, allow_abbrev=False)
    if options is not None:
        options(parser)
    return parser


def wants_help(posargs: list[str]) -> bool:
    """The person asked a forwarding session for help: print the tool's own, start nothing."""
    return any(arg in HELP_FLAGS for arg in posargs)


def check(name: str, description: str, options: Options, posargs: list[str]) -> bool:
    """Parse the session's arguments as it declared them; False when `--help` was printed instead."""
    if options in ("forwarded", "own"):
        return True  # the tool or the session's own command line judges them
    parser = parser_for(name, description, options if callable(options) else None)
    try:
        _PARSED[name] = parser.parse_args(posargs)
    except SystemExit:  # argparse printed --help (its mistakes raise UserError above)
        return False
    return True


def arguments(session: Any) -> argparse.Namespace:
    """What `session` was given, as its declared options parsed them."""
    return _PARSED.get(session.name, argparse.Namespace())
