"""GET /api/health: is this instance able to serve? Load balancers and the smoke test ask it."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from src.dependencies import ResourcesDep
from src.errors import ERROR_RESPONSES
from src.health import check_dependencies
from src.schemas import CheckReport, HealthReport

router = APIRouter(tags=["health"], responses=ERROR_RESPONSES)


@router.get(
    "/health",
    response_model=HealthReport,
    responses={503: {"model": HealthReport, "description": "A dependency failed its check"}},
)
async def health(resources: ResourcesDep) -> JSONResponse:
    """200 when PostgreSQL, Redis and S3 all answer within the timeout, 503 otherwise."""
    results = await check_dependencies(resources)
    healthy = all(result.status == "ok" for result in results)
    report = HealthReport(
        status="healthy" if healthy else "unhealthy",
        timestamp=dt.datetime.now(dt.UTC),
        git_sha=resources.settings.git_commit_sha,
        checks={
            result.name: CheckReport(
                status="ok" if result.status == "ok" else "error",
                message=result.message,
                duration_ms=result.duration_ms,
            )
            for result in results
        },
    )
    return JSONResponse(report.model_dump(mode="json"), status_code=200 if healthy else 503)
