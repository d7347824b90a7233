"""The performance budgets (tools/perf/budgets.toml) and the verdict on one locust run against them.

The budgets file is the one list of what `nox -s perf` loads: its endpoints are what the
locustfile requests (noxlib/sessions/perf.py passes them on), so an endpoint cannot be measured without a
budget or budgeted without being measured. Latencies are judged on locust's own percentiles
(its `_stats.csv`), the error rate and throughput on its aggregate row: nothing here times anything.
"""

from __future__ import annotations

import csv
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from noxlib.core.errors import UserError

PERCENTILES = ("p50", "p95", "p99")
# locust's column for each percentile in `<prefix>_stats.csv`.
CSV_COLUMN = {"p50": "50%", "p95": "95%", "p99": "99%"}
# What --baseline proposes: the measured figure times this, so a loaded 2-core CI runner (other jobs
# beside it) stays inside; below the floor a loopback figure says nothing, so it is raised to it.
LATENCY_MARGIN = 8.0
LATENCY_FLOOR_MS = 200
THROUGHPUT_MARGIN = 0.35
GROUPS = ("api", "pages", "writes")


@dataclass(frozen=True)
class EndpointBudget:
    endpoint: str  # "GET /api/health": locust's Type and Name
    group: str  # api, pages or writes
    latency_ms: dict[str, float]

    @property
    def method(self) -> str:
        return self.endpoint.split(" ", 1)[0]


@dataclass(frozen=True)
class Budgets:
    path: Path
    users: int
    run_time_seconds: float
    think_time_seconds: tuple[float, float]
    max_failure_ratio: float
    min_requests_per_second: float
    endpoints: list[EndpointBudget] = field(default_factory=list)

    def selected(self, *, api_only: bool, allow_writes: bool) -> list[EndpointBudget]:
        """The endpoints a run requests: pages only through a frontend, writes only when asked."""
        skipped = {"pages"} if api_only else set()
        if not allow_writes:
            skipped.add("writes")
        return [budget for budget in self.endpoints if budget.group not in skipped]


def _table(data: dict[str, Any], key: str, where: Path) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise UserError(f"{where}: a [{key}] table is missing")
    return value


def _number(table: dict[str, Any], key: str, where: str, *, positive: bool = True) -> float:
    value = table.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or (positive and value <= 0) or value < 0:
        raise UserError(f"{where}: {key} must be a {'positive ' if positive else ''}number, got {value!r}")
    return float(value)


def _only(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r} (expected {', '.join(sorted(allowed))})")


def load_budgets(path: Path) -> Budgets:
    """The budgets file, checked whole: a typo is one line naming the file and the key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"no budgets file at {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{path} is not valid TOML: {error}") from None
    _only(data, {"load", "total", *GROUPS}, str(path))
    load, total = _table(data, "load", path), _table(data, "total", path)
    _only(load, {"users", "run_time_seconds", "think_time_seconds"}, f"{path} [load]")
    _only(total, {"max_failure_ratio", "min_requests_per_second"}, f"{path} [total]")
    think = load.get("think_time_seconds")
    if not (isinstance(think, list) and len(think) == 2 and all(isinstance(x, int | float) for x in think)) or not (
        0 <= think[0] <= think[1]
    ):
        raise UserError(f"{path} [load]: think_time_seconds must be [min, max] seconds, got {think!r}")
    endpoints = []
    for group in GROUPS:
        tables = data.get(group, {})
        if not isinstance(tables, dict):
            raise UserError(f'{path}: [{group}] must hold one table per endpoint, like [{group}."GET /path"]')
        for endpoint, table in tables.items():
            where = f"{path} [{group}.{endpoint!r}]"
            if not isinstance(table, dict):
                raise UserError(f"{where}: must be a table of p50_ms, p95_ms and p99_ms")
            method, _, route = endpoint.partition(" ")
            if method not in ("GET", "POST") or not route.startswith("/"):
                raise UserError(f"{where}: name an endpoint as 'METHOD /path', e.g. 'GET /api/health'")
            if (method == "GET") == (group == "writes"):
                raise UserError(f"{where}: [writes] holds the POSTs, [api] and [pages] the GETs")
            _only(table, {f"{name}_ms" for name in PERCENTILES}, where)
            latency = {name: _number(table, f"{name}_ms", where) for name in PERCENTILES}
            endpoints.append(EndpointBudget(endpoint, group, latency))
    return Budgets(
        path=path,
        users=int(_number(load, "users", f"{path} [load]")),
        run_time_seconds=_number(load, "run_time_seconds", f"{path} [load]"),
        think_time_seconds=(float(think[0]), float(think[1])),
        max_failure_ratio=_number(total, "max_failure_ratio", f"{path} [total]", positive=False),
        min_requests_per_second=_number(total, "min_requests_per_second", f"{path} [total]", positive=False),
        endpoints=endpoints,
    )


@dataclass(frozen=True)
class Measured:
    """One row of locust's `_stats.csv`: an endpoint, or the aggregate of all of them."""

    requests: int
    failures: int
    requests_per_second: float
    latency_ms: dict[str, float | None]


def read_stats(path: Path) -> dict[str, Measured]:
    """{"GET /api/health": …, "Aggregated": …} from locust's CSV (its percentiles are already rounded)."""
    rows: dict[str, Measured] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            key = f"{row['Type']} {row['Name']}".strip()
            latency = {name: _maybe_float(row.get(CSV_COLUMN[name], "")) for name in PERCENTILES}
            rows[key] = Measured(
                requests=int(row["Request Count"]),
                failures=int(row["Failure Count"]),
                requests_per_second=float(row["Requests/s"]),
                latency_ms=latency,
            )
    return rows


def _maybe_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:  # "N/A" when an endpoint had no request
        return None


@dataclass
class Verdict:
    """What one run measured against what it was allowed; `broken` has one line per broken budget."""

    rows: list[tuple[EndpointBudget, Measured | None]]
    total: Measured
    broken: list[str] = field(default_factory=list)


def judge(budgets: Budgets, selected: list[EndpointBudget], stats: dict[str, Measured]) -> Verdict:
    """Each selected endpoint's p50/p95/p99, then the error rate and throughput of all requests."""
    empty = Measured(0, 0, 0.0, dict.fromkeys(PERCENTILES))
    verdict = Verdict([(budget, stats.get(budget.endpoint)) for budget in selected], stats.get("Aggregated", empty))
    for budget, measured in verdict.rows:
        if measured is None or measured.requests == 0:
            verdict.broken.append(f"{budget.endpoint}: no request was made in the run; its budgets cannot be judged")
            continue
        for name in PERCENTILES:
            value, allowed = measured.latency_ms[name], budget.latency_ms[name]
            if value is not None and value > allowed:
                verdict.broken.append(f"{budget.endpoint}: {name} {value:,.0f} ms > budget {allowed:,.0f} ms")
    total = verdict.total
    # No request at all is already a line per endpoint above, and a ratio of nothing is not 100%.
    ratio = total.failures / total.requests if total.requests else 0.0
    if ratio > budgets.max_failure_ratio:
        failing = ", ".join(
            f"{budget.endpoint} {measured.failures} of {measured.requests}"
            for budget, measured in verdict.rows
            if measured is not None and measured.failures
        )
        verdict.broken.append(
            f"all requests: failure ratio {ratio:.1%} > budget {budgets.max_failure_ratio:.1%}"
            + (f" ({failing})" if failing else "")
        )
    if total.requests_per_second < budgets.min_requests_per_second:
        verdict.broken.append(
            f"all requests: {total.requests_per_second:.1f} requests/s < budget {budgets.min_requests_per_second:g}"
        )
    return verdict


def print_table(verdict: Verdict, budgets: Budgets) -> None:
    """One row per endpoint, measured / budget in each cell, broken ones in red: readable at a glance."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console.width = 120  # a CI log or a pipe: wide enough that no row wraps

    def cell(value: float | None, allowed: float) -> str:
        if value is None:
            return "-"
        text = f"{value:,.0f} / {allowed:,.0f}"
        return f"[red]{text} ✗[/red]" if value > allowed else text  # ✗: readable in a log without colour

    table = Table(title="perf: measured / budget (ms)", title_justify="left")
    for column in ("endpoint", "requests", "failures", "p50", "p95", "p99", "req/s"):
        table.add_column(column, justify="left" if column == "endpoint" else "right")
    for budget, measured in verdict.rows:
        if measured is None:
            table.add_row(budget.endpoint, "[red]0[/red]", "-", "-", "-", "-", "-")
            continue
        table.add_row(
            budget.endpoint, str(measured.requests), str(measured.failures),
            *(cell(measured.latency_ms[name], budget.latency_ms[name]) for name in PERCENTILES),
            f"{measured.requests_per_second:.1f}",
        )  # fmt: skip
    total = verdict.total
    ratio = total.failures / total.requests if total.requests else 0.0
    failures = f"{total.failures} ({ratio:.1%} / {budgets.max_failure_ratio:.1%})"
    throughput = f"{total.requests_per_second:.1f} / ≥{budgets.min_requests_per_second:g}"
    if ratio > budgets.max_failure_ratio:
        failures = f"[red]{failures} ✗[/red]"
    if total.requests_per_second < budgets.min_requests_per_second:
        throughput = f"[red]{throughput} ✗[/red]"
    table.add_section()
    table.add_row("all requests", str(total.requests), failures, "", "", "", throughput)
    console.print(table)


def _generous(value: float) -> int:
    """`value` times the margin, at least the floor, rounded up to two significant digits."""
    wanted = max(value * LATENCY_MARGIN, LATENCY_FLOOR_MS)
    step = 10 ** max(int(math.log10(wanted)) - 1, 0)
    return int(math.ceil(wanted / step) * step)


def baseline(budgets: Budgets, verdict: Verdict) -> str:
    """The budgets file this run's figures propose (margins above), the measured figures beside them."""
    load, total = budgets, verdict.total
    think = ", ".join(f"{seconds:g}" for seconds in load.think_time_seconds)
    lines = [
        f"# Proposed by `nox -s perf -- --baseline`: measured x{LATENCY_MARGIN:g} (at least {LATENCY_FLOOR_MS} ms),",
        f"# throughput x{THROUGHPUT_MARGIN:g}. Review, then replace {budgets.path.name} with it.",
        "[load]",
        f"users = {load.users}",
        f"run_time_seconds = {load.run_time_seconds:g}",
        f"think_time_seconds = [{think}]",
        "",
        "[total]",
        f"max_failure_ratio = {budgets.max_failure_ratio:g}",
        f"min_requests_per_second = {math.floor(total.requests_per_second * THROUGHPUT_MARGIN * 10) / 10:g}"
        f"  # measured {total.requests_per_second:.1f}",
    ]
    measured_by_endpoint = {budget.endpoint: measured for budget, measured in verdict.rows}
    for budget in budgets.endpoints:  # every endpoint, so an --api-only run keeps the pages' budgets
        measured = measured_by_endpoint.get(budget.endpoint)
        lines += ["", f'[{budget.group}."{budget.endpoint}"]']
        for name in PERCENTILES:
            value = measured.latency_ms[name] if measured else None
            if value is None:
                lines.append(f"{name}_ms = {budget.latency_ms[name]:g}  # not measured in this run: kept")
            else:
                lines.append(f"{name}_ms = {_generous(value)}  # measured {value:g}")
    return "\n".join(lines) + "\n"
