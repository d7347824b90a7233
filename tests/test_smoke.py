"""The smoke test: its one list of checks, its modes, and how it fails.

The fault tests run the checks against a real backend (uvicorn on the suite's native PostgreSQL,
Redis and S3, with a migrated database from the lifecycle) and break it mid-way. Mode and
command-line behaviour is checked against a small loopback app that imitates the frontend and
the backend's JSON, so those tests need neither a Next.js build nor a browser.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from noxlib.core.errors import UserError
from noxlib.core.paths import ARTEFACTS_DIR
from noxlib.core.processes import free_port, stop_tree
from noxlib.sessions import smoke as smoke_session
from noxlib.smoke import cli as smoke
from tests.runs import real_backend

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "smoke_test.sh"
CHECK_NAMES = [check.name for check in smoke.CHECKS]


# ----- a loopback app that imitates the frontend and the backend's JSON ---------------------
class ImitationApp:
    """Pages with their headings, /api/* JSON, CORS for one origin; records every request."""

    def __init__(self, *, git_sha: str = "0123456789abcdef", backend_down: bool = False) -> None:
        self.requests: list[tuple[str, str]] = []
        self.state = "ping"
        self.git_sha = git_sha
        self.backend_down = backend_down
        app = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                app.requests.append((self.command, self.path))
                status, content_type, body, extra = app.answer(self.command, self.path, self.headers)
                payload = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_OPTIONS = _serve

            def log_message(self, format: str, *args: Any) -> None:
                """Keep pytest output clean."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.allowed_origin = self.url
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, method: str, path: str, headers: Any) -> tuple[int, str, str, dict[str, str]]:
        pages = {"/": "Dashboard", "/ping-pong": "Ping-pong", "/reconciliation": "Reconciliation"}
        if method == "GET" and path in pages:
            return 200, "text/html; charset=utf-8", f"<html><body><h1>{pages[path]}</h1></body></html>", {}
        if self.backend_down:
            detail = {"detail": "The backend at http://127.0.0.1:8000 is unreachable", "code": "backend_unreachable"}
            return 503, "application/json", json.dumps(detail), {}
        if method == "GET" and path == "/api/health":
            checks = {name: {"status": "ok"} for name in ("database", "redis", "s3")}
            return (
                200,
                "application/json",
                json.dumps({"status": "healthy", "git_sha": self.git_sha, "checks": checks}),
                {},
            )
        if method == "GET" and path == "/api/docs":
            return 200, "text/html", '<div id="swagger-ui"></div>', {}
        if method == "GET" and path == "/api/ping":
            return 200, "application/json", json.dumps({"state": self.state, "toggle_count": 0}), {}
        if method == "POST" and path == "/api/ping/toggle":
            self.state = "pong" if self.state == "ping" else "ping"
            return 200, "application/json", json.dumps({"state": self.state}), {}
        if method == "OPTIONS" and path == "/api/ping":
            if headers.get("Origin") == self.allowed_origin:
                return 200, "text/plain", "OK", {"Access-Control-Allow-Origin": self.allowed_origin}
            return 400, "text/plain", "Disallowed CORS origin", {}
        return 404, "application/json", json.dumps({"detail": "Not Found"}), {}

    def methods(self) -> set[str]:
        return {method for method, _ in self.requests}


@pytest.fixture
def imitation() -> Iterator[ImitationApp]:
    app = ImitationApp()
    app.thread.start()
    yield app
    app.server.shutdown()
    app.server.server_close()


def run_script(*args: str, env: dict[str, str] | None = None, path: str | None = None) -> subprocess.CompletedProcess:
    """scripts/smoke_test.sh with a clean environment: PATH/HOME/LANG plus what the test passes."""
    base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    if path is not None:
        base["PATH"] = path
    return subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(SCRIPT), *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def check_lines(output: str) -> dict[str, str]:
    """{check name: verdict} from the one-line-per-check output, in order."""
    found = {}
    for text in output.splitlines():
        verdict = text[2:8].strip()
        if verdict in ("ok", "FAIL", "skip"):
            name = next((name for name in CHECK_NAMES if text[8:].startswith(name + " ")), None)
            if name:
                found[name] = verdict
    return found


def run_in_process(target: smoke.Target, mode: str, **options: Any) -> tuple[smoke.Report, list[str]]:
    lines: list[str] = []
    report = smoke.run_checks(target, mode, out=lines.append, **options)
    return report, lines


# ----- against a real backend (tests/conftest.py `backend_run`, `app_backend`) ----------------
# One worker runs every test that needs the real backend (and perf's), so the backend starts once.
@pytest.mark.faults
@pytest.mark.journey
@pytest.mark.journey_backend
@pytest.mark.xdist_group(name="app_backend")
def test_fails_clearly_when_the_backend_is_stopped_midway(backend_run, tmp_path):
    with real_backend(backend_run, tmp_path / "backend.log") as app:
        target = smoke.Target(app.url, origin=app.url)

        def stop_after_health(check: smoke.Check) -> None:
            if check.name == "health":
                stop_tree(app.process)

        report, lines = run_in_process(target, "staging", api_only=True, after_check=stop_after_health)

    assert not report.ok
    output = "\n".join(lines)
    assert check_lines(output)["health"] == "ok"
    failing = next(text for text in lines if "FAIL" in text and "api docs" in text)
    assert f"GET {app.url}/api/docs -> no response (connection refused)" in failing
    assert "Traceback" not in output
    assert report.failures[0].startswith("api docs: expected HTTP 200: GET http://127.0.0.1:")


def test_failure_names_the_url_status_and_a_body_snippet(imitation, capsys, monkeypatch):
    """What a stopped backend looks like behind the frontend: its proxy's JSON 503."""
    imitation.backend_down = True
    monkeypatch.delenv("EXPECTED_SHA", raising=False)
    monkeypatch.delenv("SMOKE_ORIGIN", raising=False)
    code = smoke.main(["--base-url", imitation.url, "--mode", "prod", "--no-browser"])
    captured = capsys.readouterr()
    assert code == 1
    failing = next(text for text in captured.out.splitlines() if "FAIL" in text and "health" in text)
    assert f"GET {imitation.url}/api/health -> HTTP 503" in failing
    assert '"code": "backend_unreachable"' in failing
    assert f"health: expected HTTP 200: GET {imitation.url}/api/health -> HTTP 503" in captured.err
    assert "Traceback" not in captured.out + captured.err


@pytest.mark.journey
@pytest.mark.journey_backend
@pytest.mark.xdist_group(name="app_backend")
def test_a_real_backend_passes_every_api_check(app_backend):
    report, lines = run_in_process(smoke.Target(app_backend.url, origin=app_backend.url), "dev", api_only=True)
    assert report.ok, "\n".join(lines)
    verdicts = check_lines("\n".join(lines))
    assert [name for name, verdict in verdicts.items() if verdict == "ok"] == [
        "health",
        "api docs",
        "ping",
        "cors preflight",
        "toggle",
    ]
    assert any("ping -> pong -> ping" in text for text in lines)


@pytest.mark.journey
@pytest.mark.journey_backend
@pytest.mark.xdist_group(name="app_backend")
def test_the_script_runs_the_same_checks_as_nox(app_backend):
    """Both run `python3 -m noxlib.smoke`: same names, same order, same verdicts."""
    script = run_script(app_backend.url, "staging", "--api-only")
    assert script.returncode == 0, script.stdout + script.stderr
    _, lines = run_in_process(smoke.Target(app_backend.url, origin=app_backend.url), "staging", api_only=True)
    assert list(check_lines(script.stdout)) == CHECK_NAMES
    assert check_lines(script.stdout) == check_lines("\n".join(lines))
    assert script.stdout.strip().endswith("smoke: 5 passed, 0 failed, 4 skipped")


class RecordingSession:
    """Just enough of a nox session to see what `nox -s smoke -- --base-url ...` runs."""

    def __init__(self, posargs: list[str]) -> None:
        self.posargs = posargs
        self.commands: list[tuple[str, ...]] = []

    def run(self, *args: str, **kwargs: Any) -> None:
        self.commands.append(args)

    @contextlib.contextmanager
    def chdir(self, path: Path) -> Iterator[None]:
        assert Path(path) == REPO
        yield


def test_nox_with_a_url_runs_the_module_the_script_runs():
    session = RecordingSession(["--base-url", "https://report.example.com", "--mode", "prod"])
    smoke_session.run_session(session)
    assert session.commands == [
        ("python", "-m", "noxlib.smoke", "--base-url", "https://report.example.com", "--mode", "prod")
    ]
    assert "exec python3 -m noxlib.smoke" in SCRIPT.read_text()


@pytest.mark.parametrize(
    ("posargs", "message"),
    [
        (["--mode", "live"], "invalid choice: 'live'"),
        (["--base-url", "report.example.com"], "must be an http(s) URL"),
        (["--api-only"], "--api-only needs --base-url"),
    ],
)
def test_nox_usage_errors_are_one_line(posargs, message):
    with pytest.raises(UserError, match=re.escape(message)) as error:
        smoke_session.run_session(RecordingSession(posargs))
    assert "\n" not in str(error.value)


# ----- modes --------------------------------------------------------------------------------
def test_prod_mode_never_writes(imitation):
    report, lines = run_in_process(smoke.Target(imitation.url, origin=imitation.url), "prod", browser=False)
    assert report.ok, "\n".join(lines)
    assert imitation.methods() == {"GET", "OPTIONS"}
    assert check_lines("\n".join(lines))["toggle"] == "skip"
    assert any("prod mode never writes" in text for text in lines)


@pytest.mark.parametrize("mode", ["dev", "staging"])
def test_writing_modes_toggle_and_restore(imitation, mode):
    report, lines = run_in_process(smoke.Target(imitation.url, origin=imitation.url), mode, browser=False)
    assert report.ok, "\n".join(lines)
    assert [request for request in imitation.requests if request[0] == "POST"] == [("POST", "/api/ping/toggle")] * 2
    assert imitation.state == "ping"


def test_expected_sha_is_checked_when_set(imitation):
    good = smoke.Target(imitation.url, origin=imitation.url, expected_sha="0123456")
    report, lines = run_in_process(good, "prod", browser=False)
    assert report.ok, "\n".join(lines)
    assert check_lines("\n".join(lines))["git sha"] == "ok"

    wrong = smoke.Target(imitation.url, origin=imitation.url, expected_sha="fedcba9876")
    report, lines = run_in_process(wrong, "prod", browser=False)
    assert report.failures == ["git sha: git_sha is 0123456789abcdef, expected fedcba9876"]


def test_cors_origin_defaults_to_the_base_url_and_can_be_overridden(imitation):
    allowed = run_script(imitation.url, "prod", "--no-browser")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    refused = run_script(imitation.url, "prod", "--no-browser", env={"SMOKE_ORIGIN": "https://elsewhere.example"})
    assert refused.returncode == 1
    assert check_lines(refused.stdout)["cors preflight"] == "FAIL"
    assert f"OPTIONS {imitation.url}/api/ping -> HTTP 400, body: Disallowed CORS origin" in refused.stdout


# ----- read-only unless asked ------------------------------------------------------------------
def test_the_script_with_only_a_url_is_read_only(imitation, bare_path):
    result = run_script(imitation.url, path=bare_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"smoke {imitation.url} (mode prod" in result.stdout
    assert check_lines(result.stdout)["toggle"] == "skip"
    assert imitation.methods() == {"GET", "OPTIONS"}


def test_the_script_honours_base_url_and_the_argument_wins(imitation, bare_path):
    from_env = run_script(path=bare_path, env={"BASE_URL": imitation.url})
    assert from_env.returncode == 0, from_env.stdout + from_env.stderr
    assert f"smoke {imitation.url} (mode prod" in from_env.stdout
    assert ("GET", "/api/health") in imitation.requests
    assert imitation.methods() == {"GET", "OPTIONS"}

    port = free_port()
    argument_wins = run_script(imitation.url, path=bare_path, env={"BASE_URL": f"http://127.0.0.1:{port}"})
    assert argument_wins.returncode == 0, argument_wins.stdout + argument_wins.stderr
    assert f"smoke {imitation.url} (mode prod" in argument_wins.stdout


def test_a_bad_base_url_is_one_line_naming_the_variable():
    result = run_script(env={"BASE_URL": "report.example.com"})
    assert result.returncode == 2
    assert result.stderr == (
        "smoke: error: BASE_URL must be an http(s) URL like https://report.example.com, "
        "got 'report.example.com' (see --help)\n"
    )


def test_help_says_it_is_read_only_unless_asked():
    result = run_script("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "Read-only by default (mode prod)" in text
    assert "runs only with an explicit --mode staging or --mode dev" in text
    assert "BASE_URL" in text


def test_no_writes_to_a_deployment_that_already_failed_a_check(imitation):
    imitation.allowed_origin = "https://elsewhere.example"  # the CORS check fails before the toggle
    report, lines = run_in_process(smoke.Target(imitation.url, origin=imitation.url), "staging", browser=False)
    assert report.failures[0].startswith("cors preflight: ")
    assert check_lines("\n".join(lines))["toggle"] == "skip"
    assert "POST" not in imitation.methods()


def test_screenshots_and_logs_default_to_the_artefacts_dir_not_a_session_venv():
    assert smoke.SCREENSHOT_DIR == ARTEFACTS_DIR / "smoke"
    assert smoke.parser().parse_args([]).screenshots == ARTEFACTS_DIR / "smoke"


# ----- the command line and the browser's absence ---------------------------------------------
@pytest.fixture
def bare_path(tmp_path) -> str:
    """A PATH with python3 alone: no chromium on it, and no venv (the script needs the stdlib only)."""
    directory = tmp_path / "bin"
    directory.mkdir()
    (directory / "python3").symlink_to(Path(sys.executable).resolve())
    return str(directory)


def test_missing_chromium_is_one_line_and_the_http_checks_still_run(imitation, bare_path):
    result = run_script(imitation.url, "staging", path=bare_path)
    assert result.returncode == 0, result.stdout + result.stderr
    mentions = [text for text in result.stdout.splitlines() if "chromium" in text.lower()]
    assert len(mentions) == 1
    assert mentions[0].strip().startswith("browser: skipped, no Chromium found")
    assert list(check_lines(result.stdout).values()).count("ok") == 8


def test_a_wrong_chromium_path_fails_clearly(imitation, bare_path):
    result = run_script(imitation.url, "prod", path=bare_path, env={"CHROMIUM_PATH": "/nonexistent/chromium"})
    assert result.returncode == 1
    assert "FAIL  browser: CHROMIUM_PATH=/nonexistent/chromium is not an executable file" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["not-a-url"], "--base-url must be an http(s) URL"),
        (["http://127.0.0.1:3000", "live"], "argument --mode: invalid choice: 'live'"),
        (["http://127.0.0.1:3000", "prod", "--timeout", "0"], "--timeout must be a positive number"),
    ],
)
def test_script_usage_errors_are_one_line(args, message):
    result = run_script(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("smoke: error: ")
    assert message in result.stderr


def test_an_unreachable_url_fails_every_check_with_its_url(bare_path):
    port = free_port()
    result = run_script(f"http://127.0.0.1:{port}", "prod", path=bare_path)
    assert result.returncode == 1
    verdicts = check_lines(result.stdout)
    assert [name for name, verdict in verdicts.items() if verdict == "FAIL"] == [
        name for name in CHECK_NAMES if name not in ("git sha", "toggle")
    ]
    assert f"GET http://127.0.0.1:{port}/api/health -> no response (connection refused)" in result.stdout
    assert "browser: skipped, the HTTP checks failed" in result.stdout


# ----- the frontend build's freshness ---------------------------------------------------------
def test_the_build_is_redone_only_when_an_input_is_newer(tmp_path):
    frontend = tmp_path / "frontend"
    sources = ["package-lock.json", "app/page.tsx", "next.config.ts"]
    generated = ["tsconfig.tsbuildinfo", "next-env.d.ts", "node_modules/next/index.js", "tests/page.test.tsx"]
    for name in [*sources, *generated]:
        (frontend / name).parent.mkdir(parents=True, exist_ok=True)
        (frontend / name).write_text("x")
        os.utime(frontend / name, (1000, 1000))
    assert smoke_session.stale_build_reason(frontend) == ".next/BUILD_ID is missing"

    for name in smoke_session.BUILD_OUTPUTS:
        (frontend / name).parent.mkdir(parents=True, exist_ok=True)
        (frontend / name).touch()
        os.utime(frontend / name, (2000, 2000))
    assert smoke_session.stale_build_reason(frontend) is None

    for name in generated:
        os.utime(frontend / name, (3000, 3000))
    assert smoke_session.stale_build_reason(frontend) is None

    os.utime(frontend / "package-lock.json", (3000, 3000))
    assert smoke_session.stale_build_reason(frontend) == "package-lock.json changed since the last build"


# ----- the browser (runs where playwright and a Chromium are installed) ------------------------
SCRIPTED_PAGES = {
    "/": """<h1>Dashboard</h1><span data-testid="health-status"></span>{extra}
<script>fetch("/api/health").then(r => r.json()).then(j => {{ show("health-status", j.status); }});</script>""",
    "/ping-pong": """<h1>Ping-pong</h1><p data-testid="ping-state"></p>
<button data-testid="toggle-button">Toggle</button>
<script>
const render = j => show("ping-state", j.state.toUpperCase());
fetch("/api/ping").then(r => r.json()).then(render);
document.querySelector("[data-testid=toggle-button]").onclick = () =>
  fetch("/api/ping/toggle", {{method: "POST"}}).then(r => r.json()).then(render);
</script>""",
    "/reconciliation": """<h1>Reconciliation</h1><dd data-testid="stats-matched"></dd>
<script>setTimeout(() => show("stats-matched", "0"), 50);</script>""",
}


class ScriptedApp(ImitationApp):
    """The imitation with pages that fetch their data like the real ones, for a real Chromium."""

    extra = ""

    def answer(self, method: str, path: str, headers: Any) -> tuple[int, str, str, dict[str, str]]:
        if method == "GET" and path in SCRIPTED_PAGES:
            head = '<link rel="icon" href="data:,"><script>const show = (id, text) => '
            head += "document.querySelector(`[data-testid=${id}]`).textContent = text;</script>"
            body = SCRIPTED_PAGES[path].format(extra=self.extra)
            return 200, "text/html; charset=utf-8", f"<html><head>{head}</head><body>{body}</body></html>", {}
        return super().answer(method, path, headers)


@pytest.fixture
def scripted() -> Iterator[ScriptedApp]:
    pytest.importorskip("playwright", reason="the smoke dependency group (playwright) is not installed here")
    if smoke.find_chromium()[0] is None:
        pytest.skip("no Chromium on this machine (CHROMIUM_PATH, chromium, chromium-browser)")
    app = ScriptedApp()
    app.thread.start()
    yield app
    app.server.shutdown()
    app.server.server_close()


@pytest.mark.parametrize("mode", ["prod", "staging"])
def test_the_browser_opens_every_page_and_clicks_toggle_only_when_allowed(scripted, tmp_path, mode):
    target = smoke.Target(scripted.url, origin=scripted.url, timeout=10)
    report, lines = run_in_process(target, mode, screenshots=tmp_path)
    assert report.ok, "\n".join(lines)
    assert sorted(path.name for path in tmp_path.glob("*.png")) == [
        "dashboard.png",
        "ping-pong.png",
        "reconciliation.png",
    ]
    posts = [request for request in scripted.requests if request[0] == "POST"]
    if mode == "prod":
        assert posts == []
        assert any("browser ping-pong" in text and "ping-state PING" in text for text in lines)
    else:
        assert len(posts) == 4  # the HTTP toggle check twice, then Toggle clicked twice
        assert any("clicked Toggle: PING -> PONG -> PING" in text for text in lines)
    assert scripted.state == "ping"


def _non_loopback_address() -> str | None:
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # UDP: picks the outgoing interface, sends nothing
        address = probe.getsockname()[0]
        return None if address.startswith("127.") else address
    return None


def test_the_browser_reaches_nothing_but_the_app(scripted, tmp_path):
    """A page that loads from this machine's own non-loopback address fails with a console error."""
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to try")
    outside = ImitationApp()
    outside.server = ThreadingHTTPServer(("0.0.0.0", 0), outside.server.RequestHandlerClass)  # noqa: S104
    port = outside.server.server_address[1]
    thread = threading.Thread(target=outside.server.serve_forever, daemon=True)
    thread.start()
    try:
        scripted.extra = f'<img src="http://{address}:{port}/pixel">'
        target = smoke.Target(scripted.url, origin=scripted.url, timeout=10)
        report, lines = run_in_process(target, "prod", screenshots=tmp_path)
    finally:
        outside.server.shutdown()
        outside.server.server_close()
    assert outside.requests == []
    assert report.failures[0].startswith(f"browser dashboard: {scripted.url}/: 1 console error(s)")
    assert "ERR_NAME_NOT_RESOLVED" in report.failures[0], "\n".join(lines)


def oldest_supported_python() -> str | None:
    """A python3.9 — what a deploy runner's bare `python3` may be — if one is installed here."""
    candidates = sorted(str(path) for path in Path.home().glob(".pyenv/versions/3.9*/bin/python3.9"))
    found = shutil.which("python3.9")
    if found and "/shims/" not in found:  # a pyenv shim answers only when 3.9 is the active version
        candidates.append(found)
    return candidates[0] if candidates else None


def test_the_command_line_runs_on_python39_as_the_deploy_script_calls_it() -> None:
    """`scripts/smoke_test.sh` runs `python3 -m noxlib.smoke` with whatever python3 the runner has."""
    python = oldest_supported_python()
    if python is None:
        pytest.skip("no python3.9 installed (pyenv install 3.9) to run the smoke CLI on")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    result = subprocess.run(
        [python, "-m", "noxlib.smoke", "--base-url", f"http://127.0.0.1:{port}", "--no-browser", "--timeout", "2"],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=False,
        env={key: value for key, value in os.environ.items() if key != "PYENV_VERSION"},
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "smoke: 0 passed" in result.stdout
    assert "connection refused" in result.stdout
