"""The compose backend and backend selection, driven through a stand-in engine CLI.

No container engine can run on the test machine, so `docker`/`podman` on PATH are
tests/faults/fake_engine.py: it records every command line and answers `compose port` the way
the real CLI prints it. What is tested is the commands noxlib sends and how it reads the answers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from noxlib.errors import ServiceError, UserError
from noxlib.paths import REPO_ROOT
from noxlib.services import select_backend
from noxlib.services.compose import ComposeServices, detect_runtime, parse_port
from noxlib.services.native import NativeServices
from tests.runs import run_nox

FAKE_ENGINE = Path(__file__).resolve().parent / "faults" / "fake_engine.py"
PREFIX = ["compose", "-f", str(REPO_ROOT / "docker-compose.yml"), "-p", "finance_report_infra", "--profile", "infra"]


class FakeEngines:
    """A bin directory that is the whole PATH, holding only the engines a test installs."""

    def __init__(self, directory: Path) -> None:
        self.bin = directory / "bin"
        self.bin.mkdir()
        self.log = directory / "calls.jsonl"

    def install(self, name: str = "docker") -> None:
        wrapper = self.bin / name
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_ENGINE}" "$0" "$@"\n')
        wrapper.chmod(0o755)

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
def engines(tmp_path, monkeypatch) -> FakeEngines:
    fake = FakeEngines(tmp_path)
    # Only the fake engines: the machine's own docker CLI (no daemon here) must not be found.
    monkeypatch.setenv("PATH", str(fake.bin))
    monkeypatch.setenv("FAKE_ENGINE_LOG", str(fake.log))
    for key in ("CONTAINER_RUNTIME", "FR_SERVICES", "POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    return fake


def assert_one_line(error: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(error.value)
    assert message
    assert "\n" not in message
    return message


# ----- commands ----------------------------------------------------------------------------
def test_start_brings_the_infra_profile_up_and_waits(engines):
    engines.install("docker")
    ComposeServices("docker").start()
    assert engines.calls() == [["docker", *PREFIX, "up", "--detach", "--wait"]]


def test_stop_takes_the_project_down(engines):
    engines.install("docker")
    ComposeServices("docker").stop()
    assert engines.calls() == [["docker", *PREFIX, "down", "--remove-orphans"]]


def test_urls_read_each_host_port_from_compose_port(engines, monkeypatch):
    engines.install("docker")
    monkeypatch.setenv("POSTGRES_PASSWORD", "from-env")
    urls = ComposeServices("docker").urls()
    assert [call[len(PREFIX) + 1 :] for call in engines.calls()] == [
        ["port", "postgres", "5432"],
        ["port", "redis", "6379"],
        ["port", "minio", "9000"],
    ]
    assert urls.ports() == {"postgres": 49153, "redis": 49154, "s3": 49155}
    assert urls.database_url() == "postgresql://postgres:from-env@127.0.0.1:49153/postgres"
    assert urls.redis_url == "redis://127.0.0.1:49154/0"
    assert urls.s3_endpoint == "http://127.0.0.1:49155"


def test_an_unpublished_port_is_a_clear_service_error(engines, monkeypatch):
    engines.install("docker")
    monkeypatch.setenv("FAKE_ENGINE_PORT_REDIS", "")
    with pytest.raises(ServiceError) as error:
        ComposeServices("docker").urls()
    assert "could not read a host port" in assert_one_line(error)


@pytest.mark.parametrize(
    ("running", "healthy"),
    [("postgres redis minio", True), ("postgres minio", False), ("", False)],
)
def test_healthy_means_every_service_is_running(engines, monkeypatch, running, healthy):
    engines.install("docker")
    monkeypatch.setenv("FAKE_ENGINE_RUNNING", running)
    assert ComposeServices("docker").healthy() is healthy
    assert engines.calls() == [["docker", *PREFIX, "ps", "--status", "running", "--services"]]


def test_a_failing_command_reports_the_engines_last_line(engines, monkeypatch):
    engines.install("docker")
    monkeypatch.setenv("FAKE_ENGINE_UP_EXIT", "1")
    with pytest.raises(ServiceError) as error:
        ComposeServices("docker").start()
    assert assert_one_line(error) == "`docker compose up --detach --wait` failed: " + (
        "Error response from daemon: port is already allocated"
    )


# ----- parse_port --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("printed", "port"),
    [
        ("127.0.0.1:49153\n", 49153),
        ("0.0.0.0:1234", 1234),
        ("[::1]:1234", 1234),
        ("[::]:5432\n", 5432),
        ("0.0.0.0:1234\n[::]:1235\n", 1235),  # one line per address family; any will do
    ],
)
def test_parse_port_reads_the_host_port(printed, port):
    assert parse_port(printed) == port


@pytest.mark.parametrize("printed", ["", "\n", "junk", "127.0.0.1:", "[::1]:abc", "no such service: minio"])
def test_parse_port_rejects_junk(printed):
    with pytest.raises(ServiceError) as error:
        parse_port(printed)
    assert "could not read a host port" in assert_one_line(error)


# ----- choosing the engine and the backend -------------------------------------------------
def test_container_runtime_podman_picks_podman(engines, monkeypatch):
    engines.install("docker")
    engines.install("podman")
    monkeypatch.setenv("CONTAINER_RUNTIME", "podman")
    monkeypatch.setenv("FR_SERVICES", "compose")
    assert detect_runtime() == "podman"
    backend = select_backend()
    assert isinstance(backend, ComposeServices)
    backend.start()
    assert engines.calls() == [["podman", *PREFIX, "up", "--detach", "--wait"]]


def test_auto_detection_asks_docker_first(engines):
    engines.install("docker")
    engines.install("podman")
    assert detect_runtime() == "docker"
    assert engines.calls() == [["docker", "info"]]


def test_auto_detection_uses_podman_when_docker_does_not_answer(engines, monkeypatch):
    engines.install("docker")
    engines.install("podman")
    monkeypatch.setenv("FAKE_ENGINE_INFO_EXIT", "1")
    # Both fakes read the same variable, so neither answers: detection must ask both.
    assert detect_runtime() is None
    assert engines.calls() == [["docker", "info"], ["podman", "info"]]


@pytest.mark.parametrize(
    ("runtime", "install", "expected"),
    [
        pytest.param("lxc", [], "is not supported; use docker or podman", id="unknown"),
        pytest.param("podman", ["docker"], "podman is not on PATH", id="missing"),
    ],
)
def test_a_bad_container_runtime_is_a_one_line_user_error(engines, monkeypatch, runtime, install, expected):
    for name in install:
        engines.install(name)
    monkeypatch.setenv("CONTAINER_RUNTIME", runtime)
    with pytest.raises(UserError) as error:
        detect_runtime()
    assert expected in assert_one_line(error)
    assert engines.calls() == []


@pytest.mark.parametrize(
    "installed",
    [pytest.param([], id="no-engine-installed"), pytest.param(["docker", "podman"], id="no-engine-answers")],
)
def test_auto_without_an_answering_engine_is_native(engines, monkeypatch, installed):
    for name in installed:
        engines.install(name)
    monkeypatch.setenv("FAKE_ENGINE_INFO_EXIT", "1")
    monkeypatch.setenv("FR_SERVICES", "auto")
    assert isinstance(select_backend(), NativeServices)


def test_auto_with_an_answering_engine_is_compose(engines, monkeypatch):
    engines.install("docker")
    monkeypatch.setenv("FR_SERVICES", "auto")
    backend = select_backend()
    assert isinstance(backend, ComposeServices)
    assert backend.runtime == "docker"


def test_fr_services_compose_without_an_engine_is_a_one_line_user_error(engines, monkeypatch):
    monkeypatch.setenv("FR_SERVICES", "compose")
    with pytest.raises(UserError) as error:
        select_backend()
    assert "neither docker nor podman answers" in assert_one_line(error)


def test_fr_services_bogus_is_a_one_line_user_error(engines, monkeypatch):
    monkeypatch.setenv("FR_SERVICES", "bogus")
    with pytest.raises(UserError) as error:
        select_backend()
    assert assert_one_line(error).startswith("FR_SERVICES='bogus' is not a services backend")
    assert engines.calls() == []


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({"FR_SERVICES": "bogus"}, "FR_SERVICES='bogus' is not a services backend", id="bogus-backend"),
        pytest.param(
            {"FR_SERVICES": "compose", "CONTAINER_RUNTIME": "lxc"},
            "CONTAINER_RUNTIME='lxc' is not supported",
            id="unknown-runtime",
        ),
    ],
)
def test_nox_reports_a_bad_choice_in_one_line(env, expected):
    """The same mistakes through `nox -s infra`: the sentence, and no traceback."""
    result = run_nox("-s", "infra", timeout=120, **env)
    assert result.returncode != 0
    assert "Traceback" not in result.stdout
    lines = [line for line in result.stdout.splitlines() if expected in line]
    assert len(lines) == 1, result.stdout
    assert lines[0].startswith(f"nox > Session infra aborted: {expected}")
