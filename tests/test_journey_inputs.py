"""Which journeys session a one-line change re-runs: each reads its part of the app, no more.

The journeys are three ci sessions (noxfile.py); `nox -s ci` re-runs one only when one of its
declared inputs changed, and `nox -s audit_inputs` checks that each reads nothing undeclared.
These check the other side: an edit of the frontend, of a backend test or of the perf tools
does not re-run the journeys that never read it.
"""

from __future__ import annotations

import pytest

from noxlib.ci import cache
from tests.test_ci import noxfile_declarations

JOURNEY_SESSIONS = {"journeys", "journeys_backend", "journeys_selection"}


@pytest.fixture(scope="module")
def readers():
    """`readers(path)`: the journeys sessions whose declared inputs hold `path`."""
    declared = noxfile_declarations()
    before = dict(cache.DECLARED)
    for name in JOURNEY_SESSIONS:
        fields = {key: tuple(value) if isinstance(value, list) else value for key, value in declared[name].items()}
        cache.DECLARED[name] = cache.Declaration(**fields)
    try:
        yield lambda path: {name for name in JOURNEY_SESSIONS if path in cache.input_files(name)}
    finally:
        cache.DECLARED.clear()
        cache.DECLARED.update(before)


@pytest.mark.parametrize(
    ("touched", "rerun"),
    [
        ("apps/backend/src/routers/ping.py", JOURNEY_SESSIONS),
        ("apps/backend/tests/test_api_ping.py", {"journeys_selection"}),
        ("apps/frontend/components/status-messages.tsx", {"journeys"}),
        ("apps/frontend/app/page.tsx", {"journeys"}),
        ("tools/perf/budgets.toml", {"journeys_backend"}),
    ],
)
def test_a_one_line_change_re_runs_the_journeys_that_read_it_and_no_other(readers, touched, rerun):
    assert readers(touched) == rerun
