"""Parsing of bank-statement CSV files.

The whole file is validated before anything is stored, so a bad file is rejected as a unit: the
first problem is reported with its line number, and no object or row is written.

Format: a header row naming `date`, `description`, `amount` and optionally `currency` (any order,
any case), then one row per transaction. Dates are ISO (`2024-03-01`); amounts are decimal numbers
with at most two decimal places (`-12.50`); currency is an ISO 4217 code, defaulting to
BASE_CURRENCY.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

REQUIRED_COLUMNS = ("date", "description", "amount")
OPTIONAL_COLUMNS = ("currency",)
MAX_DESCRIPTION_LENGTH = 500
# NUMERIC(18, 2) holds 16 digits before the decimal point.
MAX_ABSOLUTE_AMOUNT = Decimal("1e16")
CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")
CENT = Decimal("0.01")
ISO_DATE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class StatementLineData:
    line_number: int
    date: dt.date
    description: str
    amount: Decimal
    currency: str


class StatementFormatError(ValueError):
    """A problem with an uploaded file, tied to the line where it was found."""

    def __init__(self, line_number: int, problem: str) -> None:
        super().__init__(f"line {line_number}: {problem}")
        self.line_number = line_number
        self.problem = problem


def canonical_amount(amount: Decimal) -> Decimal:
    """Two decimal places and no negative zero: the form NUMERIC(18, 2) reads back as."""
    # Adding zero turns -0.00 into 0.00 (IEEE negative zero survives quantize, not addition).
    return amount.quantize(CENT) + 0


def parse_amount(text: str) -> Decimal:
    """A money amount, exact; refuses what NUMERIC(18, 2) would round or reject."""
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"amount {text!r} is not a number") from None
    if not amount.is_finite():
        raise ValueError(f"amount {text!r} is not a finite number")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2 and amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"amount {text!r} has more than two decimal places")
    if abs(amount) >= MAX_ABSOLUTE_AMOUNT:
        raise ValueError(f"amount {text!r} is too large")
    return canonical_amount(amount)


def parse_date(text: str) -> dt.date:
    # fromisoformat alone also takes `20240301` and week dates; demand the form people read.
    if ISO_DATE_PATTERN.fullmatch(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"date {text!r} does not exist") from None
    raise ValueError(f"date {text!r} is not an ISO date (YYYY-MM-DD)")


def parse_currency(text: str, default_currency: str) -> str:
    if not text:
        return default_currency
    code = text.upper()
    if not CURRENCY_PATTERN.fullmatch(code):
        raise ValueError(f"currency {text!r} is not a three-letter ISO 4217 code")
    return code


def parse_description(text: str) -> str:
    if not text:
        raise ValueError("description is empty")
    if "\x00" in text:
        raise ValueError("description contains a NUL character")
    if len(text) > MAX_DESCRIPTION_LENGTH:
        raise ValueError(f"description is longer than {MAX_DESCRIPTION_LENGTH} characters")
    return text


def decode(content: bytes) -> str:
    try:
        # utf-8-sig: spreadsheet programs often prepend a byte-order mark.
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line_number = content[: error.start].count(b"\n") + 1
        raise StatementFormatError(line_number, "the file is not UTF-8 text") from None


def read_header(row: list[str]) -> dict[str, int]:
    """Column name → index; rejects missing, unknown and repeated columns."""
    names = [name.strip().lower() for name in row]
    expected = ", ".join(REQUIRED_COLUMNS) + " and optionally " + ", ".join(OPTIONAL_COLUMNS)
    for name in names:
        if name not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS:
            raise StatementFormatError(1, f"unknown column {name!r}; expected {expected}")
        if names.count(name) > 1:
            raise StatementFormatError(1, f"column {name!r} appears more than once")
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise StatementFormatError(1, f"missing column(s) {', '.join(missing)}; expected {expected}")
    return {name: index for index, name in enumerate(names)}


def parse_statement_csv(content: bytes, default_currency: str) -> list[StatementLineData]:
    """All lines of a statement file, or `StatementFormatError` for the first problem."""
    text = decode(content)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise StatementFormatError(1, "the file is empty; expected a header row")
        columns = read_header(header)
        lines = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            lines.append(_parse_row(row, columns, reader.line_num, default_currency))
    except csv.Error as error:
        raise StatementFormatError(reader.line_num, f"malformed CSV: {error}") from None
    if not lines:
        raise StatementFormatError(reader.line_num or 1, "the file has no statement lines")
    return lines


def _parse_row(row: list[str], columns: dict[str, int], line_number: int, default_currency: str) -> StatementLineData:
    if len(row) != len(columns):
        raise StatementFormatError(line_number, f"expected {len(columns)} fields, found {len(row)}")

    def cell(name: str) -> str:
        return row[columns[name]].strip() if name in columns else ""

    try:
        return StatementLineData(
            line_number=line_number,
            date=parse_date(cell("date")),
            description=parse_description(cell("description")),
            amount=parse_amount(cell("amount")),
            currency=parse_currency(cell("currency"), default_currency),
        )
    except ValueError as error:
        raise StatementFormatError(line_number, str(error)) from None
