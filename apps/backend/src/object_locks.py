"""Who may touch a statement object: an upload storing it, or the orphan sweep deleting it.

An upload stores its object before its row exists (src/routers/statements.py), so between the
two the object looks exactly like an orphan. The sweep (src/orphans.py) used to check "no row"
and then delete, and an upload that stored the object and committed its row in between answered
201 over a deleted file. Now both take a PostgreSQL advisory lock named after the object key,
held until their transaction ends:

- an upload takes it shared, before it stores the object, and keeps it until its row commits or
  its transaction ends; uploads of the same file do not wait for each other;
- the sweep tries to take it exclusively, without waiting: when an upload holds it the object
  is kept this time; when the sweep holds it, a new upload of that file waits until the delete
  is done and then stores the object again.

The upload's transaction also gets server-side time limits, so the lock (and an object without
its row) cannot outlive a stuck upload: the server ends a statement, or an idle transaction,
that takes longer. `longest_upload` turns those limits into the age the sweep's grace may not go
below.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from src.storage import StatementStorage

# The first key of every statement-object lock, so they share no number with any other lock.
LOCK_CLASS = 0x53544D54  # "STMT"
# Limits on the upload's transaction, enforced by PostgreSQL: one statement (the INSERT, the COPY
# of at most MAX_UPLOAD_BYTES, the COMMIT), or one pause of the app between two of them.
UPLOAD_STATEMENT_TIMEOUT_SECONDS = 120
UPLOAD_IDLE_TIMEOUT_SECONDS = 120
# After the object is stored: INSERT, COPY and COMMIT, each after a pause of the app.
UPLOAD_STEPS_AFTER_STORING = 3


def lock_id(key: str) -> int:
    """The lock's second key: a signed 32-bit number from the object key (a collision only keeps an orphan)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big", signed=True)


async def hold_for_upload(session: AsyncSession, key: str) -> None:
    """Take the shared lock on `key` for the rest of the session's transaction, with its time limits."""
    await session.execute(
        select(
            func.set_config("statement_timeout", f"{UPLOAD_STATEMENT_TIMEOUT_SECONDS}s", True),
            func.set_config("idle_in_transaction_session_timeout", f"{UPLOAD_IDLE_TIMEOUT_SECONDS}s", True),
            func.pg_advisory_xact_lock_shared(LOCK_CLASS, lock_id(key)),
        )
    )


async def try_hold_for_delete(session: AsyncSession, key: str) -> bool:
    """Take the exclusive lock on `key` for the session's transaction; False when an upload holds it."""
    return bool(await session.scalar(select(func.pg_try_advisory_xact_lock(LOCK_CLASS, lock_id(key)))))


def longest_upload(storage: StatementStorage) -> dt.timedelta:
    """The longest an upload's object can exist without its committed row, under the limits above.

    Storing the object is bounded by the S3 client's timeouts (one attempt: connect + read); then
    each step after it by PostgreSQL's statement timeout plus the idle timeout before it. After
    that the transaction has committed its row or is gone.
    """
    store = storage.connect_timeout_seconds + storage.read_timeout_seconds
    steps = UPLOAD_STEPS_AFTER_STORING * (UPLOAD_STATEMENT_TIMEOUT_SECONDS + UPLOAD_IDLE_TIMEOUT_SECONDS)
    return dt.timedelta(seconds=store + steps)
