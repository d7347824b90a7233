"""Statement upload: all or nothing across S3 and PostgreSQL, with clear errors."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from src.models import Statement, StatementLine
from src.routers.statements import clean_filename
from tests.dead_endpoints import closed_port
from tests.harness import (
    SessionFactory,
    TestContract,
    WorkerBucket,
    app_with_settings,
    isolated_client,
)
from tests.statement_files import statement_csv, upload

pytestmark = pytest.mark.integration

GOOD_FILE = statement_csv(
    [
        ("2024-03-01", "Coffee", "-3.50", "EUR"),
        ("2024-03-02", "Salary", "2500.00"),
    ]
)


async def count_rows(session: AsyncSession) -> tuple[int, int]:
    statements = await session.scalar(select(func.count()).select_from(Statement))
    lines = await session.scalar(select(func.count()).select_from(StatementLine))
    return statements or 0, lines or 0


async def test_upload_stores_the_file_and_its_lines(
    client: AsyncClient, bucket: WorkerBucket, db_session: AsyncSession
) -> None:
    response = await client.post("/api/statements", **upload(GOOD_FILE))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["filename"] == "march.csv"
    assert body["line_count"] == 2
    assert body["sha256"] == hashlib.sha256(GOOD_FILE).hexdigest()
    assert [(line["amount"], line["currency"]) for line in body["lines"]] == [
        ("-3.50", "EUR"),
        ("2500.00", "USD"),
    ]
    assert body["object_key"].startswith(bucket.prefix)
    assert bucket.keys() == [body["object_key"]]
    assert bucket.read(body["object_key"]) == GOOD_FILE
    lines = (await db_session.scalars(select(StatementLine).order_by(StatementLine.id))).all()
    assert [line.amount for line in lines] == [Decimal("-3.50"), Decimal("2500.00")]


async def test_list_and_get_statements(client: AsyncClient) -> None:
    first = (await client.post("/api/statements", **upload(GOOD_FILE, "a.csv"))).json()
    second = (await client.post("/api/statements", **upload(GOOD_FILE, "b.csv"))).json()

    listed = (await client.get("/api/statements")).json()
    assert [item["id"] for item in listed] == [second["id"], first["id"]]
    assert "lines" not in listed[0]
    assert [item["id"] for item in (await client.get("/api/statements?limit=1&offset=1")).json()] == [first["id"]]

    detail = (await client.get(f"/api/statements/{first['id']}")).json()
    assert detail["filename"] == "a.csv"
    assert [line["line_number"] for line in detail["lines"]] == [2, 3]


async def test_unknown_statement_is_a_json_404(client: AsyncClient) -> None:
    response = await client.get("/api/statements/999999")
    assert response.status_code == 404
    assert response.json() == {
        "detail": "statement 999999 does not exist",
        "code": "statement_not_found",
    }


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (statement_csv([("2024-03-01", "ok", "1.00"), ("2024-13-01", "bad", "2")]), "line 3: date"),
        (b"date,description\n2024-01-01,x\n", "line 1: missing column(s) amount"),
        (b"\xff\xfe\x00garbage", "line 1: the file is not UTF-8 text"),
    ],
)
async def test_malformed_file_is_422_and_stores_nothing(
    client: AsyncClient,
    bucket: WorkerBucket,
    db_session: AsyncSession,
    content: bytes,
    detail: str,
) -> None:
    response = await client.post("/api/statements", **upload(content))
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_statement"
    assert body["detail"].startswith(detail)
    assert bucket.keys() == []
    assert await count_rows(db_session) == (0, 0)


async def test_missing_file_field_is_a_json_422(client: AsyncClient) -> None:
    response = await client.post("/api/statements", data={"other": "x"})
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert "file" in response.json()["detail"]


async def test_oversized_file_is_413_and_stores_nothing(
    contract: TestContract,
    session_factory: SessionFactory,
    bucket: WorkerBucket,
    db_session: AsyncSession,
) -> None:
    async with (
        app_with_settings(contract.settings(max_upload_bytes=64)) as app,
        isolated_client(app, session_factory) as client,
    ):
        response = await client.post("/api/statements", **upload(GOOD_FILE))
    assert response.status_code == 413
    assert response.json() == {
        "detail": "statement file is larger than the limit of 64 bytes",
        "code": "file_too_large",
    }
    assert bucket.keys() == []
    assert await count_rows(db_session) == (0, 0)


async def test_announced_oversized_body_is_refused_before_reading(client: AsyncClient) -> None:
    response = await client.post(
        "/api/statements",
        content=b"x",
        headers={"content-length": str(10**12), "content-type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 413
    assert response.json()["code"] == "file_too_large"


async def test_storage_outage_is_503_and_stores_no_rows(
    contract: TestContract, session_factory: SessionFactory, db_session: AsyncSession
) -> None:
    dead_s3 = contract.settings(s3_endpoint=f"http://127.0.0.1:{closed_port()}")
    async with app_with_settings(dead_s3) as app, isolated_client(app, session_factory) as client:
        response = await client.post("/api/statements", **upload(GOOD_FILE))
    assert response.status_code == 503
    assert response.json()["code"] == "storage_unavailable"
    assert await count_rows(db_session) == (0, 0)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("march.csv", "march.csv"),
        ("C:\\Users\\me\\march.csv", "march.csv"),
        ("../../etc/passwd", "passwd"),
        ("bad\x00name\n.csv", "badname.csv"),
        ("", "statement.csv"),
        (None, "statement.csv"),
        ("x" * 300, "x" * 255),
    ],
)
def test_clean_filename(raw: str | None, expected: str) -> None:
    assert clean_filename(raw) == expected
