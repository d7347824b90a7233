"""Find, and with --delete remove, statement objects no committed row refers to.

`python -m src.orphans [--delete] [--min-age-minutes N]`

An upload stores its object before its rows and never deletes it on failure (a COMMIT whose reply
was lost may have succeeded; see src/routers/statements.py). An upload that really failed
therefore leaves an orphan: harmless bytes under a content-addressed key, re-used if the same file
is uploaded again. This sweep reclaims them. It only ever considers objects older than the grace
period (default 60 minutes; never less than the longest an upload can take, see
`object_locks.longest_upload`), and right before deleting one it takes the object's lock (which
an upload holds from before it stores the object until its row commits) and looks for a row again,
so an upload in flight is left alone.

Prints one line per orphan and a summary; exits 0, or 1 if PostgreSQL or S3 cannot be reached or
the grace is below that floor (one line saying so).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import sys
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from src.config import ConfigurationError, Settings, load_settings
from src.models import Statement
from src.object_locks import longest_upload, try_hold_for_delete
from src.resources import Resources, create_resources
from src.storage import StatementStorage

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


async def delete_if_still_orphaned(resources: Resources, key: str) -> bool:
    """Delete `key` unless an upload is storing it or a row names it by now.

    The lock is held, and the row looked for, in one transaction around the delete: an upload
    cannot store this object and commit its row in between (src/object_locks.py).
    """
    async with resources.session_factory() as session, session.begin():
        if not await try_hold_for_delete(session, key):
            return False
        if await session.scalar(select(Statement.id).where(Statement.object_key == key).limit(1)) is not None:
            return False
        await resources.storage.delete(key)
    return True


async def sweep(resources: Resources, min_age: dt.timedelta, delete: bool) -> list[str]:
    """The orphans found (and, with `delete`, removed), one report line each."""
    lines = []
    for key in await find_orphan_objects(resources, min_age):
        if not delete:
            lines.append(f"orphan {key}")
        elif await delete_if_still_orphaned(resources, key):
            lines.append(f"deleted {key}")
        else:
            lines.append(f"kept {key} (an upload is storing it)")
    return lines


async def run(settings: Settings, delete: bool, min_age: dt.timedelta) -> list[str]:
    resources = create_resources(settings)
    try:
        return await sweep(resources, min_age, delete)
    finally:
        await resources.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.orphans", description=__doc__.splitlines()[0])
    parser.add_argument("--delete", action="store_true", help="delete the orphans (default: only list them)")
    parser.add_argument("--min-age-minutes", type=float, default=DEFAULT_MIN_AGE_MINUTES, metavar="N")
    arguments = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigurationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    floor_minutes = math.ceil(longest_upload(StatementStorage(settings)).total_seconds() / 60)
    if not (math.isfinite(arguments.min_age_minutes) and arguments.min_age_minutes >= floor_minutes):
        print(
            f"error: --min-age-minutes {arguments.min_age_minutes:g} is refused: the grace must be at least "
            f"{floor_minutes} minutes, the longest an upload can take (a younger object may be one in flight)",
            file=sys.stderr,
        )
        return 1
    min_age = dt.timedelta(minutes=arguments.min_age_minutes)
    try:
        lines = asyncio.run(run(settings, arguments.delete, min_age))
    except (SQLAlchemyError, BotoCoreError, ClientError, OSError) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        print(f"error: orphan sweep could not reach its services: {first_line}", file=sys.stderr)
        return 1
    print("\n".join([*lines, f"{len(lines)} orphan(s){' handled' if arguments.delete else ''}"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
