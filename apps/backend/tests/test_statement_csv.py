"""Statement CSV parsing: what is accepted, and that every rejection names its line."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from src.statement_csv import StatementFormatError, parse_amount, parse_statement_csv


def parse(text: str | bytes) -> list:
    content = text.encode() if isinstance(text, str) else text
    return parse_statement_csv(content, default_currency="USD")


def test_parses_lines_with_default_and_explicit_currency() -> None:
    lines = parse(
        "\ufeffDate,Description,Amount,Currency\r\n"
        "2024-03-01,Coffee,-3.50,eur\r\n"
        '2024-03-02,"Rent, March",-1200,\r\n'
        "\r\n"
        "2024-03-03,Salary,2500.00,USD\r\n"
    )
    assert [(line.line_number, line.currency) for line in lines] == [
        (2, "EUR"),
        (3, "USD"),
        (5, "USD"),
    ]
    assert lines[1].description == "Rent, March"
    assert lines[1].amount == Decimal("-1200.00")
    assert lines[0].date == dt.date(2024, 3, 1)


def test_columns_may_come_in_any_order_without_currency() -> None:
    (line,) = parse("amount,date,description\n10.1,2024-01-31,Refund\n")
    assert (line.amount, line.currency) == (Decimal("10.10"), "USD")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "line 1: the file is empty"),
        ("date,description\n", "line 1: missing column(s) amount"),
        ("date,description,amount,memo\n", "line 1: unknown column 'memo'"),
        ("date,date,description,amount\n", "line 1: column 'date' appears more than once"),
        ("date,description,amount\n", "line 1: the file has no statement lines"),
        ("date,description,amount\n2024-01-01,x\n", "line 2: expected 3 fields, found 2"),
        ("date,description,amount\n01/02/2024,x,1\n", "line 2: date '01/02/2024' is not an ISO"),
        ("date,description,amount\n20240102,x,1\n", "line 2: date '20240102' is not an ISO"),
        ("date,description,amount\n2024-02-30,x,1\n", "line 2: date '2024-02-30' does not exist"),
        ("date,description,amount\n2024-01-01,,1\n", "line 2: description is empty"),
        ("date,description,amount\n2024-01-01,a\x00b,1\n", "line 2: description contains a NUL"),
        (
            "date,description,amount\n2024-01-01," + "x" * 501 + ",1\n",
            "line 2: description is longer",
        ),
        (
            "date,description,amount\n2024-01-01,x,1\n2024-01-01,x,abc\n",
            "line 3: amount 'abc' is not a",
        ),
        ("date,description,amount\n2024-01-01,x,NaN\n", "line 2: amount 'NaN' is not a finite"),
        (
            "date,description,amount\n2024-01-01,x,1.005\n",
            "line 2: amount '1.005' has more than two",
        ),
        ("date,description,amount\n2024-01-01,x,1e16\n", "line 2: amount '1e16' is too large"),
        (
            "date,description,amount,currency\n2024-01-01,x,1,EURO\n",
            "line 2: currency 'EURO' is not",
        ),
        ('date,description,amount\n2024-01-01,"x"y,1\n', "line 2: malformed CSV"),
    ],
)
def test_rejections_name_the_line_and_the_problem(content: str, expected: str) -> None:
    with pytest.raises(StatementFormatError) as raised:
        parse(content)
    assert str(raised.value).startswith(expected)


def test_non_utf8_bytes_name_their_line() -> None:
    with pytest.raises(StatementFormatError, match=r"^line 3: the file is not UTF-8 text"):
        parse(b"date,description,amount\n2024-01-01,ok,1\n2024-01-02,caf\xe9,2\n")


def test_trailing_zeros_beyond_cents_are_exact_and_accepted() -> None:
    assert parse_amount("12.500") == Decimal("12.50")
    assert parse_amount("-0") == Decimal("0.00")


@given(
    amounts=st.lists(
        st.decimals(min_value=-(10**12), max_value=10**12, places=2, allow_nan=False),
        min_size=1,
        max_size=20,
    )
)
def test_amounts_round_trip_exactly(amounts: list[Decimal]) -> None:
    body = "".join(f"2024-05-01,item {index},{amount}\n" for index, amount in enumerate(amounts))
    parsed = parse("date,description,amount\n" + body)
    assert [line.amount for line in parsed] == amounts
    assert [line.line_number for line in parsed] == list(range(2, len(amounts) + 2))
