"""The container backend: `docker-compose.yml` profile `infra` under docker or podman.

nox runs compose exactly as a person would in the repository root — same directory, no `-f`, no
`-p` — so compose resolves the project (`name:` in the file, or `COMPOSE_PROJECT_NAME`), the
`.env` file and `COMPOSE_FILE` by its own rules, and a hand-run `docker compose --profile infra
up` and nox's runs are one stack: whichever starts it, the other joins. All worktrees of a user
share that project, exactly as they share the native services.

Host ports (fixed defaults a checkout may move) and credentials come from the environment and
`.env`; both are read back from the running containers on every `urls()`, never remembered: the
containers' own environment is what their servers really accept. A healthy stack is joined only
when its containers were created from the configuration that resolves now (compose_checks.py).

compose's CLI starts and stops the stack; the docker SDK asks the engine whether it is there and
what the containers are, with no CLI process per question. It goes where the CLI goes: DOCKER_HOST,
else the current context (how Docker Desktop, OrbStack and colima point the CLI at their engine).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from noxlib.core.errors import ServiceError, UserError
from noxlib.core.paths import REPO_ROOT
from noxlib.services import compose_checks
from noxlib.services.base import ServiceUrls

if TYPE_CHECKING:
    import docker

PROFILE = "infra"
# The app profile's containers need the infra services: stopping those stops these too, or a
# backend would be left answering 503 while nothing says why.
DEPENDENT_PROFILE = "app"
# (compose service, container port) for each service the lifecycle needs.
SERVICE_PORTS = {"postgres": ("postgres", 5432), "redis": ("redis", 6379), "s3": ("minio", 9000)}
# minio-init creates the bucket; until it is healthy the stack is not ready for a run.
REQUIRED_SERVICES = ("postgres", "redis", "minio", "minio-init")
RUNTIMES = ("docker", "podman")


def engine_client(runtime: str, env: dict[str, str]) -> docker.DockerClient:
    """The engine API the runtime's CLI talks to; raises the SDK's errors when it does not answer.

    Building the client asks the engine for its API version, so a client is an engine that answered.
    """
    import docker

    if runtime == "podman":
        # podman keeps its own connections, not docker's contexts; its CLI names the API socket.
        ask = ["podman", "info", "--format", "{{.Host.RemoteSocket.Path}}"]
        socket = subprocess.run(ask, capture_output=True, text=True, timeout=10, env=env, check=True).stdout.strip()
        return docker.DockerClient(base_url=socket if "://" in socket else f"unix://{socket}", timeout=30)
    return docker.from_env(environment=env, timeout=30)  # DOCKER_HOST, else the current context


def _answers(runtime: str, env: dict[str, str]) -> bool:
    import docker

    try:
        engine_client(runtime, env).close()
    except (docker.errors.DockerException, OSError, subprocess.SubprocessError):
        return False
    return True


def detect_runtime(environ: dict[str, str] | None = None) -> str | None:
    """`CONTAINER_RUNTIME` when set, else the first of docker/podman whose CLI is there and engine answers."""
    env = dict(os.environ if environ is None else environ)
    explicit = env.get("CONTAINER_RUNTIME", "").strip()
    if explicit:
        if explicit not in RUNTIMES:
            raise UserError(f"CONTAINER_RUNTIME={explicit!r} is not supported; use docker or podman.")
        if not shutil.which(explicit):
            raise UserError(f"CONTAINER_RUNTIME={explicit} but {explicit} is not on PATH.")
        return explicit
    # The CLI must be there too: it is what runs `compose up` and `down`.
    return next((runtime for runtime in RUNTIMES if shutil.which(runtime) and _answers(runtime, env)), None)


@dataclass(frozen=True)
class Container:
    """One container of the project, as the engine's inspect describes it."""

    service: str
    container_id: str
    state: str
    # "" when the service has no healthcheck; else starting, healthy or unhealthy.
    health: str
    # container port → host port, for the ports published on the host.
    ports: dict[int, int] = field(default_factory=dict)
    # The hash of the service configuration the container was created from ("" if unlabelled).
    config_hash: str = ""
    # The environment its process was given: what its server really accepts.
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.state == "running" and self.health in ("", "healthy")

    @classmethod
    def from_inspect(cls, attrs: dict[str, Any]) -> Container:
        """One `GET /containers/ID/json` document (the SDK's `Container.attrs`)."""
        config, state = attrs.get("Config") or {}, attrs.get("State") or {}
        labels = config.get("Labels") or {}
        # An exposed but unpublished port has no bindings; IPv4 and IPv6 bindings share a host port.
        bindings = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
        ports = {int(port.split("/")[0]): int(bound[0]["HostPort"]) for port, bound in bindings.items() if bound}
        return cls(
            service=labels.get("com.docker.compose.service", ""),
            container_id=attrs.get("Id", ""),
            state=str(state.get("Status", "")).lower(),
            health=str((state.get("Health") or {}).get("Status", "")).lower(),
            ports=ports,
            config_hash=labels.get(compose_checks.CONFIG_HASH_LABEL, ""),
            environment=dict(item.partition("=")[::2] for item in config.get("Env") or []),
        )


class ComposeServices:
    name = "compose"
    owns_services = True

    def __init__(self, runtime: str, environ: dict[str, str] | None = None) -> None:
        self.runtime = runtime
        self.env = dict(os.environ if environ is None else environ)

    def command(self, *args: str, profiles: Sequence[str] = (PROFILE,)) -> list[str]:
        """A compose command as typed in the repository root (compose finds the file and .env)."""
        selected = [argument for profile in profiles for argument in ("--profile", profile)]
        return [self.runtime, "compose", *selected, *args]

    def _run(self, argv: Sequence[str], *, timeout: float = 300) -> str:
        # Name the verb (`compose up`), never the arguments: they carry no secrets today, but an
        # error line is no place to find out.
        verb = next((word for word in argv[2:] if not word.startswith("-") and word not in self._profile_names), "")
        try:
            result = subprocess.run(
                argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, env=self.env, check=False
            )
        except subprocess.TimeoutExpired as error:
            raise ServiceError(f"`{self.runtime} compose {verb}` timed out after {timeout:.0f}s") from error
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines()
            raise ServiceError(f"`{self.runtime} compose {verb}` failed: {lines[-1] if lines else result.returncode}")
        return result.stdout

    _profile_names = (PROFILE, DEPENDENT_PROFILE)

    def start(self) -> None:
        # The first start may pull four images; later ones take seconds.
        try:
            self._run(self.command("up", "--detach", "--wait"), timeout=900)
        except ServiceError as error:
            taken = compose_checks.port_taken_error(error, self._published_host_ports())
            if taken is None:
                raise
            # compose leaves the services that did start running: stop them with the rest.
            raise taken from error

    @cached_property
    def _config(self) -> dict[str, Any]:
        """The configuration as compose resolves it (project name from `name:`, COMPOSE_PROJECT_NAME, …)."""
        try:
            return dict(json.loads(self._run(self.command("config", "--format", "json"), timeout=60)))
        except json.JSONDecodeError as error:
            raise ServiceError(f"could not read `compose config` output as JSON ({error.msg})") from error

    def _published_host_ports(self) -> dict[int, tuple[str, int]]:
        """host port → (service, container port), as the configuration resolves now."""
        try:
            services = self._config.get("services") or {}
        except ServiceError:
            return {}
        published = {}
        for service, description in services.items():
            for port in description.get("ports") or []:
                if str(port.get("published") or "").isdigit():
                    published[int(port["published"])] = (service, int(port.get("target") or 0))
        return published

    def containers(self) -> dict[str, Container]:
        """The project's containers (any profile, stopped ones included) by service, read afresh."""
        import docker
        import requests

        project = self._config.get("name", "")
        try:
            listed = self._engine.containers.list(
                all=True, ignore_removed=True, filters={"label": f"com.docker.compose.project={project}"}
            )
        except (docker.errors.DockerException, requests.RequestException, subprocess.SubprocessError) as error:
            raise ServiceError(f"the {self.runtime} engine did not list the containers: {error}") from error
        # One-off `compose run` containers are not the service's (compose ps leaves them out too).
        found = (Container.from_inspect(c.attrs) for c in listed if c.labels.get("com.docker.compose.oneoff") != "True")
        return {container.service: container for container in found}

    @cached_property
    def _engine(self) -> docker.DockerClient:
        return engine_client(self.runtime, self.env)

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
        postgres, minio = containers["postgres"].environment, containers["minio"].environment
        urls = ServiceUrls(
            postgres_host="127.0.0.1",
            postgres_port=ports["postgres"],
            postgres_user=postgres.get("POSTGRES_USER") or "postgres",
            postgres_password=postgres.get("POSTGRES_PASSWORD", ""),
            redis_url=f"redis://127.0.0.1:{ports['redis']}/0",
            s3_endpoint=f"http://127.0.0.1:{ports['s3']}",
            s3_access_key=minio.get("MINIO_ROOT_USER", ""),
            s3_secret_key=minio.get("MINIO_ROOT_PASSWORD", ""),
        )
        compose_checks.check_postgres_accepts(urls)
        return urls

    def healthy(self) -> bool:
        """All infra services ready, and created from the configuration that resolves now.

        Ready but created from other settings (a password changed in .env since) is neither
        joined (the change would silently not apply) nor restarted under other runs' feet: the
        person is told in one line how to apply it.
        """
        try:
            containers = self.containers()
        except ServiceError:
            return False
        if not all(service in containers and containers[service].ready for service in REQUIRED_SERVICES):
            return False
        created_from = {service: containers[service].config_hash for service in REQUIRED_SERVICES}
        configured = self._run(self.command("config", "--hash", ",".join(REQUIRED_SERVICES)), timeout=60)
        stale = compose_checks.stale_services(created_from, configured)
        if stale:
            raise compose_checks.stale_error(stale, self._config.get("name", ""))
        return True

    def running(self) -> bool:
        """Whether any container of the project (infra or app) exists: what `down` stops."""
        return bool(self.containers())

    def stop(self) -> None:
        # The app containers with the services they need; volumes are kept (the data in them is
        # the developer's).
        self._run(self.command("stop", profiles=self._profile_names))
        self._run(self.command("rm", "--force", profiles=self._profile_names))
