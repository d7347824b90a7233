"""Raw statement files in S3 (or any S3-compatible store).

boto3 is synchronous, so each call runs in a worker thread; its own timeouts are short and retries
off so that a dead endpoint fails fast instead of stalling a request or a health check.
"""

from __future__ import annotations

import uuid
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

    def new_statement_key(self) -> str:
        """A fresh key per upload: names from users may collide or contain anything."""
        return f"{self.key_prefix}statements/{uuid.uuid4().hex}.csv"

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
