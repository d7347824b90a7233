"""Bank statements: upload a CSV, list statements, read one with its lines.

An upload is all or nothing: the file is parsed completely first, the rows are flushed, the raw
file goes to S3, and only then is the transaction committed; if the commit fails the object is
deleted again. A malformed file therefore leaves neither an object nor a row behind.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from typing import Annotated

from botocore.exceptions import BotoCoreError, ClientError
from fastapi import APIRouter, File, Path, Query, UploadFile
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from src.dependencies import ResourcesDep, SessionDep
from src.errors import ERROR_RESPONSES, ApiError, ErrorBody
from src.models import Statement, StatementLine
from src.schemas import StatementDetail, StatementSummary
from src.statement_csv import StatementFormatError, parse_statement_csv

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/statements", tags=["statements"], responses=ERROR_RESPONSES)

StatementId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1)]
DEFAULT_FILENAME = "statement.csv"


def clean_filename(raw: str | None) -> str:
    """The last path component without control characters, at most 255 characters."""
    name = re.split(r"[\\/]", raw or "")[-1]
    name = "".join(char for char in name if unicodedata.category(char)[0] != "C").strip()
    return name[:255] or DEFAULT_FILENAME


@router.post(
    "",
    status_code=201,
    response_model=StatementDetail,
    responses={
        413: {"model": ErrorBody, "description": "The file exceeds MAX_UPLOAD_BYTES"},
        503: {"model": ErrorBody, "description": "Object storage unavailable"},
    },
)
async def upload_statement(
    file: Annotated[UploadFile, File(description="CSV: date, description, amount[, currency]")],
    session: SessionDep,
    resources: ResourcesDep,
) -> Statement:
    """Store a statement file in S3 and its lines in PostgreSQL; 422 names the first bad line."""
    settings = resources.settings
    content = await file.read(settings.max_upload_bytes + 1)
    if len(content) > settings.max_upload_bytes:
        raise ApiError(
            413,
            "file_too_large",
            f"statement file is larger than the limit of {settings.max_upload_bytes} bytes",
        )
    try:
        parsed = parse_statement_csv(content, settings.base_currency)
    except StatementFormatError as error:
        raise ApiError(422, "invalid_statement", str(error)) from None

    key = resources.storage.new_statement_key()
    statement = Statement(
        filename=clean_filename(file.filename),
        object_key=key,
        size_bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        line_count=len(parsed),
        lines=[
            StatementLine(
                line_number=line.line_number,
                date=line.date,
                description=line.description,
                amount=line.amount,
                currency=line.currency,
            )
            for line in parsed
        ],
    )
    session.add(statement)
    # Rows first: a database error must surface before an object exists that would need undoing.
    await session.flush()
    try:
        await resources.storage.put(key, content)
    except (BotoCoreError, ClientError) as error:
        logger.error("storing statement object %s failed: %s", key, error)
        raise ApiError(503, "storage_unavailable", "object storage is unavailable; try again later") from None
    try:
        await session.commit()
    except BaseException:
        await resources.storage.delete(key)
        raise
    await resources.stats_cache.invalidate()
    return statement


@router.get("", response_model=list[StatementSummary])
async def list_statements(session: SessionDep, limit: Limit = 100, offset: Offset = 0) -> list[Statement]:
    """Newest first."""
    query = select(Statement).order_by(Statement.id.desc()).limit(limit).offset(offset)
    return list((await session.scalars(query)).all())


@router.get("/{statement_id}", response_model=StatementDetail)
async def get_statement(statement_id: StatementId, session: SessionDep) -> Statement:
    statement = await session.get(Statement, statement_id, options=[selectinload(Statement.lines)])
    if statement is None:
        raise ApiError(404, "statement_not_found", f"statement {statement_id} does not exist")
    return statement
