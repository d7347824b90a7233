"""Errors meant for the person at the terminal, and the one place that turns them into a line.

A user's mistake (a bad env var, a taken port, a missing tool) must read as one sentence that
says what happened and what to do; a traceback would bury that sentence, so sessions report
`UserError` through `reported` instead of letting nox print the stack.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


class UserError(Exception):
    """Something the user can fix; its message is the whole report."""


class ServiceError(UserError):
    """A service did not start, answer or stop as expected."""


def reported[F: Callable[..., Any]](func: F) -> F:
    """Decorate a nox session so a `UserError` ends it with its one-line message."""

    @functools.wraps(func)
    def wrapper(session: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(session, *args, **kwargs)
        except UserError as error:
            from noxlib.redaction import redact

            # nox ends the line with its own full stop. An error may quote a URL: mask its password.
            session.error(redact(str(error)).rstrip("."))

    return wrapper  # type: ignore[return-value]
