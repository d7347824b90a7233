"""`nox -s bench`: the suite's speed claims, measured side by side with the naive way on this machine.

Every figure is the median of several runs (min and max beside it) and the table leads with
ratios. The rows live by concern: on the bench's own services (noxlib/sessions/bench_services.py), whole
commands as typed (noxlib/sessions/bench_commands.py) and the pre-push loop in fresh clones
(noxlib/sessions/bench_prepush.py). Speed goals live here, never as timed assertions in tests.
`-- --before REF` measures a clone of REF too, interleaved, and reports before/after ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import nox

from noxlib.ci.arguments import arguments
from noxlib.core.paths import NOX_DIR, REPO_ROOT
from noxlib.sessions import bench_commands as commands
from noxlib.sessions import bench_prepush as prepush
from noxlib.sessions import bench_services as services
from noxlib.sessions.bench_figures import Figure

RESULTS_FILE = NOX_DIR / "bench.json"
GROUPS = ("services", "databases", "isolation", "upload", "test", "loop", "suite", "ci", "prepush")
# Opt-in: minutes each (`suite` is noxlib_test and a cold `ci` in a fresh clone; `prepush` is
# five `ci` runs and a `test` per checkout, the first of them cold).
OPT_IN = ("suite", "ci", "prepush")


# (ratio, numerator figure, denominator figure): the suite's way against the naive one.
RATIOS = (
    ("migrate per worker / clone per worker", "migrate per worker database (naive)", "clone per worker database"),
    ("TRUNCATE / savepoint, per test", "per test, truncate", "per test, savepoint"),
    ("schema rebuild / savepoint, per test", "per test, rebuild", "per test, savepoint"),
    ("cold start / join", "cold start (postgres+redis+s3)", "join running"),
    ("uncached / cached no-op ci", "nox -s ci, warm, --no-cache", "nox -s ci, nothing changed (cached)"),
    ("nox -s test: -n 0 / -n auto", "nox -s test -- -n 0: wall", "nox -s test -- -n auto: wall"),
    ("uvx nox -l / uvx nox --version", "uvx nox -l", "uvx nox --version"),
)


def _find(figures: list[Figure], prefix: str) -> Figure | None:
    return next((figure for figure in figures if figure.name.startswith(prefix)), None)


def report(figures: list[Figure]) -> tuple[str, dict[str, float]]:
    """The table of figures, then the ratios: before / after (above 1: faster now) and the naive / ours."""
    lines = [f"{'group':<10} {'measure':<56} {'median':>8} {'min':>8} {'max':>8} {'n':>3}  (seconds)"]
    lines += [figure.row() for figure in figures]
    ratios = {}
    for figure in figures:
        before = _find(figures, f"{figure.name} [before]")
        if before and figure.median > 0:
            ratios[f"before / after: {figure.name}"] = round(before.median / figure.median, 2)
    for label, numerator, denominator in RATIOS:
        top, bottom = _find(figures, numerator), _find(figures, denominator)
        if top and bottom and bottom.median > 0:
            ratios[label] = round(top.median / bottom.median, 2)
    lines.append("")
    lines += [f"ratio      {label:<56} {value:8.2f}x" for label, value in ratios.items()]
    prepush_lines, prepush_ratios = prepush.prepush_table(figures)
    lines += prepush_lines
    return "\n".join(lines), ratios | prepush_ratios


def add_options(parser: argparse.ArgumentParser) -> None:
    """`nox -s bench -- [GROUP ...] [--before REF] [--quick] [--ci]`."""
    parser.add_argument(
        "groups", nargs="*", choices=GROUPS, metavar="GROUP",
        help=f"what to measure: {', '.join(GROUPS)} (default: all but the opt-in {', '.join(OPT_IN)})",
    )  # fmt: skip
    parser.add_argument("--before", metavar="REF", help="also measure a clone of REF, interleaved, with ratios")
    parser.add_argument("--quick", action="store_true", help="two runs of each figure instead of three")
    parser.add_argument("--ci", action="store_true", help="add the `ci` group to the default ones")


def run(session: nox.Session) -> None:
    options = arguments(session)
    runs = 2 if options.quick else 3
    chosen = list(options.groups) or [g for g in GROUPS if g not in OPT_IN or (g == "ci" and options.ci)]
    figures: list[Figure] = []
    with services.private_state(), tempfile.TemporaryDirectory(prefix="bench-before-") as scratch:
        checkouts = {"after": REPO_ROOT}
        if options.before is not None:
            checkouts = {
                "before": commands.clone_checkout(Path(scratch) / "before", options.before),
                "after": REPO_ROOT,
            }
        measure: dict[str, Callable[[], list[Figure]]] = {
            "services": lambda: services.start_and_join(runs),
            "databases": lambda: services.databases(session, runs),
            "isolation": lambda: services.isolation_per_test(session, runs),
            "upload": lambda: services.large_upload(session, runs),
            "test": lambda: commands.nox_test_overhead(runs),
            "loop": lambda: commands.loop(session, runs, checkouts),
            "suite": lambda: commands.suite(session, checkouts),
            "prepush": lambda: prepush.prepush(session, checkouts),
        }
        session.log(f"benchmarking {', '.join(chosen)} on private services ({runs} runs each)")
        for group in (group for group in GROUPS if group in chosen and group in measure):
            figures += measure[group]()
    if "ci" in chosen:
        figures += commands.warm_and_cached_ci(runs)  # on the developer's own state: that is what `ci` uses
    table, ratios = report(figures)
    print(table, flush=True)
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    machine = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    results = {"machine": machine, "figures": [asdict(f) | {"median": f.median} for f in figures], "ratios": ratios}
    RESULTS_FILE.write_text(json.dumps(results, indent=2))
    session.log(f"wrote {RESULTS_FILE.relative_to(REPO_ROOT)}")
