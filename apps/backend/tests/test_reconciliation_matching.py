"""The matching rule on its own: one-to-one, within the window, and independent of input order."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from src.reconciliation import Candidate, ProposedMatch, choose_matches

DAY = dt.date(2024, 3, 10)


def candidate(id_: int, day_offset: int, amount: str = "10.00", currency: str = "USD") -> Candidate:
    return Candidate(id_, DAY + dt.timedelta(days=day_offset), Decimal(amount), currency)


def test_equal_amount_within_three_days_matches() -> None:
    assert choose_matches([candidate(1, 0)], [candidate(7, 3)]) == [ProposedMatch(1, 7, 3)]


def test_four_days_apart_other_amount_or_currency_do_not_match() -> None:
    assert choose_matches([candidate(1, 0)], [candidate(7, -4)]) == []
    assert choose_matches([candidate(1, 0)], [candidate(7, 0, amount="10.01")]) == []
    assert choose_matches([candidate(1, 0)], [candidate(7, 0, currency="EUR")]) == []


def test_closest_date_wins_then_lowest_id() -> None:
    lines = [candidate(1, 0), candidate(2, 0)]
    entries = [candidate(10, 2), candidate(11, 1), candidate(12, -1)]
    # Entries 11 and 12 are both one day away: line 1 takes the lower id, line 2 the other.
    assert choose_matches(lines, entries) == [ProposedMatch(1, 11, 1), ProposedMatch(2, 12, 1)]


def test_an_entry_is_never_matched_twice() -> None:
    lines = [candidate(1, 0), candidate(2, 1)]
    assert choose_matches(lines, [candidate(5, 1)]) == [ProposedMatch(2, 5, 0)]


def test_dates_at_the_end_of_the_calendar_do_not_overflow() -> None:
    last = Candidate(1, dt.date.max, Decimal("1.00"), "USD")
    first = Candidate(2, dt.date.min, Decimal("1.00"), "USD")
    assert choose_matches([last], [first]) == []


candidates = st.lists(
    st.tuples(st.integers(-5, 5), st.sampled_from(["1.00", "2.00", "3.00"])),
    max_size=12,
)


@given(raw_lines=candidates, raw_entries=candidates, seed=st.randoms())
def test_matching_is_one_to_one_and_ignores_input_order(raw_lines, raw_entries, seed) -> None:
    lines = [candidate(index + 1, day, amount) for index, (day, amount) in enumerate(raw_lines)]
    entries = [candidate(index + 100, day, amount) for index, (day, amount) in enumerate(raw_entries)]
    matches = choose_matches(lines, entries)

    assert len({match.statement_line_id for match in matches}) == len(matches)
    assert len({match.journal_entry_id for match in matches}) == len(matches)
    by_id = {item.id: item for item in lines + entries}
    for match in matches:
        line, entry = by_id[match.statement_line_id], by_id[match.journal_entry_id]
        assert line.amount == entry.amount
        assert abs((line.date - entry.date).days) == match.day_difference <= 3

    # Greedy but maximal: no unmatched line still has an unmatched partner.
    free_lines = [line for line in lines if line.id not in {m.statement_line_id for m in matches}]
    free_entries = [e for e in entries if e.id not in {m.journal_entry_id for m in matches}]
    assert choose_matches(free_lines, free_entries) == []

    shuffled_lines, shuffled_entries = lines[:], entries[:]
    seed.shuffle(shuffled_lines)
    seed.shuffle(shuffled_entries)
    assert choose_matches(shuffled_lines, shuffled_entries) == matches
