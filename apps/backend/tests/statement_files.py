"""Statement files for tests, written the way a bank export looks."""

from __future__ import annotations

from collections.abc import Iterable

HEADER = "date,description,amount,currency"


def statement_csv(rows: Iterable[tuple[str, str, str] | tuple[str, str, str, str]]) -> bytes:
    lines = [HEADER] + [",".join(row) if len(row) == 4 else ",".join((*row, "")) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def upload(content: bytes, filename: str = "march.csv") -> dict:
    return {"files": {"file": (filename, content, "text/csv")}}
