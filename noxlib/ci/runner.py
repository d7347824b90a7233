"""`nox -s ci`: every ci-tagged session, side by side where they are independent, like GitHub's matrix.

`nox -t ci -l --json` is the one list: GitHub's matrix is printed from it (`--matrix`) and the
local run walks it. Locally the test shards of every Python collapse into one unsharded `test`
on the default Python (same tests, same threshold, a fraction of the start-up cost);
`--full` runs every parametrization exactly as GitHub does. The order is nox's own `requires=`
(`coverage` after the test runs; `nox -t ci -j auto` keeps it too), read from the declarations.

What nox's own `-j` runner lacks stays here, on top of one `nox --no-dependencies -s X --report
FILE` child per session (nox's runner does the same): the input cache (a session whose declared
inputs are unchanged since its last green run is `cached`, noxlib/ci/cache.py; `--no-cache` or
`CI=true` runs everything), exclusive groups (`exclusive=`: sessions sharing apps/frontend take
turns while the rest run beside them; `nox -j` can only run those alone), a log per session
(noxlib/ci/logs.py) with a failing session's tail printed, the live view (noxlib/ci/progress.py),
and an interrupt that waits for cleanup: Ctrl+C, SIGTERM or a closed terminal is passed to every
running child's process group exactly once and `ci` waits up to CLEANUP_TIMEOUT for their
databases, buckets and leases (nox's runner kills after 2 s), then exits 130, 143 or 129. Any
other error of the scheduler stops the children too before it is raised.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nox

from noxlib.ci import logs as ci_logs
from noxlib.ci import progress as ci_progress
from noxlib.ci.arguments import parser_for
from noxlib.ci.cache import CiCache, cache_disabled, declaration
from noxlib.ci.listing import SessionEntry, ci_sessions, nested_nox_env, nox_command
from noxlib.ci.progress import Outcome, summary
from noxlib.core import processes
from noxlib.core.errors import UserError
from noxlib.core.json_store import JsonFile
from noxlib.core.paths import REPO_ROOT
from noxlib.core.signals import Terminated, interrupt_once, raise_if_lost, signals_deferred

SHARD_TAG = "shard"
# Sessions that GitHub runs in their own job after the matrix (they need its artifacts).
REPORT_TAG = "report"


# How long an interrupted child may take to clean up before its process group is stopped.
CLEANUP_TIMEOUT = 60.0
# How long each session took in this checkout's last ci runs: the order in which they start.
DURATIONS_NAME = "ci-durations.json"
# A session expected to take at most this long is a quick check: it starts first.
QUICK_SECONDS = 10.0


def _job_count(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"-j expects a whole number of sessions at once, got {value!r}")
    return int(value)


def add_options(parser: argparse.ArgumentParser) -> None:
    """`nox -s ci -- --full --matrix --no-cache -j N`."""
    parser.add_argument("--full", action="store_true", help="every matrix entry exactly as GitHub runs it")
    parser.add_argument("--matrix", action="store_true", help="print GitHub's job matrix (JSON) and run nothing")
    parser.add_argument("--no-cache", action="store_true", help="run sessions whose inputs are unchanged too")
    parser.add_argument(
        "-j", "--jobs", type=_job_count, default=0, metavar="N", help="sessions at once (default: the CPUs)"
    )


def parse_options(args: list[str]) -> argparse.Namespace:
    """`--full`, `--matrix`, `--no-cache`, `-j N`; also under a plain `@nox.session` (the tests' noxfiles)."""
    return parser_for("ci", "Run every ci-tagged session like GitHub does.", add_options).parse_args(args)


def default_jobs() -> int:
    """The CPUs this process may use: a test session alone keeps them all busy with xdist."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def github_matrix(sessions: list[SessionEntry]) -> dict[str, list[dict[str, str | None]]]:
    """The matrix of per-session jobs: every ci session except the reports that follow it."""
    return {
        "include": [
            {"session": entry["session"], "python": entry["python"] or None}
            for entry in sessions
            if REPORT_TAG not in entry.get("tags", [])
        ]
    }


def local_plan(sessions: list[SessionEntry], *, full: bool) -> tuple[list[str], list[str]]:
    """The sessions `nox -s ci` runs here, and notes on how that differs from GitHub.

    A shard declares the session that runs all of its tests at once (`local=`): here one
    unsharded run costs a fraction of the shards' start-up, with the same tests and threshold.
    """
    if full:
        return [entry["session"] for entry in sessions], []
    plan: list[str] = []
    collapsed: dict[str, int] = {}
    for entry in sessions:
        local = declaration(entry["session"]).local if SHARD_TAG in entry.get("tags", []) else ""
        name = local or entry["session"]
        if local:
            collapsed[local] = collapsed.get(local, 0) + 1
        if name not in plan:
            plan.append(name)
    notes = [
        f"{count} shards ran as one unsharded `{local}` (same tests, same threshold); "
        "`nox -s ci -- --full` runs them as GitHub does"
        for local, count in collapsed.items()
    ]
    return plan, notes


def dependencies(plan: list[str]) -> dict[str, set[str]]:
    """What each planned session waits for: what its `requires=` names, or what runs here in its place."""
    waits: dict[str, set[str]] = {}
    for name in plan:
        required = set(declaration(name).requires)
        required |= {local for other in required if (local := declaration(other).local)}
        waits[name] = {other for other in plan if other in required or other.split("(", 1)[0] in required}
    return waits


def exclusive_groups(plan: list[str]) -> dict[str, str]:
    """Sessions that must not overlap share a group name (`exclusive=`): e.g. those using apps/frontend."""
    return {name: group for name in plan if (group := declaration(name).exclusive)}


def durations_file(root: Path) -> JsonFile:
    return JsonFile(root / ".nox" / DURATIONS_NAME)


def start_order(plan: list[str], root: Path) -> list[str]:
    """The quick checks first (the quickest first), then the longest first; ties in plan order.

    A session expected to take at most QUICK_SECONDS starts before the rest: a lint or type
    error after a one-line change shows in seconds, not after the minutes the tests take, and
    together they cost the run's end a few seconds. Then, with N jobs, the run ends when its last
    session does; started last, the longest one would run alone at the end while the other cores
    idle (longest-processing-time-first). A fresh clone has no record, so nothing is quick (an
    unknown session counts 0 s, a declared `cold_seconds` is minutes): the longest declared first.
    """
    expected = expected_seconds(plan, root)
    quick = {name for name in plan if 0 < expected[name] <= QUICK_SECONDS}
    return sorted(plan, key=lambda name: (0, expected[name]) if name in quick else (1, -expected[name]))


def expected_seconds(plan: list[str], root: Path) -> dict[str, float]:
    """How long each session took last time (else its declared `cold_seconds`, else 0: unknown)."""
    with durations_file(root).locked() as recorded:
        return {name: _seconds(recorded.get(name, declaration(name).cold_seconds)) for name in plan}


def _seconds(value: object) -> float:
    """A recorded duration; anything else (a hand-edited file) counts as unknown, not an error."""
    return float(value) if isinstance(value, int | float) else 0.0


def record_durations(outcomes: list[Outcome], root: Path) -> None:
    """Keep how long each session that ran took, for the next run's start order."""
    with durations_file(root).locked() as recorded:
        recorded.update({o.session: round(o.seconds, 1) for o in outcomes if o.result in ("passed", "FAILED")})


@dataclass
class Child:
    """One session's nox, running in its own process group with its output in a log file."""

    signature: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    report: Path  # nox's `--report` JSON: the session's status (a skip exits 0 too)
    started: float
    pump: threading.Thread
    signalled: bool = False


def start_child(noxfile: Path, signature: str, logs: ci_logs.RunLogs, *, echo: bool) -> Child:
    # --non-interactive: a child that sees a terminal would take the interactive path (`docs`
    # would serve and never return). --no-dependencies: the plan already holds what `requires=`
    # names, or runs it here in another form. Its own session: the terminal's Ctrl+C reaches only
    # us, and we pass it on once (under uvx one Ctrl+C arrives twice), then wait for its cleanup.
    report = logs.report(signature)
    popen = subprocess.Popen(
        nox_command(noxfile, "--non-interactive", "--no-dependencies", "--report", str(report), "-s", signature),
        cwd=noxfile.parent, env=nested_nox_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    log = open(logs.path(signature), "xb")  # noqa: SIM115 - closed by the pump when the child's output ends
    assert popen.stdout is not None
    pump = threading.Thread(
        target=ci_logs.copy_output, args=(popen.stdout, log, echo), name=f"ci-{signature}", daemon=True
    )
    pump.start()
    return Child(signature, popen, logs.path(signature), report, time.perf_counter(), pump)


def finish(child: Child, *, echo: bool, view: ci_progress.PlainProgress) -> Outcome:
    child.pump.join(timeout=10)
    # nox exits 0 for a skipped session: its `--report` says so, and a skip is never cached.
    status, reason = ci_logs.reported_status(child.report, child.popen.returncode)
    result = {"success": "passed", "skipped": "skipped"}.get(status, "FAILED")
    outcome = Outcome(child.signature, result, time.perf_counter() - child.started)
    view.finished(outcome, child.log_path)
    if reason and result == "skipped" and not echo:
        view.line(f"    {reason}")
    if result == "FAILED" and not echo:
        # On a CI runner the log file is gone with the machine: print all of it there.
        on_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
        view.line(ci_logs.log_tail(child.log_path, None if on_ci else ci_logs.LOG_TAIL_LINES))
    return outcome


def skip_reason(signature: str) -> str | None:
    """Why the session would skip itself, asked here (`skip_reason=`): no nox started to learn it."""
    check = declaration(signature).skip_reason
    try:
        return check() if check else None
    except UserError:
        return None  # a mistake in its settings: the session itself says it in its one line


def stop_children(
    children: list[Child],
    signum: int,
    timeout: float = CLEANUP_TIMEOUT,
    *,
    say: Callable[[str], None] = ci_progress.print_line,
) -> None:
    """Interrupt each running child's group (nox, pytest, its workers) once, wait for its cleanup,
    and stop what is left of it after `timeout`."""
    running = [child for child in children if child.popen.poll() is None]
    if not running:
        return
    say(f"\n{signal.Signals(signum).name}: waiting for {', '.join(c.signature for c in running)} to clean up")
    for child in running:
        child.signalled = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.popen.pid, signum)
    deadline = time.monotonic() + timeout
    for child in running:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        if child.popen.poll() is None:
            say(f"{child.signature} did not clean up within {timeout:.0f}s; stopping it")
        # Its group may outlive it (a worker the child could not stop): nothing of it stays.
        if processes.group_members(child.popen.pid):
            processes.stop_group(child.popen.pid)
        child.popen.wait()
        child.pump.join(timeout=5)
        if child.popen.stdout:
            child.popen.stdout.close()


def run_plan(noxfile: Path, plan: list[str], *, jobs: int, cache: CiCache | None) -> list[Outcome]:
    """Run the plan `jobs` at a time, keeping dependencies and exclusive groups; outcomes in plan order."""
    waits = dependencies(plan)
    groups = exclusive_groups(plan)
    echo = jobs == 1
    outcomes: dict[str, Outcome] = {}
    hashes: dict[str, str | None] = {}
    pending = start_order(plan, noxfile.parent)
    logs = ci_logs.RunLogs.create(noxfile.parent)
    running: list[Child] = []
    # A live view at a terminal, unless the children's own output goes there (`-j 1`).
    live = not echo and ci_progress.interactive()
    view = ci_progress.start_view(plan, expected_seconds(plan, noxfile.parent), jobs=jobs, live=live)
    try:
        while pending or running:
            raise_if_lost()
            for signature in list(pending):
                if waits[signature] - outcomes.keys():
                    continue
                if signature not in hashes:
                    # Taken before the session runs: an edit made meanwhile makes the next ci run it.
                    hashes[signature] = cache.hash_for(signature) if cache else None
                    if cache and cache.is_fresh(signature, hashes[signature]):
                        pending.remove(signature)
                        view.cached(signature)
                        outcomes[signature] = Outcome(signature, "cached", 0.0)
                        continue
                if (reason := skip_reason(signature)) is not None:
                    pending.remove(signature)
                    view.skipped(signature, reason)
                    outcomes[signature] = Outcome(signature, "skipped", 0.0)  # a skip is never cached
                    continue
                group = groups.get(signature)
                if len(running) >= jobs or (group and any(groups.get(c.signature) == group for c in running)):
                    continue
                pending.remove(signature)
                view.started(signature, None if echo else logs.path(signature))
                # Held back until the child is listed: an interrupt in between would orphan it.
                with signals_deferred():
                    running.append(start_child(noxfile, signature, logs, echo=echo))
            for child in [child for child in running if child.popen.poll() is not None]:
                # Held back until its outcome is on record: an interrupt while its result and log
                # tail are printed (slower with the live view) would lose it.
                with signals_deferred():
                    running.remove(child)
                    outcome = finish(child, echo=echo, view=view)
                    if cache:
                        cache.record(child.signature, hashes[child.signature], passed=outcome.result == "passed")
                    outcomes[child.signature] = outcome
            if running:
                time.sleep(0.1)
    except KeyboardInterrupt as interrupt:
        signum = interrupt.signum if isinstance(interrupt, Terminated) else signal.SIGINT
        stop_children(running, signum, say=view.line)
        for child in running:
            if child.signalled:
                outcomes[child.signature] = Outcome(child.signature, "stopped", time.perf_counter() - child.started)
            else:  # it had ended on its own just before the interrupt
                outcomes[child.signature] = finish(child, echo=echo, view=view)
        view.close()  # the summary goes below the view, with the cursor back
        interrupted = [outcomes.get(name) or Outcome(name, "not run", 0.0) for name in plan]
        print("\n" + summary(interrupted, []), flush=True)
        raise
    except BaseException:
        # Whatever broke the scheduler, the children it started must not run on detached.
        stop_children(running, signal.SIGTERM, say=view.line)
        raise
    finally:
        view.close()
    return [outcomes[name] for name in plan]


def run(session: nox.Session, noxfile: Path = REPO_ROOT / "noxfile.py") -> None:
    """Entry point of the `ci` session (its options: `add_options`)."""
    options = parse_options(list(session.posargs))
    disabled = cache_disabled(["--no-cache"] if options.no_cache else [])
    with interrupt_once():
        sessions = ci_sessions(noxfile, reuse=not disabled)
        if options.matrix:
            print(json.dumps(github_matrix(sessions)))
            return
        plan, notes = local_plan(sessions, full=options.full)
        cache = None if disabled else CiCache(root=noxfile.parent)
        outcomes = run_plan(noxfile, plan, jobs=options.jobs or default_jobs(), cache=cache)
        record_durations(outcomes, noxfile.parent)
    ran = {o.session for o in outcomes if o.result in ("passed", "FAILED")}
    notes = [note for note in notes if any(f"`{name}`" in note for name in ran)]  # a note on a run that ran
    if disabled:
        notes.append(disabled)
    elif any(o.result == "cached" for o in outcomes):
        notes.append("unchanged sessions were skipped (`cached`); `-- --no-cache` runs them all")
    print("\n" + summary(outcomes, notes), flush=True)
    failed = [o.session for o in outcomes if o.result == "FAILED"]
    if failed:
        session.error(f"{len(failed)} of {len(outcomes)} ci session(s) failed: {', '.join(failed)}")
