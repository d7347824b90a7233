"""`nox -s ci`: every ci-tagged session, one after another, like the GitHub matrix runs them.

`nox -t ci -l --json` is the one list: GitHub's matrix is printed from it (`--matrix`) and the
local run walks it. Locally the test shards of every Python collapse into one unsharded `test`
on the default Python (same tests, same threshold, a fraction of the start-up cost);
`--full` runs every parametrization exactly as GitHub does. Locally a session whose declared
inputs are unchanged since its last green run is skipped (`cached`, see noxlib/cache.py);
`--no-cache` or `CI=true` runs everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nox

from noxlib.cache import CiCache, cache_disabled
from noxlib.errors import UserError
from noxlib.paths import REPO_ROOT

CI_TAG = "ci"
SHARD_TAG = "shard"
# Sessions that GitHub runs in their own job after the matrix (they need its artifacts).
REPORT_TAG = "report"
LOCAL_TEST_SESSION = "test"


@dataclass
class Outcome:
    session: str
    result: str
    seconds: float


OPTIONS = ("--full", "--matrix", "--no-cache")


def nox_command(noxfile: Path, *args: str) -> list[str]:
    """nox run by the interpreter that runs us: the noxfile's script environment."""
    return [sys.executable, "-m", "nox", "--noxfile", str(noxfile), *args]


# An activated venv's variables would point each child's uv at the wrong environment.
VENV_VARIABLES = ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "UV_PYTHON")


def nested_nox_env() -> dict[str, str]:
    """The environment for a nox started from inside nox (ci, bench, the suite's tests)."""
    env = {key: value for key, value in os.environ.items() if key not in VENV_VARIABLES}
    # The parent already runs in the noxfile's script environment: no second re-exec.
    return dict(env, NOX_SCRIPT_MODE="none")


def ci_sessions(noxfile: Path) -> list[dict]:
    """The ci-tagged sessions as nox lists them (signature, python, tags, call_spec)."""
    result = subprocess.run(
        nox_command(noxfile, "-t", CI_TAG, "-l", "--json"),
        capture_output=True, text=True, cwd=noxfile.parent, env=nested_nox_env(), check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise UserError(f"could not list the ci sessions: {result.stderr.strip().splitlines()[-1:]}")
    return json.loads(result.stdout)


def github_matrix(sessions: list[dict]) -> dict:
    """The matrix of per-session jobs: every ci session except the reports that follow it."""
    return {
        "include": [
            {"session": entry["session"], "python": entry["python"] or None}
            for entry in sessions
            if REPORT_TAG not in entry.get("tags", [])
        ]
    }


def local_plan(sessions: list[dict], *, full: bool) -> tuple[list[str], list[str]]:
    """The sessions `nox -s ci` runs here, and notes on how that differs from GitHub."""
    if full:
        return [entry["session"] for entry in sessions], []
    plan: list[str] = []
    shards = [entry["session"] for entry in sessions if SHARD_TAG in entry.get("tags", [])]
    for entry in sessions:
        if SHARD_TAG in entry.get("tags", []):
            if LOCAL_TEST_SESSION not in plan:
                plan.append(LOCAL_TEST_SESSION)
            continue
        plan.append(entry["session"])
    notes = []
    if shards:
        notes.append(
            f"{len(shards)} test shards ran as one unsharded `{LOCAL_TEST_SESSION}` "
            "(same tests, same threshold); `nox -s ci -- --full` runs them as GitHub does"
        )
    return plan, notes


def run_session(noxfile: Path, signature: str) -> Outcome:
    started = time.perf_counter()
    print(f"\n━━━ nox -s {signature}", flush=True)
    # --non-interactive: a child that sees our terminal would take the interactive path
    # (`docs` would start a live-reload server and never return).
    result = subprocess.run(
        nox_command(noxfile, "--non-interactive", "-s", signature),
        cwd=noxfile.parent,
        env=nested_nox_env(),
        check=False,
    )
    return Outcome(signature, "passed" if result.returncode == 0 else "FAILED",
                   time.perf_counter() - started)  # fmt: skip


def summary(outcomes: list[Outcome], notes: list[str]) -> str:
    width = max([len(o.session) for o in outcomes] + [len("session")])
    lines = [f"{'session':<{width}}  {'result':<8}  seconds", f"{'-' * width}  {'-' * 8}  -------"]
    lines += [f"{o.session:<{width}}  {o.result:<8}  {o.seconds:7.1f}" for o in outcomes]
    total = sum(o.seconds for o in outcomes)
    lines.append(f"{'total':<{width}}  {'':<8}  {total:7.1f}")
    lines += [f"note: {note}" for note in notes]
    counts = {result: sum(o.result == result for o in outcomes) for result in ("passed", "FAILED", "cached")}
    lines.append(f"ci: {counts['passed']} passed, {counts['FAILED']} failed, {counts['cached']} skipped")
    return "\n".join(lines)


def run(session: nox.Session, noxfile: Path = REPO_ROOT / "noxfile.py") -> None:
    """Entry point of the `ci` session."""
    args = list(session.posargs)
    unknown = [arg for arg in args if arg not in OPTIONS]
    if unknown:
        raise UserError(f"nox -s ci: unknown option {unknown[0]}; use {', '.join(OPTIONS)}.")
    sessions = ci_sessions(noxfile)
    if "--matrix" in args:
        print(json.dumps(github_matrix(sessions)))
        return
    plan, notes = local_plan(sessions, full="--full" in args)
    disabled = cache_disabled(args)
    cache = None if disabled else CiCache(root=noxfile.parent)
    notes.append(disabled or "unchanged sessions were skipped (`cached`); `-- --no-cache` runs them all")
    outcomes = []
    for signature in plan:
        current = cache.hash_for(signature) if cache else None
        if cache and cache.is_fresh(signature, current):
            print(f"━━━ nox -s {signature}: cached (inputs unchanged since its last green run)", flush=True)
            outcomes.append(Outcome(signature, "cached", 0.0))
            continue
        outcome = run_session(noxfile, signature)
        if cache:
            cache.record(signature, current, passed=outcome.result == "passed")
        outcomes.append(outcome)
    print("\n" + summary(outcomes, notes), flush=True)
    failed = [o.session for o in outcomes if o.result == "FAILED"]
    if failed:
        session.error(f"{len(failed)} of {len(outcomes)} ci session(s) failed: {', '.join(failed)}")
