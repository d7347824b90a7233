"""`nox -s bench -- prepush` (noxlib/sessions/bench_prepush.py): ci's summary, the one-line changes, the rows.

The real group runs `uvx nox -s ci` five times per checkout (the first cold, minutes); here
the command is swapped for one that answers at once, so what is checked is the bookkeeping:
which run is which row, that each change is in the tree while ci runs and kept after it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from noxlib.ci import runner as ci
from noxlib.core.errors import UserError
from noxlib.sessions import bench, bench_prepush
from noxlib.sessions.bench_figures import Figure
from noxlib.sessions.bench_prepush import CiRun, OneLineChange

GIT_IDENTITY = ["-c", "user.name=test", "-c", "user.email=test@localhost"]


def summary_of(*outcomes: tuple[str, str, float]) -> str:
    """ci's own summary table, so the parser is checked against what ci prints today."""
    return ci.summary([ci.Outcome(*outcome) for outcome in outcomes], ["unchanged sessions were skipped"])


def test_ci_results_reads_every_row_of_the_summary_in_order():
    output = "\n".join([
        "nox > Running session ci",
        "━━━ nox -s lint: passed (3.0s, log .nox/artefacts/ci/lint.log)",
        summary_of(
            ("lint", "passed", 3.0),
            ("test-3.12(shard='1/2')", "FAILED", 120.4),
            ("docs", "cached", 0.0),
            ("compose_test", "skipped", 0.5),
            ("frontend_build", "not run", 0.0),
        ),
        "nox > Session ci was successful in 130 seconds.",
    ])  # fmt: skip
    assert bench_prepush.ci_results(output) == {
        "lint": "passed",
        "test-3.12(shard='1/2')": "FAILED",
        "docs": "cached",
        "compose_test": "skipped",
        "frontend_build": "not run",
    }


def test_ci_results_takes_the_last_table_and_none_without_one():
    # With `-j 1` a child's output is echoed: a table inside it is not ci's own.
    earlier = summary_of(("inner", "passed", 1.0))
    assert bench_prepush.ci_results(earlier + "\nmore output\n" + summary_of(("lint", "cached", 0.0))) == {
        "lint": "cached"
    }
    assert bench_prepush.ci_results("nox > Session ci failed.\n") == {}


def test_run_ci_returns_a_red_run_with_its_table(tmp_path: Path):
    table = summary_of(("lint", "passed", 1.0), ("test", "FAILED", 2.0), ("docs", "cached", 0.0))
    script = f"import sys; print({table!r}); sys.exit(1)"
    run = bench_prepush.run_ci([sys.executable, "-c", script], {}, tmp_path)
    assert not run.passed
    assert bench_prepush.re_ran(run.results) == "lint, test (FAILED)"
    assert run.seconds > 0


def test_run_ci_without_a_table_says_what_it_printed(tmp_path: Path):
    with pytest.raises(UserError, match=r"(?s)no summary table.*it broke"):
        bench_prepush.run_ci([sys.executable, "-c", "print('it broke')"], {}, tmp_path)


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *GIT_IDENTITY, *args], cwd=root, check=True, capture_output=True, text=True).stdout


def make_repo(root: Path) -> Path:
    """A repository holding one file for every change the group makes (first of each change's paths)."""
    for change in bench_prepush.PREPUSH_CHANGES:
        path = root / change.paths[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("first line\nsecond line\n")
    git(root, "init", "--quiet")
    git(root, "add", ".")
    git(root, "commit", "--quiet", "-m", "start")
    return root


@pytest.mark.parametrize("change", bench_prepush.PREPUSH_CHANGES, ids=lambda change: change.kind)
def test_a_change_is_one_comment_line_until_committed(tmp_path: Path, change: OneLineChange):
    root = make_repo(tmp_path)
    path = change.apply(root)
    assert git(root, "diff", "--numstat").split()[:2] == ["1", "0"]
    first = path.read_text().splitlines()[0]
    assert f"one-line {change.kind} change" in first
    assert first.startswith({".py": "# ", ".tsx": "// ", ".md": "<!-- "}[path.suffix])
    change.commit(root)
    assert git(root, "status", "--porcelain") == ""
    assert git(root, "log", "--format=%s", "-1").strip() == f"bench: a one-line {change.kind} change"


def test_a_change_edits_the_first_path_the_checkout_has(tmp_path: Path):
    (tmp_path / "second.md").write_text("text\n")
    change = OneLineChange("docs", ("first.md", "second.md"))
    assert change.apply(tmp_path) == tmp_path / "second.md"
    with pytest.raises(UserError, match="none of them"):
        OneLineChange("docs", ("gone.md",)).apply(tmp_path)


class FakeCi:
    """Stands in for `uvx nox -s ci`: `edited` runs when the tree has an uncommitted change, else all cached."""

    def __init__(self, cold_passes: bool = True) -> None:
        self.cold_passes = cold_passes
        self.calls: list[Path] = []

    def __call__(self, root: Path) -> CiRun:
        self.calls.append(root)
        if self.calls.count(root) == 1:
            cold = "passed" if self.cold_passes else "FAILED"
            return CiRun(300.0, {"lint": "passed", "test": cold}, self.cold_passes)
        edited = git(root, "status", "--porcelain") != ""
        results = {"lint": "cached", "test": "passed" if edited else "cached"}
        return CiRun(40.0 if edited else 5.0, results, True)


def test_prepush_rows_interleave_the_checkouts_and_keep_each_change(tmp_path: Path):
    clones = {"before": make_repo(tmp_path / "before"), "after": make_repo(tmp_path / "after")}
    fake = FakeCi()
    tested: list[Path] = []

    def test(root: Path) -> float:
        tested.append(root)
        assert "one-line backend src change" in git(root, "diff")  # the same state ci just saw
        return 32.0

    lines: list[str] = []
    figures = bench_prepush.prepush_rows(clones, fake, test, lines.append)

    kinds = [change.kind for change in bench_prepush.PREPUSH_CHANGES]
    rows = ["cold fresh clone", "no-op"] + [f"one-line change: {kind}" for kind in kinds]
    assert fake.calls == [clones["before"], clones["after"]] * len(rows)
    assert tested == [clones["before"], clones["after"]]
    names = [figure.name for figure in figures]
    assert names[:4] == [
        "pre-push ci, cold fresh clone [before]",
        "pre-push ci, cold fresh clone",
        "pre-push ci, no-op [before]",
        "pre-push ci, no-op",
    ]
    assert f"{bench_prepush.PREPUSH_TEST} [before]" in names
    assert all(figure.group == "prepush" and len(figure.runs) == 1 for figure in figures)
    changed = next(figure for figure in figures if figure.name == "pre-push ci, one-line change: frontend")
    assert changed.sessions == {"lint": "cached", "test": "passed"}
    for root in clones.values():
        assert git(root, "status", "--porcelain") == ""
        assert len(git(root, "log", "--format=%s").splitlines()) == 1 + len(kinds)
    assert any("re-ran: test" in line for line in lines)

    table, ratios = bench.report(figures)
    assert ratios[bench_prepush.PREPUSH_GOAL] == pytest.approx(1.25)  # 40 s of ci, 32 s of test
    assert ratios["before / after: pre-push ci, no-op"] == 1.0
    assert "single samples" in table
    assert "    after re-ran: test" in table
    assert "    before re-ran: nothing" in table  # the no-op row


def test_a_red_cold_run_leaves_that_checkout_out(tmp_path: Path):
    clones = {"before": make_repo(tmp_path / "before")}
    lines: list[str] = []
    assert bench_prepush.prepush_rows(clones, FakeCi(cold_passes=False), lambda root: 1.0, lines.append) == []
    assert "first `ci` in its fresh clone failed (test)" in lines[0]


def test_prepush_table_without_before_shows_a_dash():
    figures = [
        Figure("prepush", "pre-push ci, one-line change: backend src", [30.0], {"test": "passed"}),
        Figure("prepush", bench_prepush.PREPUSH_TEST, [25.0]),
    ]
    lines, ratios = bench_prepush.prepush_table(figures)
    assert ratios == {bench_prepush.PREPUSH_GOAL: 1.2}
    row = next(line for line in lines if line.startswith("pre-push ci, one-line change"))
    assert row.split()[-3:] == ["—", "30.0s", "—"]


def test_bench_prepush_runs_the_group_in_fresh_clones_of_head(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The group as `nox -s bench -- prepush` wires it, with `uvx nox ...` swapped for an instant fake."""
    table = summary_of(("lint", "cached", 0.0), ("test", "passed", 1.0))
    seen: list[tuple[str, ...]] = []

    def fake_uvx_nox(*args: str) -> list[str]:
        seen.append(args)
        # Fails under CI=true, like a run whose cache is off would measure the wrong thing.
        script = f"import os, sys; sys.exit('CI is set') if 'CI' in os.environ else print({table!r})"
        return [sys.executable, "-c", script]

    monkeypatch.setattr(bench_prepush, "uvx_nox", fake_uvx_nox)
    monkeypatch.setenv("CI", "true")
    session = SimpleNamespace(bin=str(tmp_path / "bin"), log=lambda line: None)
    edited = [bench_prepush.REPO_ROOT / change.paths[0] for change in bench_prepush.PREPUSH_CHANGES]
    # Compared by what the file system says of each file, not by reading it: the app's files are
    # no input of the suite's own tests (`nox -s audit_inputs` holds noxlib_test to that).
    contents = [(path.stat().st_mtime_ns, path.stat().st_size, path.stat().st_ino) for path in edited]
    figures = bench_prepush.prepush(session, {"after": bench_prepush.REPO_ROOT})  # type: ignore[arg-type]
    assert [figure.name for figure in figures] == [
        "pre-push ci, cold fresh clone",
        "pre-push ci, no-op",
        "pre-push ci, one-line change: backend src",
        bench_prepush.PREPUSH_TEST,
        *(f"pre-push ci, one-line change: {change.kind}" for change in bench_prepush.PREPUSH_CHANGES[1:]),
    ]
    assert seen.count(("-s", "ci")) == 6
    assert seen.count(("-s", "test")) == 1
    # Every change was made in a clone: this checkout's files are untouched.
    assert [(path.stat().st_mtime_ns, path.stat().st_size, path.stat().st_ino) for path in edited] == contents
