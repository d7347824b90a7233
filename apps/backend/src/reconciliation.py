"""Matching statement lines to journal entries.

A line and an entry match when they have the same currency and amount and their dates are at most
`MATCH_WINDOW_DAYS` apart. Each line and each entry is matched at most once. Among all candidate
pairs, the closest dates win first, then the lowest statement-line id, then the lowest entry id —
so the result depends only on the data, never on query order.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from src.models import JournalEntry, ReconciliationMatch, StatementLine

MATCH_WINDOW_DAYS = 3
# Any constant works; it only has to be the same for every run so runs queue behind each other.
RECONCILIATION_LOCK_KEY = 0x5EC0_4C11


@dataclass(frozen=True)
class Candidate:
    """What matching needs to know about a line or an entry."""

    id: int
    date: dt.date
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class ProposedMatch:
    statement_line_id: int
    journal_entry_id: int
    day_difference: int


def choose_matches(
    lines: list[Candidate], entries: list[Candidate], window_days: int = MATCH_WINDOW_DAYS
) -> list[ProposedMatch]:
    """Greedy one-to-one matching over candidate pairs ordered (day gap, line id, entry id)."""
    entries_by_amount: dict[tuple[str, Decimal], list[Candidate]] = defaultdict(list)
    for entry in entries:
        entries_by_amount[(entry.currency, entry.amount)].append(entry)

    pairs = []
    for line in lines:
        for entry in entries_by_amount.get((line.currency, line.amount), ()):
            # Subtracting dates cannot overflow, unlike adding a window to date.max.
            gap = abs((line.date - entry.date).days)
            if gap <= window_days:
                pairs.append((gap, line.id, entry.id))
    pairs.sort()

    matched_lines: set[int] = set()
    matched_entries: set[int] = set()
    matches = []
    for gap, line_id, entry_id in pairs:
        if line_id in matched_lines or entry_id in matched_entries:
            continue
        matched_lines.add(line_id)
        matched_entries.add(entry_id)
        matches.append(ProposedMatch(line_id, entry_id, gap))
    return sorted(matches, key=lambda match: match.statement_line_id)


def _unmatched_lines_query() -> Any:
    return (
        select(StatementLine)
        .outerjoin(ReconciliationMatch, ReconciliationMatch.statement_line_id == StatementLine.id)
        .where(ReconciliationMatch.id.is_(None))
    )


def _unmatched_entries_query() -> Any:
    return (
        select(JournalEntry)
        .outerjoin(ReconciliationMatch, ReconciliationMatch.journal_entry_id == JournalEntry.id)
        .where(ReconciliationMatch.id.is_(None))
    )


async def run_reconciliation(session: AsyncSession) -> list[ProposedMatch]:
    """Match everything still unmatched and commit the new matches."""
    # A transaction-scoped lock: two concurrent runs would otherwise both read the same unmatched
    # rows, and the second would fail on the unique constraints instead of finding nothing to do.
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RECONCILIATION_LOCK_KEY})
    lines = [
        Candidate(line.id, line.date, line.amount, line.currency)
        for line in (await session.scalars(_unmatched_lines_query())).all()
    ]
    entries = [
        Candidate(entry.id, entry.date, entry.amount, entry.currency)
        for entry in (await session.scalars(_unmatched_entries_query())).all()
    ]
    matches = choose_matches(lines, entries)
    session.add_all(
        ReconciliationMatch(
            statement_line_id=match.statement_line_id,
            journal_entry_id=match.journal_entry_id,
            day_difference=match.day_difference,
        )
        for match in matches
    )
    await session.commit()
    return matches


async def compute_stats(session: AsyncSession) -> dict[str, Any]:
    matched = await session.scalar(select(func.count()).select_from(ReconciliationMatch)) or 0
    lines = await session.scalar(select(func.count()).select_from(StatementLine)) or 0
    entries = await session.scalar(select(func.count()).select_from(JournalEntry)) or 0
    return {
        "matched": matched,
        "unmatched_statement_lines": lines - matched,
        "unmatched_journal_entries": entries - matched,
        "match_rate": round(matched / lines, 4) if lines else 0.0,
    }


async def list_pending_lines(session: AsyncSession, limit: int, offset: int) -> list[StatementLine]:
    query = _unmatched_lines_query().order_by(StatementLine.date, StatementLine.id).limit(limit).offset(offset)
    return list((await session.scalars(query)).all())
