"""The budgets file's checks and the verdict's lines, on files written here (the committed budgets and a
real load are tests/test_perf.py's, a journey)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from noxlib.core.errors import UserError
from noxlib.sessions.perf_budgets import judge, load_budgets, read_stats

VALID = """
[load]
users = 2
run_time_seconds = 3
think_time_seconds = [0.1, 0.2]

[total]
max_failure_ratio = 0.01
min_requests_per_second = 4

[api."GET /api/health"]
p50_ms = 100
p95_ms = 200
p99_ms = 300

[pages."GET /"]
p50_ms = 100
p95_ms = 200
p99_ms = 300

[writes."POST /api/ping/toggle"]
p50_ms = 100
p95_ms = 200
p99_ms = 300
"""
COLUMNS = ["Type", "Name", "Request Count", "Failure Count", "Requests/s", "50%", "95%", "99%"]


def budgets_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "budgets.toml"
    path.write_text(text)
    return path


def stats_file(tmp_path: Path, *rows: list[str]) -> Path:
    path = tmp_path / "locust_stats.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("p99_ms = 300\n\n[pages", "p99_ms = 300\np90_ms = 1\n\n[pages"), "unknown key 'p90_ms'"),
        (('[writes."POST', '[writes."GET'), "[writes] holds the POSTs"),
        (("users = 2", "users = 0"), "users must be a positive number, got 0"),
        (("[0.1, 0.2]", "[0.3, 0.2]"), "think_time_seconds must be [min, max] seconds"),
        (('[api."GET /api/health"]', '[api."/api/health"]'), "name an endpoint as 'METHOD /path'"),
        (("[total]", "[totals]"), "unknown key 'totals'"),
    ],
)
def test_a_mistake_in_the_budgets_file_is_one_line_naming_it(tmp_path, change, message):
    path = budgets_file(tmp_path, VALID.replace(*change, 1))
    with pytest.raises(UserError, match=str(path)) as raised:
        load_budgets(path)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_pages_are_left_out_for_the_api_alone_and_writes_unless_allowed(tmp_path):
    budgets = load_budgets(budgets_file(tmp_path, VALID))

    def endpoints(**flags: bool) -> list[str]:
        return [budget.endpoint for budget in budgets.selected(**flags)]

    assert endpoints(api_only=False, allow_writes=False) == ["GET /api/health", "GET /"]
    assert endpoints(api_only=True, allow_writes=False) == ["GET /api/health"]
    assert endpoints(api_only=True, allow_writes=True) == ["GET /api/health", "POST /api/ping/toggle"]


def test_each_broken_budget_is_one_line_and_an_endpoint_never_requested_is_named(tmp_path):
    budgets = load_budgets(budgets_file(tmp_path, VALID))
    stats = read_stats(
        stats_file(
            tmp_path,
            ["GET", "/api/health", "10", "1", "2.0", "150", "200", "900"],
            ["", "Aggregated", "10", "1", "2.0", "150", "200", "900"],
        )
    )
    verdict = judge(budgets, budgets.selected(api_only=False, allow_writes=False), stats)
    assert verdict.broken == [
        "GET /api/health: p50 150 ms > budget 100 ms",
        "GET /api/health: p99 900 ms > budget 300 ms",
        "GET /: no request was made in the run; its budgets cannot be judged",
        "all requests: failure ratio 10.0% > budget 1.0% (GET /api/health 1 of 10)",
        "all requests: 2.0 requests/s < budget 4",
    ]


def test_a_run_without_any_request_is_not_called_a_failure_ratio(tmp_path):
    budgets = load_budgets(budgets_file(tmp_path, VALID))
    stats = read_stats(stats_file(tmp_path, ["", "Aggregated", "0", "0", "0", "N/A", "N/A", "N/A"]))
    verdict = judge(budgets, budgets.selected(api_only=True, allow_writes=False), stats)
    assert verdict.broken == [
        "GET /api/health: no request was made in the run; its budgets cannot be judged",
        "all requests: 0.0 requests/s < budget 4",
    ]
