"""`nox -s perf` against a real backend, through a real loopback TCP proxy that can make it slow.

One backend (uvicorn on the worker's native services, the one smoke's API checks use: tests/conftest.py
`app_backend`) serves both cases behind one proxy: as it is, the check passes (with budgets that leave room for a loaded
runner) and only GETs reach the server; with every request held back longer than any endpoint's
median may take, the check fails with one line per broken budget. The verdict is the budgets file's, judged on locust's
statistics by the session: the test reads lines, never a clock. The load is small (a few seconds)
so the check itself is run on every change to the app and cannot rot.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from noxlib.sessions.perf import BUDGETS_FILE
from noxlib.sessions.perf_budgets import PERCENTILES, EndpointBudget, load_budgets
from tests.faults.tcp_proxy import TcpProxy, proxy_to
from tests.runs import run_nox

# One xdist group with smoke's API checks: they share the worker's backend (tests/conftest.py `app_backend`).
pytestmark = [pytest.mark.journey, pytest.mark.journey_backend, pytest.mark.xdist_group(name="app_backend")]
# What is tested is the mechanism (locust's load, the table, the verdict), not the app's speed:
# enough load for each of the five visitors to finish a request to its first endpoint, so every
# budgeted endpoint is requested even when the slow case holds each request back.
RUN_SECONDS = "3"


def api_budgets() -> list[EndpointBudget]:
    """The committed API budgets. Read when a test runs: noxlib_test collects this module, and its
    inputs do not include the budgets file."""
    return [budget for budget in load_budgets(BUDGETS_FILE).endpoints if budget.group == "api"]


@pytest.fixture(scope="module")
def backend_url(app_backend) -> str:
    """The real backend smoke's API checks use too (tests/conftest.py): one start for both."""
    return app_backend.url


@pytest.fixture(scope="module")
def proxy(backend_url) -> Iterator[TcpProxy]:
    with proxy_to(int(backend_url.rsplit(":", 1)[1])) as started:
        yield started


@pytest.fixture
def fresh_proxy(proxy) -> Iterator[TcpProxy]:
    proxy.delay = 0.0
    proxy.forget()
    yield proxy
    proxy.delay = 0.0


def toggle_count(backend_url: str) -> int:
    with urllib.request.urlopen(f"{backend_url}/api/ping", timeout=30) as response:  # noqa: S310 - loopback
        return int(json.loads(response.read())["toggle_count"])


def perf(url: str, report: Path, *more: str):
    return run_nox(
        "-s", "perf", "--", "--base-url", url, "--api-only", "--run-time", RUN_SECONDS, "--report-dir", str(report),
        *more, timeout=300,
    )  # fmt: skip


# The committed budgets judge a deployment on a machine of its own; this journey runs on a 2-core
# runner beside the other ci sessions, where a cold `nox -s ci` measured medians ten times the
# quiet ones (270-370 ms against budgets of 270-390). Whether the check holds a fast app, prints
# its table and only reads is what is tested, so the passing run gets room for any load: every
# latency budget x10, the throughput floor 1 request/s. The slow case keeps the committed budgets.
LOADED_RUNNER_LATENCY = 10


def budgets_for_a_loaded_runner(path: Path) -> Path:
    """The committed budgets file with every latency x10 and a floor of 1 request/s."""
    text = re.sub(
        r"^(p\d\d_ms = )(\d+)", lambda m: f"{m[1]}{int(m[2]) * LOADED_RUNNER_LATENCY}", BUDGETS_FILE.read_text(),
        flags=re.MULTILINE,
    )  # fmt: skip
    text, floors = re.subn(r"^min_requests_per_second = \d+", "min_requests_per_second = 1", text, flags=re.MULTILINE)
    assert floors == 1, "the budgets file has one throughput floor"
    path.write_text(text)
    return path


def test_within_budget_it_passes_prints_the_table_and_only_reads(backend_url, fresh_proxy, tmp_path):
    api = api_budgets()
    before = toggle_count(backend_url)
    budgets = budgets_for_a_loaded_runner(tmp_path / "budgets.toml")
    result = perf(fresh_proxy.url, tmp_path / "report", "--budgets", str(budgets))
    assert result.returncode == 0, result.stdout
    assert f"perf: all {len(api) * len(PERCENTILES) + 2} budgets held ({budgets})" in result.stdout
    for budget in api:
        assert re.search(rf"│ {re.escape(budget.endpoint)}\s+│\s+[1-9]", result.stdout), result.stdout
    assert "over budget" not in result.stdout
    assert (tmp_path / "report" / "report.html").is_file()
    assert (tmp_path / "report" / "locust_stats.csv").is_file()
    # Read-only by default: only GETs reached the server, of the budgeted API paths, and nothing changed.
    requests = fresh_proxy.requests()
    assert requests
    assert {method for method, _ in requests} == {"GET"}
    assert {target for _, target in requests} == {budget.endpoint.split(" ", 1)[1] for budget in api}
    assert toggle_count(backend_url) == before


def test_the_proxy_sees_a_write_when_one_is_sent(fresh_proxy):
    """What makes the read-only assertion above able to fail: a POST through the proxy is recorded."""
    request = urllib.request.Request(f"{fresh_proxy.url}/api/no-such-endpoint", data=b"{}", method="POST")  # noqa: S310
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)  # noqa: S310 - loopback
    refused.value.close()
    assert fresh_proxy.requests() == [("POST", "/api/no-such-endpoint")]


def test_a_slow_backend_breaks_its_budgets_with_one_line_each(fresh_proxy, tmp_path):
    api = api_budgets()
    # Each request reaches the backend later than any API endpoint's median may take in all: every
    # p50 budget breaks, whatever the machine's own latency; p95 and p99 break where the delay and
    # the machine's latency together exceed them.
    fresh_proxy.delay = 1.5 * max(budget.latency_ms["p50"] for budget in api) / 1000
    result = perf(fresh_proxy.url, tmp_path / "report")
    assert result.returncode != 0, result.stdout
    broken = [line for line in result.stdout.splitlines() if line.startswith("perf: over budget: ")]
    for budget in api:
        assert any(line.startswith(f"perf: over budget: {budget.endpoint}: p50 ") for line in broken), result.stdout
    summary = re.search(
        r"(\d+) of (\d+) budgets broken \(tools/perf/budgets.toml\); the lines above say which", result.stdout
    )
    assert summary, result.stdout
    assert int(summary[1]) == len(broken) == len(set(broken))
    assert int(summary[2]) == len(api) * len(PERCENTILES) + 2
    assert "Traceback" not in result.stdout
