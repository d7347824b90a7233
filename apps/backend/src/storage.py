"""Raw statement files in S3 (or any S3-compatible store).

boto3 is synchronous, so each call runs in a worker thread; its own timeouts are short and retries
off so that a dead endpoint fails fast instead of stalling a request or a health check.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from starlette.concurrency import run_in_threadpool

from src.config import Settings


class BucketMissingError(RuntimeError):
    """S3 answers, but the configured bucket is not there (the deploy or the lifecycle makes it)."""


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class StatementStorage:
    """The bucket S3_BUCKET, with every key under S3_KEY_PREFIX."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bucket = settings.s3_bucket
        self.key_prefix = settings.s3_key_prefix

    @property
    def connect_timeout_seconds(self) -> float:
        return self.settings.health_check_timeout_seconds

    @property
    def read_timeout_seconds(self) -> float:
        return max(self.settings.health_check_timeout_seconds, 10.0)

    @cached_property
    def client(self) -> Any:
        # Created on first use, in a worker thread (see `call`): building a boto3 client costs tens
        # of milliseconds of CPU on a quiet machine and seconds on a loaded one.
        access_key = self.settings.s3_access_key.get_secret_value() or None
        secret_key = self.settings.s3_secret_key.get_secret_value() or None
        return boto3.client(
            "s3",
            endpoint_url=self.settings.s3_endpoint,
            region_name=self.settings.s3_region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(
                connect_timeout=self.connect_timeout_seconds,
                read_timeout=self.read_timeout_seconds,
                retries={"max_attempts": 1, "mode": "standard"},
                s3={"addressing_style": "path"},
            ),
        )

    async def call(self, operation: str, **parameters: Any) -> Any:
        """Run one boto3 operation in a worker thread, the client included: the first call builds
        the client, and building it on the event loop would stall every other coroutine with it
        (the health endpoint's database and Redis checks ran out of their timeout that way)."""
        return await run_in_threadpool(lambda: getattr(self.client, operation)(**parameters))

    @property
    def statements_prefix(self) -> str:
        return f"{self.key_prefix}statements/"

    def statement_key(self, sha256: str) -> str:
        """The key of a file's bytes, derived from their hash (content-addressed).

        The same file always lands under the same key, so a retried or concurrent upload rewrites
        identical bytes instead of creating a second object, and a failed request never has to
        guess whether deleting "its" object would take one a committed row points at.
        """
        return f"{self.statements_prefix}{sha256}.csv"

    def list_statement_objects(self) -> Iterator[tuple[str, dt.datetime]]:
        """(key, last modified) of every statement object under this app's prefix (blocking)."""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.statements_prefix):
            for item in page.get("Contents", []):
                yield item["Key"], item["LastModified"]

    async def put(self, key: str, body: bytes, content_type: str = "text/csv") -> None:
        """Store `body` under `key`, making the bucket first if it has gone missing.

        A bucket can vanish under a running app (an S3 restarted without its data, someone's
        cleanup); without it every upload would fail until a person made it again.
        """
        await run_in_threadpool(self._put, key, body, content_type)

    def _put(self, key: str, body: bytes, content_type: str) -> None:
        def put() -> None:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

        try:
            put()
        except ClientError as error:
            if error_code(error) != "NoSuchBucket":
                raise
            self.ensure_bucket()
            put()

    def ensure_bucket(self) -> None:
        """Create the bucket unless it is there (blocking); another app creating it first is fine."""
        try:
            self.client.create_bucket(Bucket=self.bucket)
        except ClientError as error:
            if error_code(error) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    async def exists(self, key: str) -> bool:
        """Whether an object is stored under `key` (a 404 is an answer; other errors raise)."""
        try:
            await self.call("head_object", Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error_code(error) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    async def delete(self, key: str) -> None:
        await self.call("delete_object", Bucket=self.bucket, Key=key)

    async def check_bucket(self) -> str:
        """Raise unless the bucket answers; used by the health check and the full boot gate."""
        try:
            await self.call("head_bucket", Bucket=self.bucket)
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404:
                raise BucketMissingError(
                    f"bucket {self.bucket} does not exist at {self.settings.s3_endpoint}"
                ) from None
            raise
        return f"bucket {self.bucket} reachable"
