"""Statement upload: idempotent, content-addressed, never losing a stored file, with clear errors."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy import delete, func, make_url, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from src.models import Statement, StatementLine
from src.routers.statements import clean_filename
from tests.contract import TestContract
from tests.dead_endpoints import closed_port
from tests.harness import SessionFactory, WorkerBucket, app_with_settings, isolated_client
from tests.statement_files import statement_csv, upload
from tests.tcp_proxy import LoopbackProxy, loopback_proxy

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
    sha256 = hashlib.sha256(GOOD_FILE).hexdigest()
    assert body["filename"] == "march.csv"
    assert body["line_count"] == 2
    assert body["sha256"] == sha256
    # The body counts the lines instead of echoing them: a large file would make it megabytes.
    assert "lines" not in body
    assert body["object_key"] == f"{bucket.prefix}statements/{sha256}.csv"
    assert bucket.keys() == [body["object_key"]]
    assert bucket.read(body["object_key"]) == GOOD_FILE
    lines = (await db_session.scalars(select(StatementLine).order_by(StatementLine.id))).all()
    assert [line.amount for line in lines] == [Decimal("-3.50"), Decimal("2500.00")]
    read = (await client.get(f"/api/statements/{body['id']}/lines")).json()
    assert [(line["line_number"], line["amount"], line["currency"]) for line in read] == [
        (2, "-3.50", "EUR"),
        (3, "2500.00", "USD"),
    ]


async def test_the_same_file_again_returns_the_existing_statement(
    client: AsyncClient, bucket: WorkerBucket, db_session: AsyncSession
) -> None:
    first = await client.post("/api/statements", **upload(GOOD_FILE, "a.csv"))
    again = await client.post("/api/statements", **upload(GOOD_FILE, "renamed.csv"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert await count_rows(db_session) == (1, 2)
    assert bucket.keys() == [first.json()["object_key"]]


async def test_the_same_file_again_stores_its_object_again_when_it_is_gone(
    client: AsyncClient, bucket: WorkerBucket, db_session: AsyncSession
) -> None:
    """An S3 that lost its objects (moto restarted) left the row pointing at nothing, and every
    re-upload answered 200 over the hole, for good."""
    first = await client.post("/api/statements", **upload(GOOD_FILE, "a.csv"))
    assert first.status_code == 201, first.text
    key = first.json()["object_key"]
    bucket.client.delete_object(Bucket=bucket.bucket, Key=key)
    assert bucket.keys() == []

    again = await client.post("/api/statements", **upload(GOOD_FILE, "again.csv"))
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert bucket.keys() == [key]
    assert bucket.read(key) == GOOD_FILE
    assert await count_rows(db_session) == (1, 2)


async def test_a_missing_bucket_is_made_again_by_the_upload(
    contract: TestContract, session_factory: SessionFactory, s3_client: Any
) -> None:
    """With its bucket gone (an S3 restarted without its data) every upload answered 503 NoSuchBucket."""
    missing = f"{contract.s3_bucket[:40]}-gone-{uuid.uuid4().hex[:8]}"
    settings = contract.settings(s3_bucket=missing)
    try:
        async with app_with_settings(settings) as app, isolated_client(app, session_factory) as client:
            response = await client.post("/api/statements", **upload(GOOD_FILE))
        assert response.status_code == 201, response.text
        stored = s3_client.get_object(Bucket=missing, Key=response.json()["object_key"])["Body"].read()
        assert stored == GOOD_FILE
    finally:
        listed = (
            s3_client.list_objects_v2(Bucket=missing).get("Contents", []) if bucket_exists(s3_client, missing) else []
        )
        for item in listed:
            s3_client.delete_object(Bucket=missing, Key=item["Key"])
        if bucket_exists(s3_client, missing):
            s3_client.delete_bucket(Bucket=missing)


def bucket_exists(s3_client: Any, name: str) -> bool:
    return name in {entry["Name"] for entry in s3_client.list_buckets().get("Buckets", [])}


async def test_list_and_get_statements(client: AsyncClient) -> None:
    other_file = statement_csv([("2024-04-01", "Rent", "-900.00")])
    first = (await client.post("/api/statements", **upload(GOOD_FILE, "a.csv"))).json()
    second = (await client.post("/api/statements", **upload(other_file, "b.csv"))).json()

    listed = (await client.get("/api/statements")).json()
    assert [item["id"] for item in listed] == [second["id"], first["id"]]
    assert "lines" not in listed[0]
    assert [item["id"] for item in (await client.get("/api/statements?limit=1&offset=1")).json()] == [first["id"]]

    detail = (await client.get(f"/api/statements/{first['id']}")).json()
    assert detail["filename"] == "a.csv"
    assert detail["line_count"] == 2
    page = (await client.get(f"/api/statements/{first['id']}/lines", params={"limit": 1, "offset": 1})).json()
    assert [line["line_number"] for line in page] == [3]


async def test_lines_of_an_unknown_statement_are_a_json_404(client: AsyncClient) -> None:
    response = await client.get("/api/statements/999999/lines")
    assert (response.status_code, response.json()["code"]) == (404, "statement_not_found")


async def test_descriptions_survive_the_bulk_load_exactly(client: AsyncClient) -> None:
    tricky = ["comma, inside", 'quote " inside', "back\\slash", "\\.", "tab\there", "ünïcödé €"]
    content = (
        "date,description,amount\n"
        + "".join(f'2024-03-0{day},"{text.replace(chr(34), chr(34) * 2)}",1.00\n' for day, text in enumerate(tricky, 1))
    ).encode()
    body = (await client.post("/api/statements", **upload(content))).json()
    lines = (await client.get(f"/api/statements/{body['id']}/lines")).json()
    assert [line["description"] for line in lines] == tricky


async def test_two_file_parts_are_a_422_and_store_nothing(
    client: AsyncClient, bucket: WorkerBucket, db_session: AsyncSession
) -> None:
    other_file = statement_csv([("2024-04-01", "Rent", "-900.00")])
    files = [("file", ("a.csv", GOOD_FILE, "text/csv")), ("file", ("b.csv", other_file, "text/csv"))]
    response = await client.post("/api/statements", files=files)
    assert response.status_code == 422
    assert response.json() == {
        "detail": "body.file: send exactly one file per upload, this request has 2",
        "code": "validation_error",
    }
    assert bucket.keys() == []
    assert await count_rows(db_session) == (0, 0)


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


async def test_a_chunked_body_is_refused_once_it_passes_the_limit(
    contract: TestContract, session_factory: SessionFactory
) -> None:
    """No Content-Length and no end: the server must stop reading at the limit, not spool it all."""
    chunk = b"x" * 4096
    sent = 0

    async def endless_body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\n'
        while True:
            sent += len(chunk)
            yield chunk

    async with (
        app_with_settings(contract.settings(max_upload_bytes=64 * 1024)) as app,
        isolated_client(app, session_factory) as client,
    ):
        response = await client.post(
            "/api/statements",
            content=endless_body(),
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
    assert response.status_code == 413
    assert response.json() == {
        "detail": "request body is larger than the limit of 65536 bytes",
        "code": "file_too_large",
    }
    # The limit is the file plus 64 KiB of multipart framing; one chunk more was read, no further.
    assert sent <= 128 * 1024 + len(chunk)


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


def proxied_database_url(contract: TestContract, proxy: LoopbackProxy) -> str:
    # Plain text on the wire (no TLS, no GSS), so the proxy can recognise the COMMIT.
    url = make_url(contract.database_url).set(
        host="127.0.0.1", port=proxy.port, query={"sslmode": "disable", "gssencmode": "disable"}
    )
    return url.render_as_string(hide_password=False)


def database_address(contract: TestContract) -> tuple[str, int]:
    url = make_url(contract.database_url)
    return url.host or "127.0.0.1", url.port or 5432


async def delete_statement(engine: AsyncEngine, sha256: str) -> None:
    """These tests commit for real (through the proxy, outside the test transaction)."""
    async with engine.begin() as connection:
        await connection.execute(delete(Statement).where(Statement.sha256 == sha256))


async def test_a_lost_commit_reply_keeps_the_file_and_the_retry_returns_the_statement(
    contract: TestContract, engine: AsyncEngine, bucket: WorkerBucket
) -> None:
    """The database applies the COMMIT, its reply is lost on the wire: nothing may be deleted, and
    sending the file again must return the statement that was saved, not a duplicate."""
    content = statement_csv([("2024-05-01", "Lost reply", "-1.00"), ("2024-05-02", "Kept", "2.00")])
    sha256 = hashlib.sha256(content).hexdigest()
    try:
        with loopback_proxy(*database_address(contract)) as proxy:
            settings = contract.settings(database_url=proxied_database_url(contract, proxy))
            async with app_with_settings(settings) as app:
                transport = ASGITransport(app=app, raise_app_exceptions=False)
                async with AsyncClient(transport=transport, base_url="http://testserver") as client:
                    proxy.drop_reply_after(b"COMMIT\x00")
                    lost = await client.post("/api/statements", **upload(content))
                    assert proxy.faults_fired == ["drop_reply"]
                    retry = await client.post("/api/statements", **upload(content))
        assert lost.status_code == 503
        assert lost.json()["code"] == "database_unavailable"
        assert "upload the same file again" in lost.json()["detail"]
        assert lost.headers["retry-after"]

        async with AsyncSession(engine) as session:
            rows = (await session.scalars(select(Statement).where(Statement.sha256 == sha256))).all()
        assert len(rows) == 1, "the COMMIT was applied: exactly one statement row"
        assert bucket.read(rows[0].object_key) == content, "the committed row's object must still exist"
        assert retry.status_code == 200, retry.text
        assert retry.json()["id"] == rows[0].id
        assert retry.json()["line_count"] == 2
    finally:
        await delete_statement(engine, sha256)


async def test_concurrent_uploads_of_one_file_make_one_statement(
    contract: TestContract, engine: AsyncEngine, bucket: WorkerBucket
) -> None:
    content = statement_csv([("2024-06-01", f"row {number}", "1.00") for number in range(3000)])
    sha256 = hashlib.sha256(content).hexdigest()
    try:
        async with app_with_settings(contract.settings()) as app:
            transport = ASGITransport(app=app, raise_app_exceptions=False)
            async with AsyncClient(transport=transport, base_url="http://testserver") as client:
                responses = await asyncio.gather(*(client.post("/api/statements", **upload(content)) for _ in range(3)))
        assert sorted(response.status_code for response in responses) == [200, 200, 201]
        assert len({response.json()["id"] for response in responses}) == 1
        async with AsyncSession(engine) as session:
            count = await session.scalar(select(func.count()).where(Statement.sha256 == sha256))
        assert count == 1
        assert bucket.keys() == [responses[0].json()["object_key"]]
    finally:
        await delete_statement(engine, sha256)
