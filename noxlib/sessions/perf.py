"""`nox -s perf`: a bounded load at a deployment (or the local stack), judged against the budgets file.

locust drives the load (headless, a fixed number of visitors for a fixed time, tools/perf/locustfile.py)
and writes its statistics and HTML report under .nox/artefacts/perf/; noxlib/sessions/perf_budgets.py judges the
statistics. A session of its own rather than `smoke --perf`: the smoke command line runs on a deploy
runner's bare python3 with the standard library alone, and locust is a dependency that does not belong
there. Read-only unless asked, like smoke: the writing endpoints are loaded only with --allow-writes.
"""

from __future__ import annotations

import argparse
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from noxlib.ci.arguments import arguments
from noxlib.core.errors import UserError
from noxlib.core.paths import ARTEFACTS_DIR, REPO_ROOT

if TYPE_CHECKING:
    from noxlib.sessions.perf_budgets import Budgets

PERF_DIR = REPO_ROOT / "tools" / "perf"
BUDGETS_FILE = PERF_DIR / "budgets.toml"
LOCUSTFILE = PERF_DIR / "locustfile.py"
REPORT_DIR = ARTEFACTS_DIR / "perf"
# locust writes <prefix>_stats.csv, _stats_history.csv, _failures.csv and _exceptions.csv.
CSV_PREFIX = "locust"


def add_options(parser: argparse.ArgumentParser) -> None:
    """`nox -s perf -- [--base-url URL] [--api-only] [--allow-writes] [--users N] [--run-time S] …`."""
    parser.add_argument(
        "--base-url", help="the deployment's frontend (default: start the local stack on free ports and load it)"
    )
    parser.add_argument("--api-only", action="store_true", help="the URL is the backend: load the API, not the pages")
    parser.add_argument(
        "--allow-writes", action="store_true", help="also load the endpoints that write (the ping toggle, done twice)"
    )
    parser.add_argument("--users", type=int, help="concurrent visitors (default: the budgets file's [load])")
    parser.add_argument("--run-time", type=float, metavar="SECONDS", help="how long (default: the budgets file's)")
    parser.add_argument("--budgets", type=Path, default=BUDGETS_FILE, help="the budgets file (default: %(default)s)")
    parser.add_argument("--report-dir", type=Path, default=REPORT_DIR, help="HTML report and CSVs (%(default)s)")
    parser.add_argument(
        "--baseline", action="store_true", help="print the run's figures as a proposed budgets file instead of judging"
    )


def run(session: Any) -> None:
    """Load the URL given, or a local stack started for the run, then judge the run."""
    from noxlib.sessions import perf_budgets

    options = arguments(session)
    budgets = perf_budgets.load_budgets(options.budgets.resolve())
    if options.users is not None and options.users < 1:
        raise UserError(f"--users must be at least 1, got {options.users}")
    if options.run_time is not None and not options.run_time > 0:
        raise UserError(f"--run-time must be a positive number of seconds, got {options.run_time:g}")
    if options.base_url is not None:
        parts = urllib.parse.urlsplit(options.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UserError(
                f"--base-url must be an http(s) URL like https://report.example.com, got {options.base_url!r}"
            )
        load_and_judge(session, options, budgets, options.base_url.rstrip("/"))
        return
    if options.api_only:
        raise UserError("--api-only needs --base-url (the backend's); without a URL perf loads its own frontend.")
    from noxlib.sessions.smoke import own_stack

    with own_stack(session, artefacts=options.report_dir, namespace_suffix="perf") as app:
        load_and_judge(session, options, budgets, app.url)


def locust_argv(options: argparse.Namespace, budgets: Budgets, host: str, endpoints: list[str]) -> list[str]:
    """locust's command line: headless, fixed visitors and time, CSVs and HTML into the report directory."""
    users = options.users or budgets.users
    report = options.report_dir.resolve()
    argv = [
        "locust", "-f", str(LOCUSTFILE), "--headless", "--host", host,
        "--users", str(users), "--spawn-rate", str(users), "--run-time", f"{run_seconds(options, budgets)}s",
        "--csv", str(report / CSV_PREFIX), "--html", str(report / "report.html"), "--only-summary",
        # The verdict is the budgets', not locust's "any failure is exit 1".
        "--exit-code-on-error", "0", "--loglevel", "WARNING", "--logfile", str(report / "locust.log"),
        "--endpoints", ",".join(endpoints),
        "--think-time", ",".join(f"{seconds:g}" for seconds in budgets.think_time_seconds),
    ]  # fmt: skip
    if options.allow_writes:
        argv.append("--allow-writes")
    return argv


def run_seconds(options: argparse.Namespace, budgets: Budgets) -> int:
    """Whole seconds, at least one: locust's --run-time takes no fractions."""
    return max(1, round(options.run_time or budgets.run_time_seconds))


def load_and_judge(session: Any, options: argparse.Namespace, budgets: Budgets, host: str) -> None:
    """One locust run against `host`; the table, then one line per broken budget (or the baseline)."""
    from nox.command import CommandFailed

    from noxlib.sessions import perf_budgets

    selected = budgets.selected(api_only=options.api_only, allow_writes=options.allow_writes)
    report = options.report_dir.resolve()
    report.mkdir(parents=True, exist_ok=True)
    stats = report / f"{CSV_PREFIX}_stats.csv"
    stats.unlink(missing_ok=True)  # a stale file must never be judged as this run's
    argv = locust_argv(options, budgets, host, [budget.endpoint for budget in selected])
    users, seconds = options.users or budgets.users, run_seconds(options, budgets)
    session.log(f"perf       {len(selected)} endpoints, {users} visitors for {seconds} s at {host}")
    try:
        session.run(*argv, silent=True)
    except CommandFailed:
        raise UserError(f"locust failed before it could measure anything; its log: {report / 'locust.log'}") from None
    if not stats.is_file():
        raise UserError(f"locust wrote no statistics ({stats}); its log: {report / 'locust.log'}")
    verdict = perf_budgets.judge(budgets, selected, perf_budgets.read_stats(stats))
    perf_budgets.print_table(verdict, budgets)
    print(f"perf: report {report / 'report.html'}, statistics {report / CSV_PREFIX}_*.csv", flush=True)
    if options.baseline:
        print(perf_budgets.baseline(budgets, verdict), end="", flush=True)
        return
    for line in verdict.broken:
        print(f"perf: over budget: {line}", flush=True)
    if verdict.total.failures:
        print(f"perf: each failure with its cause: {report / CSV_PREFIX}_failures.csv", flush=True)
    judged = len(selected) * len(perf_budgets.PERCENTILES) + 2  # and the failure ratio and throughput
    if verdict.broken:
        raise UserError(
            f"{len(verdict.broken)} of {judged} budgets broken ({shown(budgets.path)}); the lines above say which"
        )
    print(f"perf: all {judged} budgets held ({shown(budgets.path)})", flush=True)


def shown(path: Path) -> str:
    """A path as a person in the checkout would type it."""
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)
