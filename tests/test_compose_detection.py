"""Choosing the container engine and the backend, and reading what the engine describes.

Here no engine answers: DOCKER_HOST names a socket nobody listens on, and `docker`/`podman` on
PATH are tests/faults/fake_engine.py (the CLIs compose would run). An engine that answers, through
DOCKER_HOST or a docker context, is tested on a real one in tests/test_compose.py. Reading an
inspected container is pure.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from noxlib.core.errors import ServiceError, UserError
from noxlib.services import select_backend
from noxlib.services.compose import ComposeServices, Container, detect_runtime
from noxlib.services.native import NativeServices
from tests.runs import run_nox

FAKE_ENGINE = Path(__file__).resolve().parent / "faults" / "fake_engine.py"


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
    # Only the fake engines: the machine's own docker CLI must not be found, nor its engine or contexts.
    monkeypatch.setenv("PATH", str(fake.bin))
    monkeypatch.setenv("FAKE_ENGINE_LOG", str(fake.log))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nobody-listens.sock")
    monkeypatch.setenv("FAKE_ENGINE_SOCKET", f"{tmp_path}/nobody-listens-either.sock")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    for key in ("CONTAINER_RUNTIME", "FR_SERVICES"):
        monkeypatch.delenv(key, raising=False)
    return fake


def assert_one_line(error: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(error.value)
    assert message
    assert "\n" not in message
    return message


# ----- choosing the engine and the backend -------------------------------------------------
def test_container_runtime_podman_picks_podman(engines, monkeypatch):
    engines.install("docker")
    engines.install("podman")
    monkeypatch.setenv("CONTAINER_RUNTIME", "podman")
    monkeypatch.setenv("FR_SERVICES", "compose")
    assert detect_runtime() == "podman"
    backend = select_backend()
    assert isinstance(backend, ComposeServices)
    assert backend.command("up")[:2] == ["podman", "compose"]
    assert engines.calls() == []


def test_docker_is_asked_through_its_api_and_podman_through_its_cli(engines):
    """docker's CLI is never run to detect (the SDK asks the engine); podman's names its API socket."""
    engines.install("docker")
    engines.install("podman")
    assert detect_runtime() is None
    assert engines.calls() == [["podman", "info", "--format", "{{.Host.RemoteSocket.Path}}"]]


def test_a_podman_that_names_no_api_socket_does_not_answer(engines, monkeypatch):
    engines.install("podman")
    monkeypatch.setenv("FAKE_ENGINE_SOCKET", "")
    assert detect_runtime() is None


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
    monkeypatch.setenv("FR_SERVICES", "auto")
    assert isinstance(select_backend(), NativeServices)


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


# ----- reading what the engine describes ----------------------------------------------------
# The parts of `GET /containers/ID/json` (the SDK's Container.attrs) the backend reads.
INSPECTED = {
    "Id": "abc123",
    "Config": {
        "Labels": {"com.docker.compose.service": "postgres", "com.docker.compose.project": "fr",
                   "com.docker.compose.config-hash": "f00d"},
        "Env": ["POSTGRES_PASSWORD=a=b", "EMPTY=", "PATH=/bin"],
    },
    "State": {"Status": "running", "Health": {"Status": "healthy"}},
    "NetworkSettings": {"Ports": {
        "5432/tcp": [{"HostIp": "127.0.0.1", "HostPort": "32790"}, {"HostIp": "::1", "HostPort": "32790"}],
        "9001/tcp": None,
    }},
}  # fmt: skip


def test_an_inspected_container_is_read_for_ports_health_hash_and_environment():
    container = Container.from_inspect(INSPECTED)
    assert (container.service, container.config_hash) == ("postgres", "f00d")
    assert container.ports == {5432: 32790}, "an exposed, unpublished port is not a host port"
    assert container.environment == {"POSTGRES_PASSWORD": "a=b", "EMPTY": "", "PATH": "/bin"}
    assert container.ready


@pytest.mark.parametrize(
    ("state", "health", "ready"),
    [("running", None, True), ("running", "starting", False), ("exited", None, False), ("running", "unhealthy", False)],
)
def test_a_container_is_ready_when_running_and_not_unhealthy(state, health, ready):
    inspected = dict(INSPECTED, State={"Status": state, **({"Health": {"Status": health}} if health else {})})
    assert Container.from_inspect(inspected).ready is ready


def test_a_failing_engine_command_is_one_line_naming_the_verb(engines):
    engines.install("docker")
    backend = ComposeServices("docker")
    with pytest.raises(ServiceError) as error:
        backend.start()
    assert (
        assert_one_line(error)
        == "`docker compose up` failed: fake docker: compose --profile is not imitated; use a real engine"
    )
    assert backend.healthy() is False, "an engine that cannot list the containers means: not healthy"
