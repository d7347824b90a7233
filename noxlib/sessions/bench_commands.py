"""The bench rows that time whole commands: `nox -s test`, `nox -s ci`, and `uvx nox ...` as typed.

The `loop` group times commands as a developer types them (`uvx nox -l`, a warm
`uvx nox -s test`, ...) from what a terminal has; `-- --before REF` runs each of them in a clone
of REF too, interleaved with this checkout's runs so both see the same machine load.
"""

from __future__ import annotations

import datetime
import itertools
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import nox

from noxlib.ci import bytecode
from noxlib.ci.listing import VENV_VARIABLES, nested_nox_env, nox_command
from noxlib.core.errors import UserError
from noxlib.core.paths import REPO_ROOT
from noxlib.sessions.bench_figures import Figure, labelled, output_of, timed

# (figure name, uvx nox arguments): the figures of issue 15's table. The cheap ones are timed
# from the first run; a warm one after an untimed run that builds its venv.
Command = tuple[str, tuple[str, ...]]
CHEAP_COMMANDS: tuple[Command, ...] = (("uvx nox --version", ("--version",)), ("uvx nox -l", ("-l",)))
WARM_COMMANDS: tuple[Command, ...] = (
    ("uvx nox -s env_keys, warm", ("-s", "env_keys")),
    ("uvx nox -s docs -- build, warm", ("-s", "docs", "--", "build")),
    ("uvx nox -s test, warm", ("-s", "test")),
)
SUITE_COMMANDS: tuple[Command, ...] = (("uvx nox -s noxlib_test", ("-s", "noxlib_test")),)
_TIMESTAMP = re.compile(r"^nox > \[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\] (.*)$")
_PYTEST_TIME = re.compile(r" in ([0-9.]+)s")


def _nox(*args: str) -> list[str]:
    """This nox (the session's script environment) on this checkout's noxfile."""
    return nox_command(REPO_ROOT / "noxfile.py", *args)


def nox_test_overhead(runs: int) -> list[Figure]:
    """`nox -s test` end to end, and how much of it is not pytest's own test time."""
    figures = []
    for workers in ("0", "auto"):
        walls, overheads = [], []
        for _ in range(runs):
            started = time.perf_counter()
            output = output_of(_nox("-R", "-s", "test", "--", "-n", workers), nested_nox_env(), REPO_ROOT)
            wall = time.perf_counter() - started
            inside = [float(m) for m in _PYTEST_TIME.findall(output)]
            walls.append(wall)
            overheads.append(wall - (inside[-1] if inside else 0.0))
        figures.append(Figure("test", f"nox -s test -- -n {workers}: wall", walls))
        figures.append(Figure("test", f"nox -s test -- -n {workers}: outside pytest", overheads))
    return figures


def warm_and_cached_ci(runs: int) -> list[Figure]:
    """A warm `nox -s ci` (venvs exist, cache off) against the no-op run the input-hash cache allows."""
    env = {k: v for k, v in nested_nox_env().items() if k != "CI"}
    warm = timed(lambda: output_of(_nox("-R", "-s", "ci", "--", "--no-cache"), env, REPO_ROOT), max(1, runs - 1))
    output_of(_nox("-R", "-s", "ci"), env, REPO_ROOT)  # records every session's hash
    cached = timed(lambda: output_of(_nox("-R", "-s", "ci"), env, REPO_ROOT), runs * 2)
    return [
        Figure("ci", "nox -s ci, warm, --no-cache", warm),
        Figure("ci", "nox -s ci, nothing changed (cached)", cached),
    ]


def developer_env(session: nox.Session) -> dict[str, str]:
    """What a terminal has: no venv of ours on PATH or in the environment."""
    env = {key: value for key, value in os.environ.items() if key not in VENV_VARIABLES}
    env = bytecode.as_the_person_set_it(env)
    env.pop("NOX_CURRENT_SESSION", None)
    ours = str(Path(session.bin))
    env["PATH"] = os.pathsep.join(part for part in env.get("PATH", "").split(os.pathsep) if part != ours)
    return env


def uvx_nox(*args: str) -> list[str]:
    uvx = shutil.which("uvx")
    if uvx is None:
        raise UserError("the loop benchmark times `uvx nox ...` as typed: install uv (it brings uvx).")
    return [uvx, "nox", "--add-timestamp", *args] if args != ("--version",) else [uvx, "nox", "--version"]


def fixed_cost(output: str, started: datetime.datetime) -> float | None:
    """Seconds from starting `uvx nox -s X` to the session's first own command (after `uv sync`)."""
    stamped = [(match[1], match[2]) for line in output.splitlines() if (match := _TIMESTAMP.match(line))]
    for (_, text), (stamp, _) in itertools.pairwise(stamped):
        if " sync " in text and text.split()[0].endswith("uv"):
            return (datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f") - started).total_seconds()
    return None


def clone_checkout(into: Path, ref: str = "HEAD", source: Path = REPO_ROOT) -> Path:
    """A fresh clone of `source` at `ref`: the "before" side, or a cold `ci`'s checkout."""
    resolved = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        cwd=source, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if resolved.returncode != 0:
        raise UserError(f"--before {ref}: not a commit of this repository; give a branch, tag or commit.")
    subprocess.run(["git", "clone", "--quiet", "--shared", str(source), str(into)], check=True)
    subprocess.run(["git", "checkout", "--quiet", "--detach", resolved.stdout.strip()], cwd=into, check=True)
    return into


def timed_commands(
    session: nox.Session, commands: tuple[Command, ...], runs: int, checkouts: dict[str, Path], *, warm: bool = False
) -> list[Figure]:
    """Each command in each checkout; a command that fails is reported and skipped."""
    env = developer_env(session)
    figures = []
    for name, args in commands:
        try:
            measured = _bench_command(env, name, args, warm, runs, checkouts)
        except UserError as error:
            # One failing command (say, a red test run in the REF checkout) must not cost the
            # figures of the others: say which and carry on.
            session.warn(f"no figure for {name!r}: {error}")
            continue
        # Whole commands take minutes: show each figure as it lands, not only in the final table.
        for figure in measured:
            session.log(figure.row())
        figures += measured
    return figures


def _bench_command(
    env: dict[str, str], name: str, args: tuple[str, ...], warm: bool, runs: int, checkouts: dict[str, Path]
) -> list[Figure]:
    """One command in each checkout, the checkouts interleaved run by run."""
    samples: dict[str, list[float]] = {label: [] for label in checkouts}
    fixed: dict[str, list[float]] = {label: [] for label in checkouts}
    if warm:
        for root in checkouts.values():
            output_of(uvx_nox(*args), env, root)
    for _ in range(runs):
        for label, root in checkouts.items():
            started_at = datetime.datetime.now()
            started = time.perf_counter()
            output = output_of(uvx_nox(*args), env, root, merged=True)
            samples[label].append(time.perf_counter() - started)
            cost = fixed_cost(output, started_at)
            if cost is not None:
                fixed[label].append(cost)
    measured = []
    for label in checkouts:
        measured.append(Figure("loop", labelled(name, label), samples[label]))
        if fixed[label]:
            measured.append(Figure("loop", labelled(f"{name.split(',')[0]}: to first command", label), fixed[label]))
    return measured


def cold_ci(session: nox.Session, checkouts: dict[str, Path]) -> list[Figure]:
    """`uvx nox -s ci` in a fresh clone with nothing cached, once per checkout (minutes each)."""
    env = developer_env(session)
    figures = []
    for label, root in checkouts.items():
        with tempfile.TemporaryDirectory(prefix="bench-ci-") as scratch:
            fresh = clone_checkout(Path(scratch) / "clone", source=root)
            started = time.perf_counter()
            output_of(uvx_nox("-s", "ci"), {**env, "CI": "true"}, fresh)
            figures.append(
                Figure("suite", labelled("uvx nox -s ci, cold, fresh clone", label), [time.perf_counter() - started])
            )
    return figures


def loop(session: nox.Session, runs: int, checkouts: dict[str, Path]) -> list[Figure]:
    """The inner loop as typed: the cheap commands five times at least, the sessions warm."""
    return timed_commands(session, CHEAP_COMMANDS, max(runs, 5), checkouts) + timed_commands(
        session, WARM_COMMANDS, runs, checkouts, warm=True
    )


def suite(session: nox.Session, checkouts: dict[str, Path]) -> list[Figure]:
    """The suite's own tests, and a cold `ci` in a fresh clone: minutes each, so one run."""
    return timed_commands(session, SUITE_COMMANDS, 1, checkouts) + cold_ci(session, checkouts)
