"""GET /api/ping and POST /api/ping/toggle: the smallest round trip through PostgreSQL.

The frontend's demo and the smoke test use it to prove that a write survives a reload.
"""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import case, func
from sqlalchemy.dialects.postgresql import insert

from src.dependencies import SessionDep
from src.errors import ERROR_RESPONSES
from src.models import PingState
from src.schemas import PingReport

router = APIRouter(prefix="/ping", tags=["ping"], responses=ERROR_RESPONSES)

PING_ROW_ID = 1


@router.get("", response_model=PingReport)
async def get_ping(session: SessionDep) -> PingReport:
    """The current state; `ping` with count 0 until the first toggle."""
    row = await session.get(PingState, PING_ROW_ID)
    if row is None:
        return PingReport(state="ping", toggle_count=0, updated_at=None)
    # from_attributes: the row's `state` is a plain str column; PingReport checks it is ping/pong.
    return PingReport.model_validate(row, from_attributes=True)


@router.post("/toggle", response_model=PingReport)
async def toggle_ping(session: SessionDep) -> PingReport:
    """Flip ping↔pong in one statement, so concurrent toggles never lose a count."""
    first_toggle = insert(PingState).values(id=PING_ROW_ID, state="pong", toggle_count=1, updated_at=func.now())
    statement = first_toggle.on_conflict_do_update(
        index_elements=[PingState.id],
        set_={
            "state": case((PingState.state == "ping", "pong"), else_="ping"),
            "toggle_count": PingState.toggle_count + 1,
            "updated_at": func.now(),
        },
    ).returning(PingState.state, PingState.toggle_count, PingState.updated_at)
    row = (await session.execute(statement)).one()
    await session.commit()
    return PingReport.model_validate(row, from_attributes=True)
