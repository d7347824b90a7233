"""`nox -s compose_test`: the suite's tests of the compose backend and images on a real engine.

They need a container engine; without one the session skips with the one line that says how to
get one, so `nox -s ci` stays green on a machine without Docker. With one (GitHub's runners,
Docker Desktop, OrbStack, the team's container lab) it runs tests/test_compose.py with
FR_SERVICES=compose: whole nox runs, hand-run compose commands, image builds and the full stack.
"""

from __future__ import annotations

import nox

from noxlib.ci.arguments import wants_help
from noxlib.services.compose import detect_runtime
from noxlib.sessions import suite_tests

DEFAULT_ARGS = ["-n", "2", "--dist", "loadgroup", "-ra", "tests/test_compose.py"]
NO_ENGINE = (
    "no container engine answers (DOCKER_HOST or the docker context, podman's socket): start Docker, "
    "or on the team's machines "
    '`eval "$(bash ../shared/container-lab/setup.sh env)"`, then run this session again'
)


def skip_reason() -> str | None:
    """Why the session skips here, or None; `nox -s ci` asks it too rather than start a nox only to skip."""
    return NO_ENGINE if detect_runtime() is None else None


def run(session: nox.Session) -> None:
    """Run the compose tests when an engine answers; skip in one line when none does."""
    if wants_help(list(session.posargs)):  # pytest's own help, before any engine is asked
        session.run("pytest", "--help")
        return
    if (reason := skip_reason()) is not None:
        session.skip(reason)
    env = suite_tests.prepare_inner_runs(session)
    session.run("pytest", *(session.posargs or DEFAULT_ARGS), env={**env, "FR_SERVICES": "compose"})
