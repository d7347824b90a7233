"""Turning an uploaded file into rows without stalling the server.

A 5 MB statement holds ~200 000 lines. Parsing them, hashing the file and formatting the rows are
pure CPU work, so they run in a worker thread (`asyncio.to_thread`); the rows then reach
PostgreSQL through one `COPY … FROM STDIN` in large chunks instead of one INSERT per ORM object.
Between chunks the event loop is free, so /api/health and every other request keep answering
while a large file is imported.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from src.statement_csv import StatementLineData, parse_statement_csv

# Large enough that a 5 MB file is a handful of writes, small enough to keep the loop responsive.
COPY_CHUNK_BYTES = 1024 * 1024
COPY_LINES_SQL = (
    "COPY statement_lines (statement_id, line_number, date, description, amount, currency) FROM STDIN (FORMAT csv)"
)


@dataclass(frozen=True)
class PreparedStatement:
    """A validated file: its hash (which names its object) and its lines."""

    sha256: str
    lines: list[StatementLineData]


def prepare_statement(content: bytes, default_currency: str) -> PreparedStatement:
    """Hash and parse `content` (blocking: call through `asyncio.to_thread`)."""
    lines = parse_statement_csv(content, default_currency)
    return PreparedStatement(sha256=hashlib.sha256(content).hexdigest(), lines=lines)


def format_copy_chunks(statement_id: int, lines: list[StatementLineData]) -> list[bytes]:
    """The lines as CSV for COPY, split into chunks of about COPY_CHUNK_BYTES (blocking)."""
    return list(_copy_chunks(statement_id, lines))


def _copy_chunks(statement_id: int, lines: list[StatementLineData]) -> Iterator[bytes]:
    buffer = io.StringIO()
    # QUOTE_ALL: a quoted field is never NULL and never the `\.` end-of-data marker, whatever a
    # description holds; PostgreSQL reads quoted numbers and dates like unquoted ones.
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
    for line in lines:
        writer.writerow(
            (statement_id, line.line_number, line.date.isoformat(), line.description, line.amount, line.currency)
        )
        if buffer.tell() >= COPY_CHUNK_BYTES:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


async def copy_statement_lines(session: AsyncSession, statement_id: int, lines: list[StatementLineData]) -> None:
    """Insert `lines` in the session's transaction with COPY, formatting them off the loop."""
    chunks = await asyncio.to_thread(format_copy_chunks, statement_id, lines)
    connection = await session.connection()
    raw_connection = await connection.get_raw_connection()
    driver_connection = raw_connection.driver_connection
    assert driver_connection is not None  # a checked-out pooled connection always has one
    async with driver_connection.cursor() as cursor, cursor.copy(COPY_LINES_SQL) as copy:
        for chunk in chunks:
            await copy.write(chunk)
            # An await that need not suspend would not hand the loop back; make sure it does.
            await asyncio.sleep(0)
