"""Tables. The schema itself is created only by alembic migrations; these classes mirror it.

Money is `Numeric(18, 2)` mapped to `Decimal`: floats cannot represent cents exactly, and a
reconciliation that compares amounts must compare exact values.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

Money = Numeric(18, 2)

# Explicit constraint names keep alembic migrations and the database in step across environments.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class PingState(Base):
    """The single row behind /api/ping; absent until the first toggle."""

    __tablename__ = "ping_state"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint("state IN ('ping', 'pong')", name="state_values"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    state: Mapped[str] = mapped_column(String(4))
    toggle_count: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class Statement(Base):
    """One uploaded bank-statement file; the raw bytes live in S3 under `object_key`."""

    __tablename__ = "statements"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    filename: Mapped[str] = mapped_column(String(255))
    object_key: Mapped[str] = mapped_column(String(1024), unique=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    # Unique: the same file uploaded again is the same statement (uploads are idempotent), and
    # its object key is derived from this hash, so no two rows can claim one object.
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    line_count: Mapped[int] = mapped_column(Integer)
    uploaded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    lines: Mapped[list[StatementLine]] = relationship(back_populates="statement", order_by="StatementLine.line_number")


class StatementLine(Base):
    __tablename__ = "statement_lines"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    statement_id: Mapped[int] = mapped_column(ForeignKey("statements.id", ondelete="CASCADE"), index=True)
    line_number: Mapped[int] = mapped_column(Integer)
    date: Mapped[dt.date] = mapped_column(Date)
    description: Mapped[str] = mapped_column(Text)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))

    statement: Mapped[Statement] = relationship(back_populates="lines")


class JournalEntry(Base):
    """A ledger entry the bookkeeper recorded; reconciliation pairs it with a statement line."""

    __tablename__ = "journal_entries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    date: Mapped[dt.date] = mapped_column(Date)
    description: Mapped[str] = mapped_column(Text)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ReconciliationMatch(Base):
    """A statement line paired with a journal entry.

    Both foreign keys are unique, so the database itself refuses to match either side twice,
    even if two reconciliation runs raced past the application's lock.
    """

    __tablename__ = "reconciliation_matches"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    statement_line_id: Mapped[int] = mapped_column(ForeignKey("statement_lines.id", ondelete="CASCADE"), unique=True)
    journal_entry_id: Mapped[int] = mapped_column(ForeignKey("journal_entries.id", ondelete="CASCADE"), unique=True)
    day_difference: Mapped[int] = mapped_column(Integer)
    matched_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
