"""The load `nox -s perf` drives (noxlib/sessions/perf.py): visitors walking the endpoints they are given, in turn.

Which endpoints and how long a visitor pauses between requests come from the command line
noxlib/sessions/perf.py builds from tools/perf/budgets.toml, so the budgets file is the one list. Each
visitor starts at another endpoint and walks them all round-robin, so a run of a few seconds still
requests each one. Before the clock starts, each GET endpoint is requested once, unrecorded: the
first request a fresh process serves (imports, its first database connection) is a start-up cost,
not the latency the budgets are about, and on a few seconds' load it would be the p99. A visitor
only reads: a POST endpoint is refused unless --allow-writes is given, and is then requested twice,
so the ping toggle leaves the state it found.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import random
from typing import Any

import requests
from locust import HttpUser, events, task
from locust.env import Environment

USER_AGENT = "finance-report-perf/1"
REQUEST_TIMEOUT = 30.0
_visitor_numbers = itertools.count()


@events.init_command_line_parser.add_listener
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoints", default="", help="'METHOD /path' entries separated by commas")
    parser.add_argument("--think-time", default="0.2,0.6", help="min,max seconds a visitor waits between requests")
    parser.add_argument("--allow-writes", action="store_true", help="let POST endpoints be requested")


def endpoints_of(options: Any) -> list[tuple[str, str]]:
    """The endpoints to walk; a write without --allow-writes is refused before any request is made."""
    endpoints = [tuple(entry.strip().split(" ", 1)) for entry in options.endpoints.split(",") if entry.strip()]
    if not endpoints:
        raise SystemExit("locustfile: --endpoints names no endpoint")
    writes = [" ".join(entry) for entry in endpoints if entry[0] != "GET"]
    if writes and not options.allow_writes:
        raise SystemExit(f"locustfile: {writes[0]} writes; it is requested only with --allow-writes")
    return [(method, path) for method, path in endpoints]


@events.init.add_listener
def warm_up(environment: Environment, **_: Any) -> None:
    """One unrecorded GET per endpoint before the run starts (see the module docstring)."""
    options = environment.parsed_options
    if options is None or not environment.host:
        return
    for method, path in endpoints_of(options):
        if method == "GET":
            # A failure here is recorded by the measured run as the failure it is.
            with contextlib.suppress(requests.RequestException):
                requests.get(environment.host + path, headers={"User-Agent": USER_AGENT}, timeout=REQUEST_TIMEOUT)


class Visitor(HttpUser):
    """One person clicking through the app: every endpoint in turn, a short pause between requests."""

    def on_start(self) -> None:
        options = self.environment.parsed_options
        endpoints = endpoints_of(options)
        start = next(_visitor_numbers) % len(endpoints)
        self.walk = itertools.cycle(endpoints[start:] + endpoints[:start])
        low, high = (float(part) for part in options.think_time.split(","))
        self.think = (low, high)
        self.client.headers["User-Agent"] = USER_AGENT

    def wait_time(self) -> float:
        return random.uniform(*self.think)  # noqa: S311 - a pause, not a secret

    @task
    def visit(self) -> None:
        method, path = next(self.walk)
        # The name is the path alone: locust's stats key a row by method and name.
        for _ in range(1 if method == "GET" else 2):
            self.client.request(method, path, name=path, timeout=REQUEST_TIMEOUT)
