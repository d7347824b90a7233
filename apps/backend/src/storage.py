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


class StatementStorage:
    """The bucket S3_BUCKET, with every key under S3_KEY_PREFIX."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bucket = settings.s3_bucket
        self.key_prefix = settings.s3_key_prefix

    @cached_property
    def client(self) -> Any:
        # Created on first use: building a boto3 client costs tens of milliseconds.
        timeout = self.settings.health_check_timeout_seconds
        access_key = self.settings.s3_access_key.get_secret_value() or None
        secret_key = self.settings.s3_secret_key.get_secret_value() or None
        return boto3.client(
            "s3",
            endpoint_url=self.settings.s3_endpoint,
            region_name=self.settings.s3_region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(
                connect_timeout=timeout,
                read_timeout=max(timeout, 10.0),
                retries={"max_attempts": 1, "mode": "standard"},
                s3={"addressing_style": "path"},
            ),
        )

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
        await run_in_threadpool(
            self.client.put_object,
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
        )

    async def delete(self, key: str) -> None:
        await run_in_threadpool(self.client.delete_object, Bucket=self.bucket, Key=key)

    async def check_bucket(self) -> str:
        """Raise unless the bucket answers; used by the health check and the full boot gate."""
        try:
            await run_in_threadpool(self.client.head_bucket, Bucket=self.bucket)
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404:
                raise BucketMissingError(
                    f"bucket {self.bucket} does not exist at {self.settings.s3_endpoint}"
                ) from None
            raise
        return f"bucket {self.bucket} reachable"
