"""The journal: ledger entries recorded by the bookkeeper, to be matched against the bank."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from src.dependencies import ResourcesDep, SessionDep
from src.errors import ERROR_RESPONSES
from src.models import JournalEntry
from src.schemas import JournalEntryIn, JournalEntryOut

router = APIRouter(prefix="/journal", tags=["journal"], responses=ERROR_RESPONSES)

Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1)]


@router.post("", status_code=201, response_model=JournalEntryOut)
async def create_journal_entry(entry: JournalEntryIn, session: SessionDep, resources: ResourcesDep) -> JournalEntry:
    row = JournalEntry(
        date=entry.date,
        amount=entry.amount,
        description=entry.description,
        currency=entry.currency or resources.settings.base_currency,
    )
    session.add(row)
    await session.commit()
    await resources.stats_cache.invalidate()
    return row


@router.get("", response_model=list[JournalEntryOut])
async def list_journal_entries(session: SessionDep, limit: Limit = 100, offset: Offset = 0) -> list[JournalEntry]:
    """Oldest first, in the order a ledger is read."""
    query = select(JournalEntry).order_by(JournalEntry.date, JournalEntry.id).limit(limit).offset(offset)
    return list((await session.scalars(query)).all())
