"""The report: one line per rule, with diffs and fix snippets on request."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from noxlib.env_keys.model import Missing, Report, RuleResult


def format_report(report: Report, *, diff: bool = False, fix: bool = False) -> str:
    """The report a person reads: one block per rule, then warnings, then a one-line verdict."""
    lines: list[str] = []
    for rule in report.rules:
        lines.append(f"[{rule.status}] {rule.name}: {rule.description}")
        if rule.note:
            lines.append(f"    {rule.note}")
        lines.extend(f"    {problem}" for problem in rule.problems)
        lines.extend(
            f"    missing {item.key} -> add to {item.into}" + (f"  ({item.why})" if item.why else "")
            for item in rule.missing
        )
        if diff and rule.status == "FAIL":
            lines.extend(_format_diffs(rule))
    lines.extend(f"warning: {warning}" for warning in report.warnings)
    if fix:
        lines.extend(_format_fixes(report))
    counts = {status: sum(r.status == status for r in report.rules) for status in ("PASS", "FAIL")}
    skipped = [rule.name for rule in report.rules if rule.status == "SKIPPED"]
    verdict = "FAILED" if report.failed else "OK"
    summary = (
        f"env_keys: {verdict}: {counts['FAIL']} failed, {counts['PASS']} passed, "
        f"{len(skipped)} skipped{' (' + ', '.join(skipped) + ')' if skipped else ''}, "
        f"{len(report.warnings)} warnings"
    )
    lines.append(summary)
    return "\n".join(lines)


def _format_diffs(rule: RuleResult) -> Iterable[str]:
    """The compared key sets as unified diffs: `-` lines are expected but missing."""
    for expected_label, expected, actual_label, actual in rule.comparisons:
        # Only the keys that matter to this comparison: extra keys elsewhere are not drift.
        relevant = sorted(set(actual) & set(expected))
        diff = difflib.unified_diff(expected, relevant, fromfile=expected_label, tofile=actual_label, lineterm="", n=0)
        yield from (f"    {line}" for line in diff)


def _format_fixes(report: Report) -> Iterable[str]:
    """Paste-ready snippets, grouped by the file each must go into."""
    by_file: dict[str, list[Missing]] = {}
    for rule in report.rules:
        for item in rule.missing:
            by_file.setdefault(item.into, []).append(item)
    if not by_file:
        return
    yield ""
    yield "Snippets to add (--fix):"
    for into, items in by_file.items():
        yield f"--- {into}"
        seen: set[str] = set()
        for item in items:
            if item.snippet not in seen:
                seen.add(item.snippet)
                yield item.snippet
    yield ""
