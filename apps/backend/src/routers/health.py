"""GET /api/health: can this instance serve, and is anything it depends on failing?

Two questions, two signals. "Cannot serve" (PostgreSQL unreachable: every endpoint needs it) is
503, so a load balancer takes the instance out. "Degraded" (Redis or S3 failing: the stats cache
is bypassed, uploads answer 503, everything else works) is 200 with `status: degraded` and the
failing dependencies listed in `failing`, so monitoring sees it while the instance keeps serving;
pulling every instance because a cache is down would turn a slowdown into an outage.
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from src.dependencies import ResourcesDep
from src.errors import ERROR_RESPONSES
from src.health import check_dependencies
from src.schemas import CheckReport, HealthReport, HealthStatus

router = APIRouter(tags=["health"], responses=ERROR_RESPONSES)

# Without these the app cannot answer any request; the others only degrade it.
REQUIRED_DEPENDENCIES = frozenset({"database"})


@router.get(
    "/health",
    response_model=HealthReport,
    responses={503: {"model": HealthReport, "description": "PostgreSQL failed its check: cannot serve"}},
)
async def health(resources: ResourcesDep) -> JSONResponse:
    """200 `healthy` when every dependency answers, 200 `degraded` when Redis or S3 does not,
    503 `unhealthy` when PostgreSQL does not (each check bounded by HEALTH_CHECK_TIMEOUT)."""
    results = await check_dependencies(resources)
    failing = sorted(result.name for result in results if result.status != "ok")
    serving = not REQUIRED_DEPENDENCIES.intersection(failing)
    status: HealthStatus = "unhealthy" if not serving else "degraded" if failing else "healthy"
    report = HealthReport(
        status=status,
        timestamp=dt.datetime.now(dt.UTC),
        git_sha=resources.settings.git_commit_sha,
        failing=failing,
        checks={
            result.name: CheckReport(
                status="ok" if result.status == "ok" else "error",
                message=result.message,
                duration_ms=result.duration_ms,
            )
            for result in results
        },
    )
    return JSONResponse(report.model_dump(mode="json"), status_code=200 if serving else 503)
