"""Statements are unique by content: one row per sha256, so a retried upload finds its statement.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 23:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Duplicates from before this revision carry their own lines and matches; which one to keep is
    # the owner's call, so refuse with the ids rather than delete anything.
    duplicates = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT sha256, string_agg(id::text, ', ' ORDER BY id) FROM statements "
                "GROUP BY sha256 HAVING count(*) > 1 ORDER BY sha256"
            )
        )
        .all()
    )
    if duplicates:
        listed = "; ".join(f"ids {ids}" for _, ids in duplicates)
        raise RuntimeError(
            f"statements uploaded more than once ({listed}): delete all but one of each "
            "(DELETE FROM statements WHERE id IN (...)), then run the migration again"
        )
    op.create_unique_constraint(op.f("uq_statements_sha256"), "statements", ["sha256"])


def downgrade() -> None:
    op.drop_constraint(op.f("uq_statements_sha256"), "statements", type_="unique")
