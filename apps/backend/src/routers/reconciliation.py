"""Reconciliation: match statement lines to journal entries and report what is left."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from src.dependencies import ResourcesDep, SessionDep
from src.errors import ERROR_RESPONSES
from src.models import StatementLine
from src.reconciliation import compute_stats, list_pending_lines, run_reconciliation
from src.schemas import (
    MatchOut,
    ReconciliationRunReport,
    ReconciliationStats,
    StatementLineOut,
)

router = APIRouter(prefix="/reconciliation", tags=["reconciliation"], responses=ERROR_RESPONSES)

Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1)]


@router.post("/run", response_model=ReconciliationRunReport)
async def run(session: SessionDep, resources: ResourcesDep) -> ReconciliationRunReport:
    """Match every unmatched line it can; already matched lines and entries are left alone."""
    matches = await run_reconciliation(session)
    await resources.stats_cache.invalidate()
    return ReconciliationRunReport(
        matched=len(matches),
        matches=[
            MatchOut(
                statement_line_id=match.statement_line_id,
                journal_entry_id=match.journal_entry_id,
                day_difference=match.day_difference,
            )
            for match in matches
        ],
    )


@router.get("/stats", response_model=ReconciliationStats)
async def stats(session: SessionDep, resources: ResourcesDep) -> ReconciliationStats:
    """Served from the Redis cache when present; every write clears it."""
    cached = await resources.stats_cache.get()
    if cached is not None:
        return ReconciliationStats.model_validate(cached)
    computed = await compute_stats(session)
    await resources.stats_cache.store(computed)
    return ReconciliationStats.model_validate(computed)


@router.get("/pending", response_model=list[StatementLineOut])
async def pending(session: SessionDep, limit: Limit = 100, offset: Offset = 0) -> list[StatementLine]:
    """Statement lines without a journal entry, oldest first."""
    return await list_pending_lines(session, limit, offset)
