"""The run's S3 bucket: created before the tests, emptied and removed after.

The shell version never created the per-namespace bucket, so uploads failed only in the test
that first touched S3; creating it up front makes a broken S3 fail the run at the start.
"""

from __future__ import annotations

from typing import Any

from noxlib.core.errors import ServiceError
from noxlib.services import ServiceUrls


def s3_client(urls: ServiceUrls) -> Any:  # boto3 clients are generated at run time: no static type
    """The one S3 client noxlib builds: short timeouts, two attempts, the services' credentials."""
    # boto3 takes most of a second to import: only the sessions that touch S3 pay for it.
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=urls.s3_endpoint,
        aws_access_key_id=urls.s3_access_key,
        aws_secret_access_key=urls.s3_secret_key,
        region_name=urls.s3_region,
        config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2}),
    )


def create_bucket(urls: ServiceUrls, bucket: str) -> None:
    """Create `bucket`, first removing a leftover of a crashed run with the same name."""
    from botocore.exceptions import BotoCoreError, ClientError

    remove_bucket(urls, bucket)
    try:
        s3_client(urls).create_bucket(Bucket=bucket)
    except (BotoCoreError, ClientError) as error:
        raise ServiceError(f"cannot create bucket {bucket}: {error}") from error


def remove_bucket(urls: ServiceUrls, bucket: str) -> bool:
    """Empty and delete `bucket`; False when it did not exist."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = s3_client(urls)
    try:
        paginator = client.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=bucket):
            objects = [
                {"Key": item["Key"], "VersionId": item["VersionId"]}
                for item in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            if objects:
                client.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
        client.delete_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchBucket", "404"):
            return False
        raise ServiceError(f"cannot remove bucket {bucket}: {error}") from error
    except BotoCoreError as error:
        raise ServiceError(f"cannot remove bucket {bucket}: {error}") from error
    return True


def bucket_exists(urls: ServiceUrls, bucket: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3_client(urls).head_bucket(Bucket=bucket)
    except ClientError:
        return False
    return True


def ensure_bucket(urls: ServiceUrls, bucket: str) -> None:
    """Create `bucket` when missing and keep what is in it (the dev app's uploads)."""
    from botocore.exceptions import BotoCoreError, ClientError

    if bucket_exists(urls, bucket):
        return
    try:
        s3_client(urls).create_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise ServiceError(f"cannot create bucket {bucket}: {error}") from error
    except BotoCoreError as error:
        raise ServiceError(f"cannot create bucket {bucket}: {error}") from error
