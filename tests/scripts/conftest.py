"""Stand-ins for what the deploy scripts talk to: the Dokploy API and a deployed app's health URL.

Both are real HTTP servers on 127.0.0.1 (ephemeral port, a thread each), so the scripts run
exactly as in CI — curl, headers, status codes — with no mock inside the scripts themselves.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "scripts"


@dataclass
class Request:
    method: str
    endpoint: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Reply:
    status: int
    body: Any

    def encode(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


class StandIn:
    """A threaded HTTP server whose `handle(request) -> Reply` subclasses define."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                request = Request(
                    method=self.command,
                    endpoint=url.path.rsplit("/", 1)[-1],
                    query={key: values[0] for key, values in parse_qs(url.query).items()},
                    headers={key.lower(): value for key, value in self.headers.items()},
                    body=body,
                )
                stand_in.requests.append(request)
                reply = stand_in.handle(request)
                payload = reply.encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                """Keep pytest output clean."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def handle(self, request: Request) -> Reply:
        raise NotImplementedError

    def __enter__(self) -> StandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


API_KEY = "dk_live_9f8e7d6c5b4a39281706"
POSTGRES_PASSWORD = "pg-Sup3r-s3cret-pw"
S3_SECRET = "s3-very-secret-value-XYZ"
DATABASE_URL = "postgresql+psycopg://app:db-url-password-42@postgres:5432/finance_report"


@dataclass
class Compose:
    composeId: str
    name: str
    env: str = ""
    environmentId: str = "env-staging"
    sourceType: str = "github"
    repository: str = "finance_report"
    owner: str = "example"
    branch: str = "main"
    composePath: str = "docker-compose.yml"
    status: str = "idle"

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class FakeDokploy(StandIn):
    """Plays the Dokploy API: compose.one/update/deploy/create/stop/delete and environment.one.

    `failures` maps an endpoint to the reply it gives instead of working (e.g. a 500); the 500
    body echoes the compose env and the key, as a careless server might, to prove redaction.
    """

    composes: dict[str, Compose] = field(default_factory=dict)
    failures: dict[str, tuple[int, Any]] = field(default_factory=dict)
    deployed: list[str] = field(default_factory=list)
    created: int = 0

    def __post_init__(self) -> None:
        StandIn.__init__(self)

    def handle(self, request: Request) -> Reply:
        if request.headers.get("x-api-key") != API_KEY:
            return Reply(401, {"message": "Unauthorized"})
        if request.endpoint in self.failures:
            return Reply(*self.failures[request.endpoint])
        body = request.body if isinstance(request.body, dict) else {}
        compose_id = request.query.get("composeId") or body.get("composeId", "")
        match request.method, request.endpoint:
            case "GET", "compose.one":
                if compose_id not in self.composes:
                    return Reply(404, {"message": f"Compose {compose_id} not found"})
                return Reply(200, self.composes[compose_id].as_json())
            case "POST", "compose.update":
                compose = self.composes[compose_id]
                for key, value in body.items():
                    setattr(compose, key, value)
                return Reply(200, compose.as_json())
            case "POST", "compose.deploy":
                self.deployed.append(compose_id)
                return Reply(200, True)
            case "GET", "environment.one":
                environment = request.query.get("environmentId")
                listed = [
                    {"composeId": c.composeId, "name": c.name}
                    for c in self.composes.values()
                    if c.environmentId == environment
                ]
                return Reply(200, {"environmentId": environment, "compose": listed})
            case "POST", "compose.create":
                self.created += 1
                new = Compose(
                    composeId=f"created-{self.created}",
                    name=body["name"],
                    environmentId=body["environmentId"],
                    sourceType="raw",
                    repository="",
                    owner="",
                    branch="",
                )
                self.composes[new.composeId] = new
                return Reply(200, new.as_json())
            case "POST", "compose.stop":
                self.composes[compose_id].status = "stopped"
                return Reply(200, True)
            case "POST", "compose.delete":
                del self.composes[compose_id]
                return Reply(200, True)
        return Reply(404, {"message": f"no route {request.method} {request.endpoint}"})

    def calls(self) -> list[str]:
        return [request.endpoint for request in self.requests]

    # What tests need to know about the secrets this stand-in holds.
    api_key = API_KEY
    postgres_password = POSTGRES_PASSWORD
    s3_secret = S3_SECRET
    database_url = DATABASE_URL
    all_secrets = (API_KEY, POSTGRES_PASSWORD, S3_SECRET, DATABASE_URL, "db-url-password-42")


class FakeApp(StandIn):
    """Plays a deployed backend's /api/health: replies come from a script, last one repeats."""

    def __init__(self, replies: list[tuple[int, Any]]) -> None:
        super().__init__()
        self.replies = replies

    def handle(self, request: Request) -> Reply:
        index = min(len(self.requests) - 1, len(self.replies) - 1)
        return Reply(*self.replies[index])


def health_reply(status: str = "healthy", git_sha: str | None = "0123456789abcdef") -> dict[str, Any]:
    """A body shaped like the backend's GET /api/health."""
    return {
        "status": status,
        "timestamp": "2026-01-01T00:00:00Z",
        "git_sha": git_sha,
        "checks": {"database": {"status": "ok"}, "redis": {"status": "ok"}, "s3": {"status": "ok"}},
    }


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def _run_script(name: str, *args: str, env: dict[str, str] | None = None) -> Result:
    """Run scripts/<name> with a clean environment: only PATH/HOME plus what the test passes."""
    base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    completed = subprocess.run(
        ["bash", str(SCRIPTS / name), *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)


@pytest.fixture
def run_script() -> Callable[..., Result]:
    """run_script(name, *args, env={...}) → Result(returncode, stdout, stderr)."""
    return _run_script


@pytest.fixture
def health() -> Callable[..., dict[str, Any]]:
    """health(status="healthy", git_sha=...) → a health JSON body."""
    return health_reply


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released): a real dead endpoint."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def dokploy() -> Iterator[FakeDokploy]:
    env = "\n".join(
        [
            "# staging settings, edited by hand in Dokploy",
            f"POSTGRES_PASSWORD={POSTGRES_PASSWORD}",
            f'S3_SECRET_KEY="{S3_SECRET}"',
            f"DATABASE_URL={DATABASE_URL}",
            "NEXT_PUBLIC_APP_URL=https://old.example.com",
            "IMAGE_TAG=old-tag",
            "BASE_CURRENCY=SGD",
        ]
    )
    with FakeDokploy(
        composes={
            "cmp-staging": Compose("cmp-staging", "finance-report-staging", env=env),
            "cmp-template": Compose(
                "cmp-template",
                "finance-report-preview-template",
                env=f"POSTGRES_PASSWORD={POSTGRES_PASSWORD}\nBASE_CURRENCY=SGD\n",
                environmentId="env-templates",
            ),
        }
    ) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def app_server() -> Iterator[Callable[[list[tuple[int, Any]]], FakeApp]]:
    """app_server([(status, body), ...]) → a running app whose last reply repeats."""
    started: list[FakeApp] = []

    def start(replies: list[tuple[int, Any]]) -> FakeApp:
        server = FakeApp(replies)
        server.__enter__()
        started.append(server)
        return server

    yield start
    for server in started:
        server.__exit__()
