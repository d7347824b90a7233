"""Request and response bodies. Money is `Decimal` in and a decimal string out, never a float."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from src.statement_csv import canonical_amount, parse_date

# PostgreSQL text cannot hold NUL, and a description of only spaces says nothing.
Description = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00]*[^\x00\s][^\x00]*$")]
# Normalised on the way in (`1E+2` → 100.00, `-0` → 0.00), so a write echoes what reads return.
Amount = Annotated[
    Decimal, Field(max_digits=18, decimal_places=2, allow_inf_nan=False), AfterValidator(canonical_amount)
]


def _iso_date_only(value: object) -> object:
    """Dates are ISO strings: pydantic alone would read the number 0 as 1970-01-01."""
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        raise ValueError("dates are ISO strings (YYYY-MM-DD)")
    return parse_date(value)


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date_only)]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])]


class ORMModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class CheckReport(BaseModel):
    status: Literal["ok", "error"]
    message: str
    duration_ms: float


HealthStatus = Literal["healthy", "degraded", "unhealthy"]


class HealthReport(BaseModel):
    status: HealthStatus = Field(
        description="healthy: all ok; degraded: serving, but a dependency in `failing` is not; "
        "unhealthy: cannot serve (503)."
    )
    timestamp: dt.datetime
    git_sha: str
    failing: list[str] = Field(description="Names of the dependencies whose check failed.")
    checks: dict[str, CheckReport]


class PingReport(BaseModel):
    state: Literal["ping", "pong"]
    toggle_count: int
    updated_at: dt.datetime | None


class StatementLineOut(ORMModel):
    id: int
    line_number: int
    date: dt.date
    description: str
    amount: Decimal
    currency: str


class StatementSummary(ORMModel):
    id: int
    filename: str
    object_key: str
    size_bytes: int
    sha256: str
    line_count: int
    uploaded_at: dt.datetime


class JournalEntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: IsoDate
    amount: Amount
    description: Description
    currency: CurrencyCode | None = Field(default=None, description="ISO 4217 code; BASE_CURRENCY when omitted.")


class JournalEntryOut(ORMModel):
    id: int
    date: dt.date
    amount: Decimal
    description: str
    currency: str
    created_at: dt.datetime


class MatchOut(BaseModel):
    statement_line_id: int
    journal_entry_id: int
    day_difference: int


class ReconciliationRunReport(BaseModel):
    matched: int
    matches: list[MatchOut]


class ReconciliationStats(BaseModel):
    matched: int
    unmatched_statement_lines: int
    unmatched_journal_entries: int
    match_rate: float = Field(description="Matched statement lines / all statement lines, 0..1.")
