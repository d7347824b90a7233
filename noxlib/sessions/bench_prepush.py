"""`nox -s bench -- prepush`: the loop before a push, `uvx nox -s ci` in a fresh clone, change by change.

Cold, then with nothing changed, then after each kind of one-line change: which sessions each
run re-ran, and how the run after a backend change compares with a warm `uvx nox -s test`
(the issue's goal: at most 1.5x). With `--before REF` each step is taken in both clones before
the next, so both see the same machine load.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nox

from noxlib.core.errors import UserError
from noxlib.core.paths import ARTEFACTS_DIR, REPO_ROOT
from noxlib.sessions.bench_commands import clone_checkout, developer_env, uvx_nox
from noxlib.sessions.bench_figures import Figure, completed, labelled, output_of, state_dir, timed

# The results of ci's summary table (noxlib/ci/runner.py `summary`); the first two mean the session ran.
CI_RAN = ("passed", "FAILED")
_CI_RESULTS = (*CI_RAN, "cached", "skipped", "stopped", "not run")
_SUMMARY_HEADER = re.compile(r"^session\s+result\s+seconds$")
_SUMMARY_ROW = re.compile(rf"^(?P<session>\S.*?)\s{{2,}}(?P<result>{'|'.join(_CI_RESULTS)})\s+\d+\.\d$")
# How a comment line reads in each kind of file a change edits.
_COMMENT = {".py": "# {}", ".ts": "// {}", ".tsx": "// {}", ".md": "<!-- {} -->"}
PREPUSH_TEST = "pre-push test, warm, after backend src change"
# The goal: ci after a one-line backend change at most 1.5x a warm `nox -s test`.
PREPUSH_GOAL = "pre-push ci / warm test, backend src change"


def ci_results(output: str) -> dict[str, str]:
    """Each session's result in the last summary table of `nox -s ci`'s output, in its order.

    Read from the table, not from a list of names: which sessions ci runs is noxfile.py's to say.
    The last table counts because a session's own output (echoed with `-j 1`) may hold one too.
    """
    lines = [line.rstrip() for line in output.splitlines()]
    headers = [number for number, line in enumerate(lines) if _SUMMARY_HEADER.match(line)]
    results: dict[str, str] = {}
    for line in lines[headers[-1] + 1 :] if headers else []:
        if set(line) <= {"-", " "}:
            continue
        row = _SUMMARY_ROW.match(line)
        if row is None:
            break  # the `total` line: the table ends
        results[row["session"]] = row["result"]
    return results


@dataclass(frozen=True)
class CiRun:
    seconds: float
    results: dict[str, str]
    passed: bool


def run_ci(argv: list[str], env: dict[str, str], root: Path) -> CiRun:
    """One timed `nox -s ci` in `root`; a red run is returned, not raised: its table is the figure."""
    started = time.perf_counter()
    result = completed(argv, env, root)
    seconds = time.perf_counter() - started
    results = ci_results(result.stdout)
    if not results:
        raise UserError(f"`{' '.join(argv)}` in {root} printed no summary table; its output ended:\n"
                        f"{result.stdout[-2000:]}")  # fmt: skip
    return CiRun(seconds, results, result.returncode == 0)


@dataclass(frozen=True)
class OneLineChange:
    """One kind of edit a developer pushes: a comment line in the first of `paths` the checkout has."""

    kind: str
    paths: tuple[str, ...]

    def path(self, root: Path) -> Path:
        for name in self.paths:
            if (root / name).is_file():
                return root / name
        raise UserError(f"the {self.kind} change edits one of {', '.join(self.paths)}; {root} has none of them.")

    def apply(self, root: Path) -> Path:
        """Add the comment as the first line: at the end, ruff format would want two blank lines before it."""
        path = self.path(root)
        comment = _COMMENT[path.suffix].format(f"bench: a one-line {self.kind} change")
        path.write_text(f"{comment}\n{path.read_text()}")
        return path

    def commit(self, root: Path) -> None:
        """Keep the change: the next kind then starts from a tree every session is green for."""
        path = self.path(root).relative_to(root)
        subprocess.run(
            ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "--quiet", "--no-verify",
             "-m", f"bench: a one-line {self.kind} change", "--", str(path)],
            cwd=root, check=True, capture_output=True,
        )  # fmt: skip


# Files present since the first commit, so any --before REF has them.
PREPUSH_CHANGES = (
    OneLineChange("backend src", ("apps/backend/src/routers/ping.py",)),
    OneLineChange("backend tests", ("apps/backend/tests/test_api_ping.py",)),
    OneLineChange("frontend", ("apps/frontend/app/page.tsx", "apps/frontend/src/app/page.tsx")),
    OneLineChange("docs", ("docs/development.md", "docs/index.md")),
)


def prepush_rows(
    clones: dict[str, Path],
    ci: Callable[[Path], CiRun],
    test: Callable[[Path], float],
    log: Callable[[str], object],
    changes: tuple[OneLineChange, ...] = PREPUSH_CHANGES,
) -> list[Figure]:
    """The pre-push figures, each step taken in every clone before the next so both see the same load.

    A change is committed after its timed `ci` rather than reverted: the cache hashes file
    contents, so after a green run every session is fresh for the edited tree, and the next kind
    starts from exactly that state. Reverting would make the same sessions stale again and cost
    one more untimed `ci` per kind for the same independence.
    """
    figures: list[Figure] = []

    def record(label: str, name: str, seconds: float, sessions: dict[str, str] | None = None) -> None:
        figure = Figure("prepush", labelled(name, label), [seconds], sessions)
        figures.append(figure)
        # Each row takes minutes: show it as it lands, with what ci re-ran.
        log(figure.row() + (f"  re-ran: {re_ran(sessions)}" if sessions is not None else ""))

    warm = dict(clones)
    for label, root in clones.items():
        cold = ci(root)
        if not cold.passed:
            # Without a green first run every later run re-runs the red sessions: no figure is fair.
            failed = [name for name, result in cold.results.items() if result == "FAILED"]
            log(f"no pre-push figures for {label}: the first `ci` in its fresh clone failed ({', '.join(failed)})")
            del warm[label]
            continue
        record(label, "pre-push ci, cold fresh clone", cold.seconds, cold.results)
    for label, root in warm.items():
        noop = ci(root)
        record(label, "pre-push ci, no-op", noop.seconds, noop.results)
    for change in changes:
        for label, root in warm.items():
            change.apply(root)
            changed = ci(root)
            record(label, f"pre-push ci, one-line change: {change.kind}", changed.seconds, changed.results)
            if change is changes[0]:  # backend src: what a warm `nox -s test` is compared with
                try:
                    record(label, PREPUSH_TEST, test(root))
                except UserError as error:
                    log(f"no figure for {PREPUSH_TEST!r} [{label}]: {error}")
            change.commit(root)
    return figures


def re_ran(sessions: dict[str, str]) -> str:
    """The sessions a ci run ran (rather than `cached` or `skipped`), a red one marked: not a fair time."""
    ran = [f"{name} (FAILED)" if result == "FAILED" else name for name, result in sessions.items() if result in CI_RAN]
    return ", ".join(ran) or "nothing"


def prepush(session: nox.Session, checkouts: dict[str, Path]) -> list[Figure]:
    """The pre-push loop in a fresh clone of each checkout's HEAD (one run per row: minutes each)."""
    # The developer's terminal, with the cache on even if this bench runs under CI=true.
    env = {key: value for key, value in developer_env(session).items() if key != "CI"}
    with tempfile.TemporaryDirectory(prefix="bench-prepush-") as scratch:
        clones = {label: clone_checkout(Path(scratch) / label, source=root) for label, root in checkouts.items()}
        # Each clone's services in a state directory of its own: two versions of the suite must
        # not take turns at one set of native services, nor at the developer's.
        envs = {root: dict(env, FR_CACHE_DIR=str(state_dir("prepush", label))) for label, root in clones.items()}

        def ci(root: Path) -> CiRun:
            run = run_ci(uvx_nox("-s", "ci"), envs[root], root)
            if not run.passed:  # the clone goes with the scratch directory: keep what says why
                kept = ARTEFACTS_DIR / "bench" / f"red-ci-{root.name}-{time.strftime('%Y%m%dT%H%M%S')}"
                shutil.copytree(root / ".nox" / "artefacts" / "ci", kept, dirs_exist_ok=True)
                session.log(f"the red `ci` logs of the {root.name} clone: {kept.relative_to(REPO_ROOT)}")
            return run

        def test(root: Path) -> float:
            return timed(lambda: output_of(uvx_nox("-s", "test"), envs[root], root, merged=True), 1)[0]

        try:
            return prepush_rows(clones, ci=ci, test=test, log=session.log)
        finally:
            for root, clone_env in envs.items():
                # Each version stops its own services, the way it knows them.
                completed(uvx_nox("-s", "down", "--", "--force"), clone_env, root)
                shutil.rmtree(clone_env["FR_CACHE_DIR"], ignore_errors=True)


def prepush_table(figures: list[Figure]) -> tuple[list[str], dict[str, float]]:
    """One line per pre-push row, before and after side by side, and the ratio of ci to a warm test."""
    measured = {figure.name: figure for figure in figures if figure.group == "prepush"}
    names = list(dict.fromkeys(name.removesuffix(" [before]") for name in measured))
    if not names:
        return [], {}
    lines = [
        "",
        "pre-push loop: one run per row and checkout (each takes minutes), so single samples, not medians",
        f"{'row':<56} {'before':>9} {'after':>9} {'before/after':>13}",
    ]
    for name in names:
        before, after = measured.get(f"{name} [before]"), measured.get(name)
        ratio = f"{before.median / after.median:12.2f}x" if before and after and after.median > 0 else f"{'—':>13}"
        lines.append(f"{name:<56} {_seconds_cell(before)} {_seconds_cell(after)} {ratio}")
        for label, figure in (("before", before), ("after", after)):
            if figure and figure.sessions is not None:
                lines.append(f"    {label} re-ran: {re_ran(figure.sessions)}")
    ratios: dict[str, float] = {}
    cells = []
    for suffix in (" [before]", ""):
        ci = measured.get(f"pre-push ci, one-line change: {PREPUSH_CHANGES[0].kind}{suffix}")
        test = measured.get(PREPUSH_TEST + suffix)
        if ci and test and test.median > 0:
            ratios[PREPUSH_GOAL + suffix] = round(ci.median / test.median, 2)
            cells.append(f"{ratios[PREPUSH_GOAL + suffix]:8.2f}x")
        else:
            cells.append(f"{'—':>9}")
    lines.append(f"{PREPUSH_GOAL:<56} {cells[0]} {cells[1]}  goal: at most 1.5x")
    return lines, ratios


def _seconds_cell(figure: Figure | None) -> str:
    return f"{figure.median:8.1f}s" if figure else f"{'—':>9}"
