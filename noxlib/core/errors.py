"""Errors meant for the person at the terminal, and the one place that turns them into a line.

A user's mistake (a bad env var, a taken port, a missing tool) must read as one sentence that
says what happened and what to do; a traceback would bury that sentence, so sessions report
`UserError` through `reported` instead of letting nox print the stack.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

# `python3 -m noxlib.smoke` imports this module on a deploy runner's bare python3 (3.9+): a
# TypeVar, not the 3.12 `def reported[F: ...]` syntax, keeps it parseable there.
F = TypeVar("F", bound=Callable[..., Any])


class UserError(Exception):
    """Something the user can fix; its message is the whole report."""


class ServiceError(UserError):
    """A service did not start, answer or stop as expected."""


def first_line(error: BaseException) -> str:
    """The first non-blank line of an error: a driver's message can run to a page of context."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def reported(func: F) -> F:  # noqa: UP047 (see F above)
    """Decorate a nox session so a `UserError` ends it with its one-line message."""

    @functools.wraps(func)
    def wrapper(session: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(session, *args, **kwargs)
        except UserError as error:
            from noxlib.core.redaction import redact

            # nox ends the line with its own full stop. An error may quote a URL: mask its password.
            session.error(redact(str(error)).rstrip("."))

    return wrapper  # type: ignore[return-value]
