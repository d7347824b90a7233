"""The smoke test: one list of checks, run by `nox -s smoke` and by `scripts/smoke_test.sh`.

A deploy runner may have nothing but a bare `python3` (3.9 or newer), so everything that runs the
checks uses only the standard library (urllib) and old-enough syntax, and imports no other part
of noxlib that needs more; `python3 -m noxlib.smoke --base-url URL --mode MODE` is the whole
interface. Against a URL it is read-only unless asked: the default mode `prod` never writes, and
the one writing check (the ping toggle) runs only with an explicit `--mode staging` or `--mode dev`,
so pointing it at production by mistake changes nothing. Only the optional browser part needs a
package (playwright, installed by `nox -s smoke`) and a Chromium already on the machine: it is
never downloaded.

`nox -s smoke` without a URL starts the stack itself (see `run_session`): the services through
the test lifecycle, uvicorn, and the frontend's production build on free ports; then it runs this
same module against the frontend, which proxies /api/* to the backend.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from noxlib.errors import first_line
from noxlib.paths import ARTEFACTS_DIR, FRONTEND_DIR, REPO_ROOT

MODES = ("dev", "staging", "prod")
DEFAULT_BASE_URL = "http://127.0.0.1:3000"
# Read-only unless asked: a mistyped URL must never mutate a deployment (see the module docstring).
DEFAULT_MODE = "prod"
# The variable deploy runners and the original project's docs use; --base-url or the script's
# positional URL win over it.
BASE_URL_VARIABLE = "BASE_URL"
# Without a URL, `nox -s smoke` checks a stack it started for itself: writing to it is harmless.
OWN_STACK_MODE = "dev"
# Longer than the frontend proxy's 15 s backend timeout, so its 503 is what we see, not ours.
DEFAULT_TIMEOUT = 20.0
# Screenshots and the own stack's app logs; never .nox/smoke, which is the session's venv.
SCREENSHOT_DIR = ARTEFACTS_DIR / "smoke"
USER_AGENT = "finance-report-smoke/1"
SNIPPET_LENGTH = 160


# ----- one HTTP exchange -------------------------------------------------------------------
@dataclass
class Answer:
    """What one request got back; `status` is None when nothing answered."""

    method: str
    url: str
    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    problem: str = ""

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def snippet(self) -> str:
        """The start of the body on one line: enough to recognise an error page or a JSON error."""
        flat = " ".join(self.text().split())
        return flat[:SNIPPET_LENGTH] + ("…" if len(flat) > SNIPPET_LENGTH else "")

    def describe(self) -> str:
        if self.status is None:
            return f"{self.method} {self.url} -> no response ({self.problem})"
        snippet = self.snippet()
        return f"{self.method} {self.url} -> HTTP {self.status}" + (f", body: {snippet}" if snippet else ", empty body")


class CheckFailed(Exception):
    """A check's verdict: what was wrong, with the exchange that shows it."""

    def __init__(self, problem: str, answer: Answer | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.answer = answer

    def __str__(self) -> str:
        if self.answer is None:
            return self.problem
        return f"{self.problem}: {self.answer.describe()}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A write must not be replayed elsewhere: POSTs see a redirect as the answer it is."""

    def redirect_request(self, req: urllib.request.Request, *args: Any, **kwargs: Any) -> None:
        return None


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", error)
    # socket.timeout is its own class before 3.10; a tuple, not `A | B`, for python3.9.
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason) or type(reason).__name__


@dataclass
class Target:
    """The deployment under test and how to talk to it."""

    base_url: str
    origin: str
    expected_sha: str = ""
    timeout: float = DEFAULT_TIMEOUT
    last_status: int | None = None  # shown on a check's line

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def request(self, method: str, path: str, headers: dict[str, str] | None = None) -> Answer:
        url = self.url(path)
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked by parse_arguments
            url, method=method, headers={"User-Agent": USER_AGENT, **(headers or {})}
        )
        handlers = [] if method in ("GET", "HEAD", "OPTIONS") else [_NoRedirects()]
        opener = urllib.request.build_opener(*handlers)
        self.last_status = None
        try:
            with opener.open(request, timeout=self.timeout) as response:
                self.last_status = response.status
                return Answer(method, url, response.status, _lower(response.headers.items()), response.read())
        except urllib.error.HTTPError as error:
            try:  # an HTTPError built without a response has nothing to read
                body = error.read()
            except (AttributeError, OSError):
                body = b""
            self.last_status = error.code
            return Answer(method, url, error.code, _lower(error.headers.items()), body)
        except (urllib.error.URLError, OSError) as error:
            return Answer(method, url, None, problem=_reason(error))

    def expect(self, method: str, path: str, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
        answer = self.request(method, path, headers)
        if answer.status != status:
            raise CheckFailed(f"expected HTTP {status}", answer)
        return answer

    def json(self, method: str, path: str) -> Any:
        answer = self.expect(method, path)
        try:
            return json.loads(answer.body)
        except ValueError:
            raise CheckFailed("expected JSON", answer) from None


def _lower(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in items}


# ----- the checks --------------------------------------------------------------------------
def page(path: str, heading: str) -> Callable[[Target], str]:
    """A frontend page: served as HTML with its own heading (not a fallback or an error page)."""

    def probe(target: Target) -> str:
        answer = target.expect("GET", path)
        if "text/html" not in answer.headers.get("content-type", ""):
            raise CheckFailed("expected an HTML page", answer)
        if f">{heading}<" not in answer.text():
            raise CheckFailed(f"the page has no {heading!r} heading", answer)
        return f"{len(answer.body)} bytes of HTML"

    return probe


def health(target: Target) -> str:
    report = target.json("GET", "/api/health")
    if not isinstance(report, dict) or report.get("status") != "healthy":
        raise CheckFailed(f"status is {report.get('status') if isinstance(report, dict) else report!r}")
    checks = report.get("checks") or {}
    return "healthy (" + ", ".join(f"{name} {check.get('status')}" for name, check in checks.items()) + ")"


def api_docs(target: Target) -> str:
    answer = target.expect("GET", "/api/docs")
    if "swagger-ui" not in answer.text():
        raise CheckFailed("no Swagger UI in the page", answer)
    return "Swagger UI"


def read_ping(target: Target) -> str:
    state = target.json("GET", "/api/ping")
    if not isinstance(state, dict) or state.get("state") not in ("ping", "pong"):
        raise CheckFailed(f"expected state ping or pong, got {state!r}")
    return str(state["state"])


def ping(target: Target) -> str:
    return f"state {read_ping(target)}"


def cors_preflight(target: Target) -> str:
    answer = target.expect(
        "OPTIONS",
        "/api/ping",
        headers={"Origin": target.origin, "Access-Control-Request-Method": "GET"},
    )
    allowed = answer.headers.get("access-control-allow-origin", "")
    if allowed not in (target.origin, "*"):
        raise CheckFailed(f"Access-Control-Allow-Origin is {allowed or 'missing'}, expected {target.origin}", answer)
    return f"allows {target.origin}"


def sha_matches(seen: str, expected: str) -> bool:
    """Short and long shas match by prefix either way; under 7 characters a prefix proves nothing."""
    seen, expected = seen.strip().lower(), expected.strip().lower()
    return min(len(seen), len(expected)) >= 7 and (seen.startswith(expected) or expected.startswith(seen))


def git_sha(target: Target) -> str:
    report = target.json("GET", "/api/health")
    seen = str(report.get("git_sha") or "") if isinstance(report, dict) else ""
    if not sha_matches(seen, target.expected_sha):
        raise CheckFailed(f"git_sha is {seen or 'missing'}, expected {target.expected_sha}")
    return f"{seen[:12]} as expected"


def toggle(target: Target) -> str:
    """Flip the shared ping state and flip it back: a write through every layer, left as found."""
    before = read_ping(target)
    states = [before]
    for _ in range(2):
        answer = target.expect("POST", "/api/ping/toggle")
        try:
            states.append(str(json.loads(answer.body)["state"]))
        except (ValueError, KeyError, TypeError):
            raise CheckFailed("expected the new state as JSON", answer) from None
    flipped = "pong" if before == "ping" else "ping"
    if states[1:] != [flipped, before]:
        raise CheckFailed(f"toggling went {' -> '.join(states)}, expected {before} -> {flipped} -> {before}")
    return " -> ".join(states)


@dataclass(frozen=True)
class Check:
    name: str
    method: str
    path: str
    probe: Callable[[Target], str]
    page: bool = False  # needs the frontend: skipped when the base URL is the backend (--api-only)
    writes: bool = False  # never in prod mode
    needs_sha: bool = False  # only when EXPECTED_SHA is set


# The one list: the shell script and `nox -s smoke` both run exactly this, in this order.
CHECKS = (
    Check("dashboard", "GET", "/", page("/", "Dashboard"), page=True),
    Check("health", "GET", "/api/health", health),
    Check("api docs", "GET", "/api/docs", api_docs),
    Check("ping-pong page", "GET", "/ping-pong", page("/ping-pong", "Ping-pong"), page=True),
    Check("reconciliation", "GET", "/reconciliation", page("/reconciliation", "Reconciliation"), page=True),
    Check("ping", "GET", "/api/ping", ping),
    Check("cors preflight", "OPTIONS", "/api/ping", cors_preflight),
    Check("git sha", "GET", "/api/health", git_sha, needs_sha=True),
    Check("toggle", "POST", "/api/ping/toggle", toggle, writes=True),
)


def skip_reason(
    check: Check, mode: str, *, api_only: bool, expected_sha: str, failed_before: bool = False
) -> str | None:
    if check.page and api_only:
        return "api only: no frontend at this URL"
    if check.writes and mode == "prod":
        return "prod mode never writes (--mode staging or dev to run it)"
    if check.writes and failed_before:
        # Something is already wrong there: a write now could leave it in a state nobody checked.
        return "an earlier check failed; no writes to a broken deployment"
    if check.needs_sha and not expected_sha:
        return "EXPECTED_SHA not set"
    return None


# ----- the browser -------------------------------------------------------------------------
@dataclass(frozen=True)
class BrowserPage:
    name: str  # also the screenshot's file name
    path: str
    testid: str  # the element that shows data from the API
    expected_text: str | None = None
    toggles: bool = False


BROWSER_PAGES = (
    BrowserPage("dashboard", "/", "health-status", expected_text="healthy"),
    BrowserPage("ping-pong", "/ping-pong", "ping-state", toggles=True),
    BrowserPage("reconciliation", "/reconciliation", "stats-matched"),
)
CHROMIUM_NAMES = ("chromium", "chromium-browser")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def find_chromium(environ: dict[str, str] | None = None) -> tuple[str | None, str]:
    """(path, "") when a Chromium is found; (None, why) when not. A bad CHROMIUM_PATH is an error."""
    env = os.environ if environ is None else environ
    explicit = env.get("CHROMIUM_PATH", "").strip()
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise CheckFailed(f"CHROMIUM_PATH={explicit} is not an executable file; fix it or unset it")
        return explicit, ""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name, path=env.get("PATH"))
        if found:
            return found, ""
    return None, "no Chromium found (set CHROMIUM_PATH, or put chromium or chromium-browser on PATH)"


def isolation_flags(base_url: str) -> list[str]:
    """Let the browser resolve only loopback and the host under test.

    Every other name, and IP literals too, resolve to nothing, so a page that pulls in a third
    party fails here (as a console error) instead of quietly reaching the internet. Checked with
    Chromium 156: a page on this machine's non-loopback address fails with ERR_NAME_NOT_RESOLVED.
    """
    host = urllib.parse.urlsplit(base_url).hostname or "127.0.0.1"
    excluded = ["127.0.0.1"] + ([host] if host != "127.0.0.1" else [])
    return ["--host-resolver-rules=MAP * ~NOTFOUND, " + ", ".join(f"EXCLUDE {name}" for name in excluded)]


def visit(context: Any, expect: Any, target: Target, spec: BrowserPage, mode: str, screenshots: Path) -> str:
    """Open one page, wait for its API data, toggle where asked, screenshot; fail on console errors."""
    errors: list[str] = []
    tab = context.new_page()
    tab.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    tab.on("pageerror", lambda error: errors.append(str(error)))
    url = target.url(spec.path)
    step = "loading the page"  # named in the failure: "Locator expected to be visible" alone says little
    try:
        response = tab.goto(url, wait_until="load")
        if response is None or response.status != 200:
            raise CheckFailed(f"{url} answered HTTP {response.status if response else 'nothing'}")
        shown = tab.get_by_test_id(spec.testid)
        step = f"waiting for data-testid={spec.testid}" + (
            f" to read {spec.expected_text!r}" if spec.expected_text else ""
        )
        if spec.expected_text:
            expect(shown).to_have_text(spec.expected_text)
        else:
            expect(shown).to_be_visible()
        detail = f"{spec.testid} {shown.inner_text().strip()}"
        if spec.toggles and mode != "prod":
            before = shown.inner_text().strip()
            button = tab.get_by_test_id("toggle-button")
            step = f"clicking Toggle and waiting for {spec.testid} to change from {before}"
            button.click()
            expect(shown).not_to_have_text(before)
            after = shown.inner_text().strip()
            step = f"clicking Toggle again and waiting for {spec.testid} to read {before}"
            expect(button).to_be_enabled()
            button.click()
            expect(shown).to_have_text(before)
            detail = f"clicked Toggle: {before} -> {after} -> {before}"
        step = "taking the screenshot"
        screenshots.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(screenshots / f"{spec.name}.png"), full_page=True)
    except CheckFailed:
        raise
    except Exception as error:  # playwright's timeouts and failed expectations, on one line
        raise CheckFailed(f"{url}: {step}: {first_line(error)}") from None
    finally:
        tab.close()
    if errors:
        raise CheckFailed(f"{url}: {len(errors)} console error(s), first: {errors[0][:SNIPPET_LENGTH]}")
    return detail + f"; {spec.name}.png"


# ----- the run -----------------------------------------------------------------------------
@dataclass
class Report:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def summary(self) -> str:
        return f"smoke: {self.passed} passed, {self.failed} failed, {self.skipped} skipped"


def line(verdict: str, name: str, what: str, code: str, elapsed_ms: float | None, detail: str) -> str:
    took = f"{elapsed_ms:6.0f} ms" if elapsed_ms is not None else " " * 9
    return f"  {verdict:<4}  {name:<22} {what:<24} {code:>3} {took}  {detail}".rstrip()


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


def run_browser(target: Target, mode: str, screenshots: Path, report: Report, out: Callable[[str], None]) -> None:
    """The pages in a real headless Chromium — or one line saying why not, never silence."""
    try:
        chromium, why = find_chromium()
    except CheckFailed as failure:
        report.failed += 1
        report.failures.append(f"browser: {failure}")
        out(f"  FAIL  browser: {failure}")
        return
    if chromium is None:
        out(f"  browser: skipped, {why}; HTTP checks only")
        return
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        out("  browser: skipped, playwright is not installed for this Python (nox -s smoke has it); HTTP checks only")
        return
    for spec in BROWSER_PAGES:
        (screenshots / f"{spec.name}.png").unlink(missing_ok=True)
    expect.set_options(timeout=target.timeout * 1000)
    with sync_playwright() as playwright, tempfile.TemporaryDirectory(prefix="smoke-chromium-") as profile:
        try:
            # A fresh profile every run: no cookies, cache or service worker from an earlier one.
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=chromium,
                headless=True,
                args=[*CHROMIUM_FLAGS, *isolation_flags(target.base_url)],
            )
        except Exception as error:  # a Chromium too old or broken for playwright: one clear line
            report.failed += 1
            report.failures.append(f"browser: {chromium} did not start: {first_line(error)}")
            out(f"  FAIL  browser: {chromium} did not start: {first_line(error)}")
            return
        context.set_default_timeout(target.timeout * 1000)
        try:
            for spec in BROWSER_PAGES:
                name = f"browser {spec.name}"
                started = time.perf_counter()
                try:
                    detail = visit(context, expect, target, spec, mode, screenshots)
                except CheckFailed as failure:
                    report.failed += 1
                    report.failures.append(f"{name}: {failure}")
                    elapsed = (time.perf_counter() - started) * 1000
                    out(line("FAIL", name, f"open {spec.path}", "-", elapsed, str(failure)))
                else:
                    report.passed += 1
                    elapsed = (time.perf_counter() - started) * 1000
                    out(line("ok", name, f"open {spec.path}", "", elapsed, detail))
        finally:
            context.close()
    out(f"  screenshots in {screenshots}")


# ----- the command line --------------------------------------------------------------------
class UsageError(Exception):
    """A mistake in the arguments: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would print the usage block first
        raise UsageError(message)


def parser() -> argparse.ArgumentParser:
    described = _Parser(
        prog="python3 -m noxlib.smoke",
        description=(
            "Smoke-test a running Finance Report: pages, API, CORS, and a real browser when one is found. "
            f"Read-only by default (mode {DEFAULT_MODE}); the ping toggle, the one check that writes, runs only "
            "with an explicit --mode staging or --mode dev."
        ),
    )
    described.add_argument(
        "--base-url", help=f"the frontend's URL (default ${BASE_URL_VARIABLE}, else {DEFAULT_BASE_URL})"
    )
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


def parse_arguments(argv: list[str], environ: dict[str, str] | None = None) -> argparse.Namespace:
    """The options; with `environ`, an unset --base-url falls back to its BASE_URL (the command line's way)."""
    options = parser().parse_args(argv)
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


# ----- nox -s smoke --------------------------------------------------------------------------
# Generated or not read by `next build`: their being newer must not force a rebuild.
NOT_BUILD_INPUTS = {"node_modules", ".next", "out", "tests", "coverage", "next-env.d.ts"}
NOT_BUILD_INPUT_SUFFIXES = (".tsbuildinfo", ".md")
# BUILD_ID and server.js come from `next build`; the static copy from the build script's last step.
BUILD_OUTPUTS = (".next/BUILD_ID", ".next/standalone/server.js", ".next/standalone/.next/static")


def stale_build_reason(frontend: Path = FRONTEND_DIR) -> str | None:
    """Why the production build must be redone, or None when .next/ is newer than every input."""
    built_at = []
    for output in BUILD_OUTPUTS:
        try:
            built_at.append((frontend / output).stat().st_mtime)
        except FileNotFoundError:
            return f"{output} is missing"
    newest, newest_path = 0.0, ""
    for directory, subdirectories, files in os.walk(frontend):
        subdirectories[:] = [name for name in subdirectories if name not in NOT_BUILD_INPUTS]
        for name in files:
            if name in NOT_BUILD_INPUTS or name.endswith(NOT_BUILD_INPUT_SUFFIXES):
                continue
            path = Path(directory) / name
            modified = path.stat().st_mtime
            if modified > newest:
                newest, newest_path = modified, str(path.relative_to(frontend))
    if newest > min(built_at):
        return f"{newest_path} changed since the last build"
    return None


def run_session(session: Any) -> None:
    """`nox -s smoke`: check the deployment at --base-url, or start the whole stack and check that."""
    from noxlib.errors import UserError

    try:
        options = parse_arguments(list(session.posargs))
    except UsageError as error:
        raise UserError(f"smoke: {error}") from None
    if options.base_url:
        run_module(session, list(session.posargs))
    else:
        check_own_stack(session, options)


def run_module(session: Any, argv: list[str]) -> None:
    """This module in the session's Python, where playwright is installed: the script's exact code path."""
    from nox.command import CommandFailed

    from noxlib.errors import UserError

    with session.chdir(REPO_ROOT):
        try:
            session.run("python", "-m", "noxlib.smoke", *argv)
        except CommandFailed:
            raise UserError("smoke checks failed; the FAIL lines above say which and why.") from None


def check_own_stack(session: Any, options: argparse.Namespace) -> None:
    """Services, backend and the frontend's production build on free ports; checked; all stopped."""
    from noxlib import frontend, lifecycle, node, stack
    from noxlib.errors import UserError
    from noxlib.processes import free_port

    if options.api_only:
        raise UserError("--api-only needs --base-url (the backend's); without a URL smoke checks its own frontend.")
    reinstalled = node.ensure_node_modules(FRONTEND_DIR, purpose="the frontend", log=session.log, ignore_scripts=False)
    reason = "node_modules were reinstalled" if reinstalled else stale_build_reason()
    if reason:
        session.log(f"frontend   npm run build ({reason})")
        frontend.npm_script(session, "build")
    else:
        session.log(
            "frontend   build is current (.next/ is newer than every source file and package-lock.json); "
            "skipping npm run build"
        )
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    logs = {name: SCREENSHOT_DIR / f"{name}.log" for name in ("backend", "frontend")}
    for log in logs.values():
        log.unlink(missing_ok=True)
    migrate = lifecycle.migrate_with_alembic(session.run)
    # An ExitStack rather than a parenthesised `with`: this file must still parse on python3.9.
    with contextlib.ExitStack() as started:
        run = started.enter_context(
            lifecycle.isolated_run(migrate, workers=0, log=session.log, namespace_suffix="smoke")
        )
        apps = started.enter_context(stack.running_stack())
        backend_port, frontend_port = free_port(), free_port()
        while frontend_port == backend_port:
            frontend_port = free_port()
        origin = f"http://{stack.HOST}:{frontend_port}"
        env = stack.backend_environment(run.contract, frontend_origin=origin)
        backend = stack.start_backend(
            apps, Path(session.bin) / "python", env, port=backend_port, log_path=logs["backend"]
        )
        session.log(f"backend    {backend.url}  (log {logs['backend']})")
        app = stack.start_frontend(
            apps, port=frontend_port, backend_url=backend.url, production=True, log_path=logs["frontend"]
        )
        session.log(f"frontend   {app.url}  (log {logs['frontend']})")
        argv = ["--base-url", app.url, "--mode", options.mode or OWN_STACK_MODE, "--timeout", str(options.timeout),
                "--screenshots", str(options.screenshots)]  # fmt: skip
        if options.no_browser:
            argv.append("--no-browser")
        try:
            run_module(session, argv)
        except UserError as error:
            raise UserError(f"{error} App logs: {logs['backend']}, {logs['frontend']}") from None


if __name__ == "__main__":
    sys.exit(main())
