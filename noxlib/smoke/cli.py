"""The smoke test's command line: `python3 -m noxlib.smoke --base-url URL --mode MODE`.

`scripts/smoke_test.sh` and `nox -s smoke` both run this module, so a deploy runner and a
developer run the same checks (noxlib/smoke/checks.py) and browser pass (noxlib/smoke/browser.py).
It runs on a deploy runner's bare python3 (3.9 or newer): standard library and old-enough syntax
only (tests/test_smoke.py runs it on 3.9 where one is installed).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from noxlib.smoke.browser import BROWSER_PAGES as BROWSER_PAGES
from noxlib.smoke.browser import CHROMIUM_FLAGS as CHROMIUM_FLAGS
from noxlib.smoke.browser import find_chromium as find_chromium
from noxlib.smoke.browser import isolation_flags as isolation_flags
from noxlib.smoke.browser import run_browser
from noxlib.smoke.checks import (
    BASE_URL_VARIABLE,
    DEFAULT_BASE_URL,
    DEFAULT_MODE,
    DEFAULT_TIMEOUT,
    MODES,
    OWN_STACK_MODE,
    CheckFailed,
    line,
    skip_reason,
)
from noxlib.smoke.checks import CHECKS as CHECKS
from noxlib.smoke.checks import SCREENSHOT_DIR as SCREENSHOT_DIR
from noxlib.smoke.checks import Check as Check
from noxlib.smoke.checks import Report as Report
from noxlib.smoke.checks import Target as Target


def run_checks(
    target: Target,
    mode: str,
    *,
    api_only: bool = False,
    browser: bool = True,
    screenshots: Path = SCREENSHOT_DIR,
    after_check: Callable[[Check], None] | None = None,
    out: Callable[[str], None] = print,
) -> Report:
    """Every check in order, one line each; a failure never stops the others from telling their part.

    `after_check` runs after each HTTP check: the suite uses it to break the stack mid-way.
    """
    report = Report()
    out(f"smoke {target.base_url} (mode {mode}, origin {target.origin})")
    for check in CHECKS:
        what = f"{check.method} {check.path}"
        reason = skip_reason(
            check, mode, api_only=api_only, expected_sha=target.expected_sha, failed_before=report.failed > 0
        )
        if reason:
            report.skipped += 1
            out(line("skip", check.name, what, "", None, reason))
            continue
        started = time.perf_counter()
        try:
            detail = check.probe(target)
        except CheckFailed as failure:
            elapsed = (time.perf_counter() - started) * 1000
            status = failure.answer.status if failure.answer is not None else None
            report.failed += 1
            report.failures.append(f"{check.name}: {failure}")
            out(line("FAIL", check.name, what, str(status or "-"), elapsed, str(failure)))
        else:
            elapsed = (time.perf_counter() - started) * 1000
            report.passed += 1
            out(line("ok", check.name, what, str(target.last_status or ""), elapsed, detail))
        if after_check is not None:
            after_check(check)
    if api_only:
        out("  browser: skipped, --api-only has no pages to open")
    elif not browser:
        out("  browser: skipped, --no-browser")
    elif not report.ok:
        out("  browser: skipped, the HTTP checks failed")
    else:
        run_browser(target, mode, screenshots, report, out)
    return report


class UsageError(Exception):
    """A mistake in the arguments: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would print the usage block first
        raise UsageError(message)


# `nox -s smoke` reads no BASE_URL (one left in a shell would silently point a developer's check at
# a deployment): without --base-url it starts a stack of its own. The script's command line does.
SESSION_PROG = "nox -s smoke --"
SESSION_BASE_URL_HELP = (
    "a running deployment's frontend URL to check; without it the session starts its own stack "
    "(services, backend, production frontend) on free ports and checks that"
)


def parser(prog: str = "python3 -m noxlib.smoke") -> argparse.ArgumentParser:
    """The options; as `nox -s smoke --` (prog SESSION_PROG) the help says what the session does without a URL."""
    session = prog == SESSION_PROG
    described = _Parser(
        prog=prog,
        description=(
            "Smoke-test a running Finance Report: pages, API, CORS, and a real browser when one is found. "
            f"Read-only by default (mode {DEFAULT_MODE}); the ping toggle, the one check that writes, runs only "
            "with an explicit --mode staging or --mode dev."
            + (f" A stack of the session's own is checked in mode {OWN_STACK_MODE}." if session else "")
        ),
    )
    script_base_url_help = f"the frontend's URL (default ${BASE_URL_VARIABLE}, else {DEFAULT_BASE_URL})"
    described.add_argument("--base-url", help=SESSION_BASE_URL_HELP if session else script_base_url_help)
    described.add_argument(
        "--mode",
        choices=MODES,
        help="prod: read-only (the default); staging, dev: also toggle the ping state and toggle it back",
    )
    described.add_argument("--api-only", action="store_true", help="the URL is the backend: skip pages and browser")
    described.add_argument("--no-browser", action="store_true", help="skip the browser even when Chromium is found")
    described.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per request or wait")
    described.add_argument("--screenshots", type=Path, default=SCREENSHOT_DIR, help="where page screenshots go")
    return described


def parse_arguments(
    argv: list[str], environ: dict[str, str] | None = None, prog: str = "python3 -m noxlib.smoke"
) -> argparse.Namespace:
    """The options; with `environ`, an unset --base-url falls back to its BASE_URL (the command line's way)."""
    options = parser(prog).parse_args(argv)
    given_as = "--base-url"
    if options.base_url is None and environ is not None and environ.get(BASE_URL_VARIABLE, "").strip():
        options.base_url, given_as = environ[BASE_URL_VARIABLE].strip(), BASE_URL_VARIABLE
    if options.base_url is not None:
        parts = urllib.parse.urlsplit(options.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            example = "https://report.example.com"
            raise UsageError(f"{given_as} must be an http(s) URL like {example}, got {options.base_url!r}")
    if not options.timeout > 0:
        raise UsageError(f"--timeout must be a positive number of seconds, got {options.timeout:g}")
    return options


def origin_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def main(argv: list[str] | None = None) -> int:
    try:
        options = parse_arguments(sys.argv[1:] if argv is None else argv, dict(os.environ))
    except UsageError as error:
        print(f"smoke: error: {error} (see --help)", file=sys.stderr)
        return 2
    base_url = (options.base_url or DEFAULT_BASE_URL).rstrip("/")
    target = Target(
        base_url=base_url,
        origin=os.environ.get("SMOKE_ORIGIN", "").strip() or origin_of(base_url),
        expected_sha=os.environ.get("EXPECTED_SHA", "").strip(),
        timeout=options.timeout,
    )
    try:
        report = run_checks(
            target,
            options.mode or DEFAULT_MODE,
            api_only=options.api_only,
            browser=not options.no_browser,
            screenshots=options.screenshots,
        )
    except KeyboardInterrupt:
        print("smoke: interrupted", file=sys.stderr)
        return 130
    print(report.summary())
    if not report.ok:
        print("smoke: FAILED\n" + "\n".join(f"  {failure}" for failure in report.failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
