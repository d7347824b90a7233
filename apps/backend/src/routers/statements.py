"""Bank statements: upload a CSV, list statements, read one and its lines page by page.

An upload is idempotent and never loses a stored file:

- The file is parsed completely first (in a worker thread), so a malformed file stores nothing.
- Its bytes go to S3 under a key derived from their sha256 (content-addressed), then its rows are
  written and committed. The same file always maps to the same key and, by a unique constraint,
  to the same row: uploading it again answers 200 with the existing statement instead of adding a
  duplicate (and stores its object again if it has gone), and a retry after any failure is safe.
- From before its object is stored until its row commits, an upload holds a lock that keeps the
  orphan sweep away from that object (src/object_locks.py).
- No request ever deletes an object. When the connection fails around COMMIT, the database may
  have applied it with the reply lost; deleting "our" object would then orphan a committed row.
  The client gets 503 and retries (and gets its statement back, 200, if it was saved); an object
  whose row never committed is an orphan that `python -m src.orphans` sweeps (see docs/api.md).
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from typing import Annotated

from botocore.exceptions import BotoCoreError, ClientError
from fastapi import APIRouter, File, Path, Query, Request, Response, UploadFile
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from src.dependencies import ResourcesDep, SessionDep
from src.errors import ERROR_RESPONSES, ApiError, ErrorBody, database_unavailable_error, is_connection_failure
from src.models import Statement, StatementLine
from src.object_locks import hold_for_upload
from src.resources import Resources
from src.schemas import StatementLineOut, StatementSummary
from src.statement_csv import StatementFormatError
from src.statement_import import copy_statement_lines, prepare_statement

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/statements", tags=["statements"], responses=ERROR_RESPONSES)

StatementId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1)]
LineLimit = Annotated[int, Query(ge=1, le=5000)]
DEFAULT_FILENAME = "statement.csv"


def clean_filename(raw: str | None) -> str:
    """The last path component without control characters, at most 255 characters."""
    name = re.split(r"[\\/]", raw or "")[-1]
    name = "".join(char for char in name if unicodedata.category(char)[0] != "C").strip()
    return name[:255] or DEFAULT_FILENAME


async def find_statement_by_sha256(session: AsyncSession, sha256: str) -> Statement | None:
    return await session.scalar(select(Statement).where(Statement.sha256 == sha256))


async def object_is_stored(resources: Resources, key: str) -> bool:
    try:
        return await resources.storage.exists(key)
    except (BotoCoreError, ClientError) as error:
        logger.error("checking statement object %s failed: %s", key, error)
        raise ApiError(503, "storage_unavailable", "object storage is unavailable; try again later") from None


async def store_object(resources: Resources, key: str, content: bytes) -> None:
    try:
        await resources.storage.put(key, content)
    except (BotoCoreError, ClientError) as error:
        logger.error("storing statement object %s failed: %s", key, error)
        raise ApiError(503, "storage_unavailable", "object storage is unavailable; try again later") from None


@router.post(
    "",
    status_code=201,
    response_model=StatementSummary,
    responses={
        200: {"model": StatementSummary, "description": "This file was uploaded before: its existing statement"},
        413: {"model": ErrorBody, "description": "The file exceeds MAX_UPLOAD_BYTES"},
        503: {"model": ErrorBody, "description": "Storage or database unavailable; retrying is safe"},
    },
)
async def upload_statement(
    request: Request,
    response: Response,
    file: Annotated[UploadFile, File(description="CSV: date, description, amount[, currency]")],
    session: SessionDep,
    resources: ResourcesDep,
) -> Statement:
    """Store a statement file and its lines: 201 the first time, 200 with the same statement for
    the same file again; 422 names the first bad line. The body counts the lines
    (`line_count`); read them with GET /api/statements/{id}/lines."""
    settings = resources.settings
    # FastAPI keeps only the last part of a repeated field; a second file must not vanish silently.
    parts = (await request.form()).getlist("file")
    if len(parts) != 1:
        raise ApiError(
            422, "validation_error", f"body.file: send exactly one file per upload, this request has {len(parts)}"
        )
    content = await file.read(settings.max_upload_bytes + 1)
    if len(content) > settings.max_upload_bytes:
        raise ApiError(
            413,
            "file_too_large",
            f"statement file is larger than the limit of {settings.max_upload_bytes} bytes",
        )
    try:
        prepared = await asyncio.to_thread(prepare_statement, content, settings.base_currency)
    except StatementFormatError as error:
        raise ApiError(422, "invalid_statement", str(error)) from None

    existing = await find_statement_by_sha256(session, prepared.sha256)
    key = existing.object_key if existing is not None else resources.storage.statement_key(prepared.sha256)
    # Until this transaction ends, the orphan sweep leaves this object alone (src/object_locks.py).
    await hold_for_upload(session, key)
    if existing is not None:
        # Its row without its object (S3 lost it, or someone deleted it) would answer 200 over a
        # hole for good; these are the very bytes it names (same sha256), so store them again.
        if not await object_is_stored(resources, key):
            await store_object(resources, key, content)
        response.status_code = 200
        return existing

    # Before any row: a row must never point at an object that is not there.
    await store_object(resources, key, content)

    statement = Statement(
        filename=clean_filename(file.filename),
        object_key=key,
        size_bytes=len(content),
        sha256=prepared.sha256,
        line_count=len(prepared.lines),
    )
    session.add(statement)
    try:
        await session.flush()
    except IntegrityError:
        # A concurrent upload of the same file committed first; it is the statement.
        await session.rollback()
        winner = await find_statement_by_sha256(session, prepared.sha256)
        if winner is None:
            raise
        response.status_code = 200
        return winner
    await copy_statement_lines(session, statement.id, prepared.lines)
    try:
        await session.commit()
    except Exception as error:
        if not is_connection_failure(error):
            raise
        # The COMMIT may have been applied with its reply lost: keep the object, let the client
        # retry; the retry finds the row (200) or stores it now (201).
        logger.error("commit of statement %s failed, outcome unknown: %s", prepared.sha256, error)
        raise database_unavailable_error(
            "the database connection failed while saving the statement; upload the same file again: "
            "you get the statement back if it was saved, or it is saved now"
        ) from None
    await resources.stats_cache.invalidate()
    return statement


@router.get("", response_model=list[StatementSummary])
async def list_statements(session: SessionDep, limit: Limit = 100, offset: Offset = 0) -> list[Statement]:
    """Newest first."""
    query = select(Statement).order_by(Statement.id.desc()).limit(limit).offset(offset)
    return list((await session.scalars(query)).all())


async def get_existing_statement(session: AsyncSession, statement_id: int) -> Statement:
    statement = await session.get(Statement, statement_id)
    if statement is None:
        raise ApiError(404, "statement_not_found", f"statement {statement_id} does not exist")
    return statement


@router.get("/{statement_id}", response_model=StatementSummary)
async def get_statement(statement_id: StatementId, session: SessionDep) -> Statement:
    """The statement without its lines: a file may hold hundreds of thousands of them."""
    return await get_existing_statement(session, statement_id)


@router.get("/{statement_id}/lines", response_model=list[StatementLineOut])
async def list_statement_lines(
    statement_id: StatementId, session: SessionDep, limit: LineLimit = 1000, offset: Offset = 0
) -> list[StatementLine]:
    """The statement's lines in file order, a page at a time."""
    await get_existing_statement(session, statement_id)
    query = (
        select(StatementLine)
        .where(StatementLine.statement_id == statement_id)
        .order_by(StatementLine.line_number)
        .limit(limit)
        .offset(offset)
    )
    return list((await session.scalars(query)).all())
