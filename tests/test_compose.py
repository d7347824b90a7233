"""The compose backend, the compose file and the images, on a real container engine.

Whenever docker (or podman) answers — Docker Desktop, OrbStack, a Linux engine, GitHub's runners,
the container lab on the team's machines — these tests run against it: whole
`nox -s test|infra|down` runs with FR_SERVICES=compose, hand-run `docker compose` commands beside
them, image builds and the full stack under the smoke checks; without an engine the module skips
in one line saying how to get one. Each test uses a compose project of its own
(COMPOSE_PROJECT_NAME), host ports of its own, images of its own (IMAGE_PREFIX, IMAGE_TAG) and a
state directory of its own, so it never meets the developer's stack or images, and removes only
its own project (volumes included) and images. Engine detection and parsing are tested in
tests/test_compose_detection.py.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import tomllib
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from noxlib.core.errors import UserError
from noxlib.core.paths import REPO_ROOT
from noxlib.run.leases import LeaseRegistry
from noxlib.services.compose import ComposeServices, detect_runtime
from tests.runs import PROBE, output, run_nox, start_run

# ===== the real engine =====================================================================


def _answering_engine() -> str | None:
    try:
        return detect_runtime()
    except UserError:
        return None


ENGINE = _answering_engine()
NO_ENGINE = (
    "no container engine answers (DOCKER_HOST or the docker context, podman's socket): start Docker, "
    "or on the team's machines "
    '`eval "$(bash ../shared/container-lab/setup.sh env)"`; then `uvx nox -s compose_test`'
)
if ENGINE is None:
    pytest.skip(NO_ENGINE, allow_module_level=True)

INFRA_SERVICES = {"postgres", "redis", "minio", "minio-init"}
APP_SERVICES = {"migrate", "backend", "frontend"}
HOST_PORT_VARIABLES = ("POSTGRES_HOST_PORT", "REDIS_HOST_PORT", "MINIO_HOST_PORT", "MINIO_CONSOLE_HOST_PORT")
# What a developer's own `docker compose --profile app build` tags: no test may move these.
DEVELOPER_IMAGES = tuple(f"ghcr.io/finance-report/finance-report-{app}:local" for app in ("backend", "frontend"))
TEST_IMAGE_PREFIX = "localhost/frtest"
_projects = itertools.count()


@dataclass
class Stack:
    """One compose project and one nox state directory, both this test's alone."""

    project: str
    state: Path
    env: dict[str, str]

    def compose(self, *args: str, timeout: float = 600, **extra: str) -> subprocess.CompletedProcess[str]:
        """`docker compose ARGS` as typed in the repository root, in this test's project."""
        assert ENGINE
        return subprocess.run(
            [ENGINE, "compose", *args],
            cwd=REPO_ROOT,
            env={**os.environ, **self.env, **extra},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def engine(self, *args: str) -> str:
        assert ENGINE
        result = subprocess.run([ENGINE, *args], capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def containers(self, *, running: bool = True) -> dict[str, str]:
        """{service: container id} of this project's containers (running ones only by default)."""
        filters = ["--filter", f"label=com.docker.compose.project={self.project}"]
        if running:
            filters += ["--filter", "status=running"]
        listed = self.engine("ps", "--all", *filters, "--format", '{{.ID}} {{.Label "com.docker.compose.service"}}')
        return {service: cid for cid, _, service in (line.partition(" ") for line in listed.splitlines())}

    def volumes(self) -> set[str]:
        listed = self.engine("volume", "ls", "--filter", f"label=com.docker.compose.project={self.project}", "-q")
        return set(listed.split())

    def nox(self, *args: str, timeout: float = 600, **extra: str) -> subprocess.CompletedProcess[str]:
        return run_nox(*args, timeout=timeout, **{**self.env, **extra})

    def registry(self) -> LeaseRegistry:
        return LeaseRegistry(self.state)

    def backend(self, **extra: str) -> ComposeServices:
        assert ENGINE
        return ComposeServices(ENGINE, {**os.environ, **self.env, **extra})

    def images(self) -> list[str]:
        """The images this test's builds tag (its own prefix and tag)."""
        return [f"{TEST_IMAGE_PREFIX}/finance-report-{app}:{self.project}" for app in ("backend", "frontend")]

    def remove_images(self) -> None:
        """Only what this test built, by its tags; a layer another image shares stays."""
        assert ENGINE
        for image in self.images():
            subprocess.run([ENGINE, "image", "rm", image], capture_output=True, timeout=120, check=False)


def image_id(reference: str) -> str | None:
    assert ENGINE
    found = subprocess.run([ENGINE, "image", "inspect", "--format", "{{.Id}}", reference],
                           capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    return found.stdout.strip() if found.returncode == 0 else None


def dangling_images() -> set[str]:
    assert ENGINE
    listed = subprocess.run([ENGINE, "images", "--quiet", "--no-trunc", "--filter", "dangling=true"],
                            capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    return set(listed.stdout.split())


@pytest.fixture
def stack() -> Iterator[Stack]:
    project = f"frtest-{os.getpid()}-{next(_projects)}-{uuid.uuid4().hex[:4]}"
    # Under root the native backend's rules apply to FR_CACHE_DIR too: an enterable directory.
    state = Path(tempfile.mkdtemp(prefix="fr-compose-test-", dir="/var/tmp"))
    state.chmod(0o755)
    env = {
        "FR_SERVICES": "compose",
        "FR_CACHE_DIR": str(state),
        "COMPOSE_PROJECT_NAME": project,
        # Stacks of parallel tests (and the developer's) must not meet on the fixed default ports.
        **{variable: str(free_port()) for variable in HOST_PORT_VARIABLES},
        "IMAGE_PREFIX": TEST_IMAGE_PREFIX,
        "IMAGE_TAG": project,
    }
    made = Stack(project, state, env)
    try:
        yield made
    finally:
        # Everything of this project, its volumes included: the project name is this test's own.
        made.compose("--profile", "infra", "--profile", "app", "down", "--volumes", "--remove-orphans")
        made.remove_images()
        shutil.rmtree(state, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def probe_run(stack: Stack, branch: str, tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """`nox -s test` on the probe: it uses the run's database, bucket and Redis, then cleans up."""
    return stack.nox("-s", "test", "--", "--no-cov", "-n", "1", "-p", "no:cacheprovider", str(PROBE),
                     BRANCH_NAME=branch, **extra)  # fmt: skip


def wait_until_inside(proc: subprocess.Popen, ready_dir: Path, output, timeout: float = 900) -> None:
    """Until the probe is inside its test; a cold start pulls and initialises every service."""
    deadline = time.monotonic() + timeout
    while not any(ready_dir.iterdir()):
        assert proc.poll() is None, output()
        assert time.monotonic() < deadline, output()
        time.sleep(0.5)


# ----- start, join, last out ---------------------------------------------------------------
def test_two_namespaces_share_the_stack_and_the_last_out_stops_it(stack, tmp_path):
    first = start_run("cmp-first", tmp_path, sleep=3600, workers=1, **stack.env)
    try:
        wait_until_inside(first, tmp_path / "ready-cmp-first", output=lambda: output("cmp-first", tmp_path))
        assert set(stack.containers()) == INFRA_SERVICES
        second = probe_run(stack, "cmp-second", tmp_path)
        assert second.returncode == 0, second.stdout
        assert "compose (joined)" in second.stdout
        # The first run still holds its lease: the second must not have stopped anything.
        assert set(stack.containers()) == INFRA_SERVICES
    finally:
        os.killpg(first.pid, 2)  # Ctrl+C ends the sleeping probe; cleanup still runs
    assert first.wait(timeout=300) == 130, output("cmp-first", tmp_path)
    log = output("cmp-first", tmp_path)
    assert "compose (started)" in log
    assert "services   stopped (last lease out)" in log
    assert stack.containers() == {}
    assert stack.volumes(), "stopping keeps the data volumes"


# ----- a hand-run stack and nox's (issue 13 item 1) ------------------------------------------
def test_a_hand_started_stack_is_joined_and_left_running(stack, tmp_path):
    """The compose file's own instructions, then nox: one stack, no container-name clash."""
    hand = stack.compose("--profile", "infra", "up", "--detach", "--wait")
    assert hand.returncode == 0, hand.stderr
    started = stack.containers()
    result = probe_run(stack, "cmp-hand", tmp_path)
    assert result.returncode == 0, result.stdout
    assert "compose (joined)" in result.stdout
    assert "Conflict" not in result.stdout
    assert stack.containers() == started, "nox must neither recreate nor stop what a person started"


def use_a_docker_context(stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The engine behind a docker context instead of DOCKER_HOST, as Docker Desktop, OrbStack and colima set it.

    The context lives in a DOCKER_CONFIG of this test's own, so the person's contexts stay as they
    are; this process and the nox runs given the returned variables find the engine only through it.
    """
    endpoint = stack.engine("context", "inspect", "--format", "{{.Endpoints.docker.Host}}").strip()
    config = tmp_path / "docker-config"
    config.mkdir()
    # The person's own CLI plugins (compose on Docker Desktop) stay found from this config.
    plugins = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "cli-plugins"
    (config / "config.json").write_text(json.dumps({"cliPluginsExtraDirs": [str(plugins)]}))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    stack.engine("context", "create", "fr-test-engine", "--docker", f"host={endpoint}")
    monkeypatch.setenv("DOCKER_CONTEXT", "fr-test-engine")
    assert detect_runtime() == "docker", "DOCKER_CONTEXT names the engine"
    monkeypatch.delenv("DOCKER_CONTEXT")
    stack.engine("context", "use", "fr-test-engine")
    assert detect_runtime() == "docker", "`docker context use` names the engine"
    return {"DOCKER_HOST": "", "DOCKER_CONFIG": str(config)}


def test_nox_and_a_hand_run_show_the_same_project_through_a_docker_context(stack, tmp_path, monkeypatch):
    """What nox started is what `docker compose ps` in the checkout lists (and can stop).

    Both reach the engine through a docker context (issue 21 item 7): compose's CLI for `up` and
    `down`, the docker SDK for the containers' ports, health and credentials.
    """
    context = use_a_docker_context(stack, tmp_path, monkeypatch)
    # The engine's CLI, logging each command nox gives it: only compose's verbs, no `info`,
    # `inspect` or `compose ps` (the SDK asks the engine those without a process each).
    shown = tmp_path / "bin"
    shown.mkdir()
    (shown / "docker").write_text(
        f'#!/bin/sh\necho "$*" >> {tmp_path}/docker.log\nexec {shutil.which("docker")} "$@"\n'
    )
    (shown / "docker").chmod(0o755)
    result = stack.nox("-s", "infra", timeout=600, PATH=f"{shown}:{os.environ['PATH']}", **context)
    assert result.returncode == 0, result.stdout
    assert "compose (started)" in result.stdout
    calls = (tmp_path / "docker.log").read_text().splitlines()
    assert any(" up " in f" {call} " for call in calls), calls
    assert all(call.startswith("compose ") and " ps " not in f" {call} " for call in calls), calls
    listed = stack.compose("--profile", "infra", "ps", "--services", "--status", "running")
    assert set(listed.stdout.split()) == INFRA_SERVICES
    assert stack.backend().healthy(), "the SDK reads the containers through the context"
    assert stack.backend().urls().ports()["postgres"] == int(stack.env["POSTGRES_HOST_PORT"])
    # Redis's image declares VOLUME /data: unless a named volume covers it, every container
    # leaves an anonymous volume behind after `down`.
    mounts = json.loads(stack.engine("inspect", "--format", "{{json .Mounts}}", stack.containers()["redis"]))
    (data,) = [mount for mount in mounts if mount["Destination"] == "/data"]
    assert data["Name"] == f"{stack.project}_redis-data", data
    down = stack.nox("-s", "down", **context)
    assert down.returncode == 0, down.stdout
    assert stack.containers() == {}
    assert stack.containers(running=False) == {}, "down removes the containers"
    assert stack.volumes() == {f"{stack.project}_{name}" for name in ("postgres-data", "redis-data", "minio-data")}


# ----- a killed or restarted container, stable ports (issue 21 item 4) ----------------------
def test_a_killed_container_is_restarted_on_the_same_host_port(stack, tmp_path):
    """A database client's saved address outlives restarts: the host ports are fixed, not picked."""
    infra = stack.nox("-s", "infra")
    assert infra.returncode == 0, infra.stdout
    configured = {"postgres": int(stack.env["POSTGRES_HOST_PORT"]), "redis": int(stack.env["REDIS_HOST_PORT"]),
                  "s3": int(stack.env["MINIO_HOST_PORT"])}  # fmt: skip
    assert stack.backend().urls().ports() == configured
    assert f"127.0.0.1:{configured['postgres']}" in infra.stdout, "infra prints the address to connect to"
    restarted = stack.compose("--profile", "infra", "restart", "redis")
    assert restarted.returncode == 0, restarted.stderr
    stack.engine("kill", stack.containers()["redis"])
    assert not stack.backend().healthy()
    result = probe_run(stack, "cmp-killed", tmp_path)
    assert result.returncode == 0, result.stdout
    assert "compose (started)" in result.stdout
    assert stack.backend().urls().ports() == configured
    printed = stack.compose("--profile", "infra", "port", "redis", "6379").stdout.strip()
    assert printed == f"127.0.0.1:{configured['redis']}"
    # Kept services stay kept: the run that restarted redis did not stop them on its way out.
    assert set(stack.containers()) == INFRA_SERVICES


def test_a_taken_host_port_is_one_line_naming_the_variable_that_moves_it(stack):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        result = stack.nox("-s", "infra", POSTGRES_HOST_PORT=str(taken))
    assert result.returncode != 0
    assert "Traceback" not in result.stdout
    (line,) = [line for line in result.stdout.splitlines() if "aborted" in line]
    assert f"host port {taken} for compose service postgres is already in use" in line, result.stdout
    assert "set POSTGRES_HOST_PORT to a free port" in line
    assert stack.containers() == {}, "what the failed start had started is stopped again"


def test_the_minio_console_is_published(stack):
    """Declared only: the lab's S3 stand-in serves no console, MinIO's image does."""
    config = json.loads(stack.compose("--profile", "infra", "config", "--format", "json").stdout)
    published = {(port["target"], port["host_ip"], port["published"]) for port in config["services"]["minio"]["ports"]}
    assert (9001, "127.0.0.1", stack.env["MINIO_CONSOLE_HOST_PORT"]) in published


# ----- credentials from one place (issue 13 item 2) --------------------------------------------
CUSTOM_CREDENTIALS = {
    "POSTGRES_USER": "labowner",
    "POSTGRES_PASSWORD": "pg-secret-from-outside",
    "S3_ACCESS_KEY": "labuser",
    "S3_SECRET_KEY": "labsecret123",
}


def assert_credentials_used(stack: Stack, result: subprocess.CompletedProcess[str], **extra: str) -> None:
    assert result.returncode == 0, result.stdout
    for secret in ("pg-secret-from-outside", "labsecret123"):
        assert secret not in result.stdout, "a secret was printed"
    urls = stack.backend(**extra).urls()
    assert (urls.postgres_user, urls.s3_access_key) == ("labowner", "labuser")
    with psycopg.connect(urls.database_url(), connect_timeout=10) as connection:
        assert connection.execute("SELECT current_user").fetchone() == ("labowner",)


def test_credentials_from_the_environment_reach_the_run(stack, tmp_path):
    infra = stack.nox("-s", "infra", **CUSTOM_CREDENTIALS)
    assert infra.returncode == 0, infra.stdout
    result = probe_run(stack, "cmp-env", tmp_path, **CUSTOM_CREDENTIALS)
    assert "compose (joined)" in result.stdout
    assert_credentials_used(stack, result)


def test_credentials_from_a_dotenv_file_reach_the_run(stack, tmp_path):
    """A .env beside the compose file, as compose reads it; nothing set in the environment."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy(REPO_ROOT / "docker-compose.yml", checkout / "docker-compose.yml")
    (checkout / ".env").write_text("".join(f"{key}={value}\n" for key, value in CUSTOM_CREDENTIALS.items()))
    compose_file = {"COMPOSE_FILE": str(checkout / "docker-compose.yml")}
    hand = stack.compose("--profile", "infra", "up", "--detach", "--wait", **compose_file)
    assert hand.returncode == 0, hand.stderr
    result = probe_run(stack, "cmp-dotenv", tmp_path, **compose_file)
    assert "compose (joined)" in result.stdout
    assert_credentials_used(stack, result, **compose_file)


# ----- a changed .env against a running stack (issue 21 item 2) ------------------------------
def test_a_changed_password_says_how_to_apply_it_and_what_the_old_volume_needs(stack, tmp_path):
    """Joining would silently keep the old password; recreating meets the volume's old one."""
    infra = stack.nox("-s", "infra", POSTGRES_PASSWORD="first-password")
    assert infra.returncode == 0, infra.stdout
    started = stack.containers()

    changed = probe_run(stack, "cmp-changed", tmp_path, POSTGRES_PASSWORD="second-password")
    assert changed.returncode != 0, changed.stdout
    (line,) = [line for line in changed.stdout.splitlines() if "aborted" in line]
    assert "the running postgres container(s)" in line, line
    assert "docker compose --profile infra up" in line, line
    assert stack.containers() == started, "nothing was recreated under the person's feet"

    # The person does what the line says: the container gets the new password, the volume keeps the old.
    applied = stack.compose("--profile", "infra", "up", "--detach", "--wait", POSTGRES_PASSWORD="second-password")
    assert applied.returncode == 0, applied.stderr
    refused = probe_run(stack, "cmp-volume", tmp_path, POSTGRES_PASSWORD="second-password")
    assert refused.returncode != 0, refused.stdout
    (line,) = [line for line in refused.stdout.splitlines() if "aborted" in line]
    assert "the volume keeps the ones it was created with" in line, line
    assert "docker compose --profile infra down --volumes" in line, line
    assert "deletes" in line, line
    assert "died" not in refused.stdout
    for output_text in (changed.stdout, refused.stdout):
        assert "Traceback" not in output_text
        assert "first-password" not in output_text
        assert "second-password" not in output_text


# ----- .env.example copied to .env (issue 21 item 1) -------------------------------------------
def env_example_value(key: str) -> str:
    (value,) = [line.partition("=")[2] for line in (REPO_ROOT / ".env.example").read_text().splitlines()
                if line.startswith(f"{key}=")]  # fmt: skip
    return value


def scratch_checkout(destination: Path) -> Path:
    """The working tree's files (tracked and new, not ignored), as a clone would have them."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO_ROOT, capture_output=True, check=True)  # fmt: skip
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def test_a_copied_env_example_gives_the_app_containers_in_network_addresses(stack, tmp_path):
    """`.env.example` says "copy to .env": its loopback addresses must not reach the containers."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy(REPO_ROOT / "docker-compose.yml", checkout)
    compose_file = {"COMPOSE_FILE": str(checkout / "docker-compose.yml")}
    without = json.loads(stack.compose("--profile", "app", "config", "--format", "json", **compose_file).stdout)
    shutil.copy(REPO_ROOT / ".env.example", checkout / ".env")
    config = json.loads(stack.compose("--profile", "app", "config", "--format", "json", **compose_file).stdout)
    services = config["services"]
    for name in ("backend", "migrate"):
        environment = services[name]["environment"]
        assert "@postgres:5432/" in environment["DATABASE_URL"], environment
        assert environment["REDIS_URL"].startswith("redis://redis:6379/"), environment
        assert environment["S3_ENDPOINT"] == "http://minio:9000", environment
        # One default, the backend's own: what .env.example shows is what an unset value means.
        assert environment["BASE_CURRENCY"] == env_example_value("BASE_CURRENCY")
        assert without["services"][name]["environment"].get("BASE_CURRENCY") is None
    assert services["frontend"]["environment"]["BACKEND_URL"] == "http://backend:8000"
    # A deployment against managed services still sets them, under names a host-side .env lacks.
    deployed = stack.compose("--profile", "app", "config", "--format", "json", **compose_file,
                             APP_DATABASE_URL="postgresql+psycopg://u:p@db.example:5432/app")  # fmt: skip
    deployed_environment = json.loads(deployed.stdout)["services"]["backend"]["environment"]
    assert deployed_environment["DATABASE_URL"].endswith("@db.example:5432/app")


# ----- the whole stack: images, migrations, smoke (issue 13 items 4 and 5) ---------------------
def wait_for_health(url: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - our own loopback URL
                return json.load(answer)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


@pytest.mark.slow
def test_the_whole_stack_comes_up_migrated_and_passes_the_smoke_checks(stack, tmp_path):
    """A fresh checkout whose .env is a copy of .env.example, then one command on fresh volumes:
    images built, schema migrated, frontend → backend → services; then `nox -s down` from a state
    directory that never saw the stack stops all of it, the app included."""
    developer_images = {reference: image_id(reference) for reference in DEVELOPER_IMAGES}
    dangling = dangling_images()
    checkout = scratch_checkout(tmp_path / "checkout")
    shutil.copy(checkout / ".env.example", checkout / ".env")
    frontend_port = free_port()
    # "…and adjust": this test's own frontend port, and the browser origins that go with it.
    with (checkout / ".env").open("a") as dotenv:
        dotenv.write(f"FRONTEND_PORT={frontend_port}\nCORS_ORIGINS=http://127.0.0.1:{frontend_port}\n")
    extra = {"GIT_COMMIT_SHA": "0123456789abcdef", "COMPOSE_FILE": str(checkout / "docker-compose.yml")}
    # The same command the release workflow runs, without --push.
    build = stack.compose("--profile", "app", "build", timeout=1800, **extra)
    assert build.returncode == 0, build.stderr[-4000:]
    up = stack.compose("--profile", "infra", "--profile", "app", "up", "--detach", "--wait", **extra)
    assert up.returncode == 0, up.stderr[-4000:]
    migrate = stack.compose("--profile", "app", "ps", "--all", "--format", "json", "migrate", **extra)
    assert '"ExitCode":0' in migrate.stdout.replace(" ", ""), migrate.stdout

    base_url = f"http://127.0.0.1:{frontend_port}"
    health = wait_for_health(f"{base_url}/api/health")
    assert health["status"] == "healthy", health
    assert health["git_sha"].startswith("0123456"), health
    smoke = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "smoke_test.sh"), base_url, "prod", "--no-browser"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert "cors" in smoke.stdout.lower()

    # `down` with the app up (issue 21 item 3): nothing is left answering 503 without its services.
    down = stack.nox("-s", "down")
    assert down.returncode == 0, down.stdout
    assert "none running" not in down.stdout, down.stdout
    assert stack.containers() == {}, "down stops the app containers with the services they need"
    # The developer's images are where they were (issue 21 item 5), and this test's leave nothing.
    assert {reference: image_id(reference) for reference in DEVELOPER_IMAGES} == developer_images
    stack.remove_images()
    assert dangling_images() <= dangling, "the build left untagged images"


@pytest.mark.slow
def test_the_images_install_from_the_lock_files(stack):
    """Reproducible images: the backend's packages are uv.lock's versions, the frontend's npm ci.

    Built under this test's own tag: the developer's images keep theirs, and removing the test's
    leaves no untagged image behind."""
    developer_images = {reference: image_id(reference) for reference in DEVELOPER_IMAGES}
    dangling = dangling_images()
    build = stack.compose("--profile", "app", "build", "backend", timeout=1800)
    assert build.returncode == 0, build.stderr[-4000:]
    image = stack.compose("--profile", "app", "config", "--images").stdout.split()
    backend_image = next(name for name in image if "finance-report-backend" in name)
    assert backend_image in stack.images(), image
    assert ENGINE
    frozen = subprocess.run(
        [ENGINE, "run", "--rm", "--entrypoint", "python", backend_image, "-c",
         "import importlib.metadata as m; print(m.version('fastapi'), m.version('sqlalchemy'))"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert frozen.returncode == 0, frozen.stderr
    locked = _locked_versions("fastapi", "sqlalchemy")
    assert frozen.stdout.split() == locked
    assert {reference: image_id(reference) for reference in DEVELOPER_IMAGES} == developer_images
    stack.remove_images()
    assert image_id(backend_image) is None
    assert dangling_images() <= dangling, "the test's build left untagged images"


def _locked_versions(*names: str) -> list[str]:
    packages = {p["name"]: p["version"] for p in tomllib.loads((REPO_ROOT / "uv.lock").read_text())["package"]}
    return [packages[name] for name in names]
