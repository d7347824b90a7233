"""Initial schema: statements and their lines, the journal, matches and the ping row.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 05:15:37.051549
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "journal_entries",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_entries")),
    )
    op.create_table(
        "ping_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("state", sa.String(length=4), nullable=False),
        sa.Column("toggle_count", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("state IN ('ping', 'pong')", name=op.f("ck_ping_state_state_values")),
        sa.CheckConstraint("id = 1", name=op.f("ck_ping_state_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ping_state")),
    )
    op.create_table(
        "statements",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("object_key", sa.String(length=1024), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column(
            "uploaded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_statements")),
        sa.UniqueConstraint("object_key", name=op.f("uq_statements_object_key")),
    )
    op.create_table(
        "statement_lines",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("statement_id", sa.BigInteger(), nullable=False),
        sa.Column("line_number", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.ForeignKeyConstraint(
            ["statement_id"],
            ["statements.id"],
            name=op.f("fk_statement_lines_statement_id_statements"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_statement_lines")),
    )
    op.create_index(op.f("ix_statement_lines_statement_id"), "statement_lines", ["statement_id"], unique=False)
    op.create_table(
        "reconciliation_matches",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("statement_line_id", sa.BigInteger(), nullable=False),
        sa.Column("journal_entry_id", sa.BigInteger(), nullable=False),
        sa.Column("day_difference", sa.Integer(), nullable=False),
        sa.Column(
            "matched_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["journal_entry_id"],
            ["journal_entries.id"],
            name=op.f("fk_reconciliation_matches_journal_entry_id_journal_entries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["statement_line_id"],
            ["statement_lines.id"],
            name=op.f("fk_reconciliation_matches_statement_line_id_statement_lines"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_matches")),
        sa.UniqueConstraint("journal_entry_id", name=op.f("uq_reconciliation_matches_journal_entry_id")),
        sa.UniqueConstraint("statement_line_id", name=op.f("uq_reconciliation_matches_statement_line_id")),
    )


def downgrade() -> None:
    op.drop_table("reconciliation_matches")
    op.drop_index(op.f("ix_statement_lines_statement_id"), table_name="statement_lines")
    op.drop_table("statement_lines")
    op.drop_table("statements")
    op.drop_table("ping_state")
    op.drop_table("journal_entries")
