"""Find, and with --delete remove, statement objects no committed row refers to.

`python -m src.orphans [--delete] [--min-age-minutes N]`

An upload stores its object before its rows and never deletes it on failure (a COMMIT whose reply
was lost may have succeeded; see src/routers/statements.py). An upload that really failed
therefore leaves an orphan: harmless bytes under a content-addressed key, re-used if the same file
is uploaded again. This sweep reclaims them. It only ever considers objects older than the grace
period (default 60 minutes, far longer than any upload), and re-reads an object's age right before
deleting it, so an upload in flight, which rewrites the object first, is left alone.

Prints one line per orphan and a summary; exits 0, or 1 if PostgreSQL or S3 cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from src.config import ConfigurationError, load_settings
from src.models import Statement
from src.resources import Resources, create_resources

DEFAULT_MIN_AGE_MINUTES = 60


async def find_orphan_objects(resources: Resources, min_age: dt.timedelta) -> list[str]:
    """Keys under the statements prefix, older than `min_age`, that no statement row names."""
    storage = resources.storage
    cutoff = dt.datetime.now(dt.UTC) - min_age
    old_keys = [
        key
        for key, modified in await run_in_threadpool(lambda: list(storage.list_statement_objects()))
        if modified <= cutoff
    ]
    if not old_keys:
        return []
    async with resources.session_factory() as session:
        referenced = set(await session.scalars(select(Statement.object_key).where(Statement.object_key.in_(old_keys))))
    return [key for key in old_keys if key not in referenced]


async def delete_if_still_old(resources: Resources, key: str, min_age: dt.timedelta) -> bool:
    """Delete `key` unless it was written within `min_age` (an upload re-used it meanwhile)."""
    storage = resources.storage
    head = await run_in_threadpool(storage.client.head_object, Bucket=storage.bucket, Key=key)
    if head["LastModified"] > dt.datetime.now(dt.UTC) - min_age:
        return False
    await storage.delete(key)
    return True


async def sweep(resources: Resources, min_age: dt.timedelta, delete: bool) -> list[str]:
    """The orphans found (and, with `delete`, removed), one report line each."""
    lines = []
    for key in await find_orphan_objects(resources, min_age):
        if not delete:
            lines.append(f"orphan {key}")
        elif await delete_if_still_old(resources, key, min_age):
            lines.append(f"deleted {key}")
        else:
            lines.append(f"kept {key} (written again just now)")
    return lines


async def run(delete: bool, min_age: dt.timedelta) -> list[str]:
    resources = create_resources(load_settings())
    try:
        return await sweep(resources, min_age, delete)
    finally:
        await resources.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.orphans", description=__doc__.splitlines()[0])
    parser.add_argument("--delete", action="store_true", help="delete the orphans (default: only list them)")
    parser.add_argument("--min-age-minutes", type=float, default=DEFAULT_MIN_AGE_MINUTES, metavar="N")
    arguments = parser.parse_args(argv)
    min_age = dt.timedelta(minutes=arguments.min_age_minutes)
    try:
        lines = asyncio.run(run(arguments.delete, min_age))
    except ConfigurationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (SQLAlchemyError, BotoCoreError, ClientError, OSError) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        print(f"error: orphan sweep could not reach its services: {first_line}", file=sys.stderr)
        return 1
    print("\n".join([*lines, f"{len(lines)} orphan(s){' handled' if arguments.delete else ''}"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
