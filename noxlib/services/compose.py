"""The container backend: `docker-compose.yml` profile `infra` under docker or podman.

nox runs compose exactly as a person would in the repository root — same directory, no `-f`, no
`-p` — so compose resolves the project (`name:` in the file, or `COMPOSE_PROJECT_NAME`), the
`.env` file and `COMPOSE_FILE` by its own rules, and a hand-run `docker compose --profile infra
up` and nox's runs are one stack: whichever starts it, the other joins. All worktrees of a user
share that project, exactly as they share the native services.

Host ports are left to the engine (`127.0.0.1::5432` in the compose file) and the credentials to
the environment and `.env`; both are read back from the running containers on every `urls()`,
never remembered: the engine picks new host ports when a container restarts, and the containers'
own environment is what their servers really accept.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from noxlib.errors import ServiceError, UserError
from noxlib.paths import REPO_ROOT
from noxlib.services.base import ServiceUrls

PROFILE = "infra"
# (compose service, container port) for each service the lifecycle needs.
SERVICE_PORTS = {"postgres": ("postgres", 5432), "redis": ("redis", 6379), "s3": ("minio", 9000)}
# minio-init creates the bucket; until it is healthy the stack is not ready for a run.
REQUIRED_SERVICES = ("postgres", "redis", "minio", "minio-init")
RUNTIMES = ("docker", "podman")


def detect_runtime(environ: dict[str, str] | None = None) -> str | None:
    """`CONTAINER_RUNTIME` when set, else the first of docker/podman whose engine answers.

    The CLI, not an SDK: only the CLI follows `docker context use`, which is how Docker Desktop,
    OrbStack and colima point it at their engine.
    """
    env = os.environ if environ is None else environ
    explicit = env.get("CONTAINER_RUNTIME", "").strip()
    if explicit:
        if explicit not in RUNTIMES:
            raise UserError(f"CONTAINER_RUNTIME={explicit!r} is not supported; use docker or podman.")
        if not shutil.which(explicit):
            raise UserError(f"CONTAINER_RUNTIME={explicit} but {explicit} is not on PATH.")
        return explicit
    for runtime in RUNTIMES:
        executable = shutil.which(runtime)
        if not executable:
            continue
        try:
            answered = (
                subprocess.run([executable, "info"], capture_output=True, timeout=10, check=False).returncode == 0
            )
        except (OSError, subprocess.TimeoutExpired):
            answered = False
        if answered:
            return runtime
    return None


@dataclass(frozen=True)
class Container:
    """One container of the project, as `compose ps --format json` describes it."""

    service: str
    container_id: str
    state: str
    # "" when the service has no healthcheck; else starting, healthy or unhealthy.
    health: str
    # container port → host port, for the ports published on the host.
    ports: dict[int, int] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.state == "running" and self.health in ("", "healthy")


def parse_ps(output: str) -> dict[str, Container]:
    """`compose ps --format json`: one JSON object a line (compose ≥ 2.21) or one array (older)."""
    text = output.strip()
    if not text:
        return {}
    try:
        if text.startswith("["):
            entries = json.loads(text)
        else:
            entries = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as error:
        raise ServiceError(f"could not read `compose ps` output as JSON ({error.msg})") from error
    containers = {}
    for entry in entries:
        ports = {}
        for publisher in entry.get("Publishers") or []:
            # An exposed but unpublished port is listed with PublishedPort 0.
            if publisher.get("PublishedPort"):
                ports[int(publisher["TargetPort"])] = int(publisher["PublishedPort"])
        container = Container(
            service=entry.get("Service", ""),
            container_id=entry.get("ID", ""),
            state=str(entry.get("State", "")).lower(),
            health=str(entry.get("Health", "")).lower(),
            ports=ports,
        )
        containers[container.service] = container
    return containers


def parse_environment(inspected: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """`docker inspect` of containers → container id → the environment its process was given."""
    environments = {}
    for container in inspected:
        pairs = (item.partition("=") for item in (container.get("Config") or {}).get("Env") or [])
        environments[container.get("Id", "")] = {key: value for key, _, value in pairs}
    return environments


def environment_of(container: Container, environments: dict[str, dict[str, str]]) -> dict[str, str]:
    """`ps` prints the short container id, `inspect` the full one."""
    for full_id, environment in environments.items():
        if container.container_id and full_id.startswith(container.container_id):
            return environment
    raise ServiceError(f"`inspect` did not describe the {container.service} container {container.container_id}")


class ComposeServices:
    name = "compose"
    owns_services = True

    def __init__(self, runtime: str, environ: dict[str, str] | None = None) -> None:
        self.runtime = runtime
        self.env = dict(os.environ if environ is None else environ)

    def command(self, *args: str) -> list[str]:
        """A compose command as typed in the repository root (compose finds the file and .env)."""
        return [self.runtime, "compose", "--profile", PROFILE, *args]

    def _run(self, argv: Sequence[str], *, timeout: float = 300) -> str:
        # Name the verb (`compose up`, `inspect`), never the arguments: they carry no secrets
        # today, but an error line is no place to find out.
        shown = f"compose {argv[4]}" if argv[1:2] == ["compose"] else argv[1]
        try:
            result = subprocess.run(
                argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, env=self.env, check=False
            )
        except subprocess.TimeoutExpired as error:
            raise ServiceError(f"`{self.runtime} {shown}` timed out after {timeout:.0f}s") from error
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines()
            raise ServiceError(f"`{self.runtime} {shown}` failed: {lines[-1] if lines else result.returncode}")
        return result.stdout

    def start(self) -> None:
        # The first start may pull four images; later ones take seconds.
        self._run(self.command("up", "--detach", "--wait"), timeout=900)

    def containers(self) -> dict[str, Container]:
        """The project's infra containers, stopped ones included, read afresh."""
        return parse_ps(self._run(self.command("ps", "--all", "--format", "json"), timeout=30))

    def _environments(self, containers: list[Container]) -> dict[str, dict[str, str]]:
        output = self._run([self.runtime, "inspect", *(c.container_id for c in containers)], timeout=30)
        try:
            return parse_environment(json.loads(output))
        except json.JSONDecodeError as error:
            raise ServiceError(f"could not read `{self.runtime} inspect` output as JSON ({error.msg})") from error

    def urls(self) -> ServiceUrls:
        """Host ports and credentials as the running containers have them now."""
        containers = self.containers()
        ports = {}
        for key, (service, container_port) in SERVICE_PORTS.items():
            container = containers.get(service)
            if container is None or container_port not in container.ports:
                raise ServiceError(
                    f"compose service {service} publishes no host port for {container_port}; "
                    "is it running? (`docker compose --profile infra ps`)"
                )
            ports[key] = container.ports[container_port]
        environments = self._environments([containers["postgres"], containers["minio"]])
        postgres = environment_of(containers["postgres"], environments)
        minio = environment_of(containers["minio"], environments)
        return ServiceUrls(
            postgres_host="127.0.0.1",
            postgres_port=ports["postgres"],
            postgres_user=postgres.get("POSTGRES_USER") or "postgres",
            postgres_password=postgres.get("POSTGRES_PASSWORD", ""),
            redis_url=f"redis://127.0.0.1:{ports['redis']}/0",
            s3_endpoint=f"http://127.0.0.1:{ports['s3']}",
            s3_access_key=minio.get("MINIO_ROOT_USER", ""),
            s3_secret_key=minio.get("MINIO_ROOT_PASSWORD", ""),
        )

    def healthy(self) -> bool:
        try:
            containers = self.containers()
        except ServiceError:
            return False
        return all(service in containers and containers[service].ready for service in REQUIRED_SERVICES)

    def running(self) -> bool:
        """Asked by `down`, which always lets compose stop: `compose stop` with nothing up is a no-op."""
        return True

    def stop(self) -> None:
        # Only the infra services: an app profile started by hand beside them is left alone, and
        # volumes are kept (the data in them is the developer's).
        self._run(self.command("stop"))
        self._run(self.command("rm", "--force", *REQUIRED_SERVICES))
