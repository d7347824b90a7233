"""The smoke test's checks: one list, run by `nox -s smoke` and by `scripts/smoke_test.sh`.

A deploy runner may have nothing but a bare `python3` (3.9 or newer): this module, the command line
(noxlib/smoke/cli.py) and the browser pass (noxlib/smoke/browser.py) use only the standard library
(urllib) and old-enough syntax, and import no other part of noxlib that needs more. Against a URL
the checks are read-only unless asked: the default mode `prod` never writes, and the one writing
check (the ping toggle) runs only with an explicit `--mode staging` or `--mode dev`, so pointing
it at production by mistake changes nothing.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from noxlib.core.paths import ARTEFACTS_DIR

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
