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
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from noxlib.errors import ServiceError, UserError
from noxlib.paths import REPO_ROOT
from noxlib.services import compose_checks
from noxlib.services.base import ServiceUrls

PROFILE = "infra"
# The app profile's containers need the infra services: stopping those stops these too, or a
# backend would be left answering 503 while nothing says why.
DEPENDENT_PROFILE = "app"
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
    project: str = ""
    # The hash of the service configuration the container was created from ("" if unlabelled).
    config_hash: str = ""

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
        labels = str(entry.get("Labels") or "")
        hashed = re.search(rf"(?:^|,){re.escape(compose_checks.CONFIG_HASH_LABEL)}=([0-9a-f]+)", labels)
        container = Container(
            service=entry.get("Service", ""),
            container_id=entry.get("ID", ""),
            state=str(entry.get("State", "")).lower(),
            health=str(entry.get("Health", "")).lower(),
            ports=ports,
            project=str(entry.get("Project", "")),
            config_hash=hashed.group(1) if hashed else "",
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

    def command(self, *args: str, profiles: Sequence[str] = (PROFILE,)) -> list[str]:
        """A compose command as typed in the repository root (compose finds the file and .env)."""
        selected = [argument for profile in profiles for argument in ("--profile", profile)]
        return [self.runtime, "compose", *selected, *args]

    def _run(self, argv: Sequence[str], *, timeout: float = 300) -> str:
        # Name the verb (`compose up`, `inspect`), never the arguments: they carry no secrets
        # today, but an error line is no place to find out.
        verb = next((word for word in argv[2:] if not word.startswith("-") and word not in self._profile_names), "")
        shown = f"compose {verb}" if argv[1:2] == ["compose"] else argv[1]
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

    def _published_host_ports(self) -> dict[int, tuple[str, int]]:
        """host port → (service, container port), as the configuration resolves now."""
        try:
            config = json.loads(self._run(self.command("config", "--format", "json"), timeout=60))
        except (ServiceError, json.JSONDecodeError):
            return {}
        published = {}
        for service, description in (config.get("services") or {}).items():
            for port in description.get("ports") or []:
                if str(port.get("published") or "").isdigit():
                    published[int(port["published"])] = (service, int(port.get("target") or 0))
        return published

    def containers(self, profiles: Sequence[str] = (PROFILE,)) -> dict[str, Container]:
        """The project's containers of these profiles, stopped ones included, read afresh."""
        return parse_ps(self._run(self.command("ps", "--all", "--format", "json", profiles=profiles), timeout=30))

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
        configured = compose_checks.parse_config_hashes(
            self._run(self.command("config", "--hash", ",".join(REQUIRED_SERVICES)), timeout=60)
        )
        stale = compose_checks.stale_services({s: h for s, h in created_from.items() if h}, configured)
        if stale:
            raise compose_checks.stale_error(stale, containers["postgres"].project or "finance-report")
        return True

    def running(self) -> bool:
        """Whether any container of the project (infra or app) exists: what `down` stops."""
        return bool(self.containers(profiles=self._profile_names))

    def stop(self) -> None:
        # The app containers with the services they need; volumes are kept (the data in them is
        # the developer's).
        self._run(self.command("stop", profiles=self._profile_names))
        self._run(self.command("rm", "--force", profiles=self._profile_names))
