"""The container backend: `docker-compose.yml` profile `infra` under docker or podman.

Host ports are left to the engine (`127.0.0.1::5432` in the compose file) and read back with
`compose port`, so two copies of the repo never fight over 5432. All worktrees of a user share
one compose project, exactly as they share the native services.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

from noxlib.errors import ServiceError, UserError
from noxlib.paths import REPO_ROOT
from noxlib.services import ServiceUrls

PROJECT = "finance_report_infra"
PROFILE = "infra"
# (compose service, container port) for each service the lifecycle needs.
SERVICE_PORTS = {"postgres": ("postgres", 5432), "redis": ("redis", 6379), "s3": ("minio", 9000)}
RUNTIMES = ("docker", "podman")


def detect_runtime(environ: dict[str, str] | None = None) -> str | None:
    """`CONTAINER_RUNTIME` when set, else the first of docker/podman whose engine answers."""
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


def parse_port(output: str) -> int:
    """`compose port` prints `127.0.0.1:49153` (or `[::1]:49153`, or `0.0.0.0:...`)."""
    line = output.strip().splitlines()[-1] if output.strip() else ""
    _, _, port = line.rpartition(":")
    if not port.isdigit():
        raise ServiceError(f"could not read a host port from compose output {line!r}")
    return int(port)


class ComposeServices:
    name = "compose"
    owns_services = True

    def __init__(self, runtime: str, environ: dict[str, str] | None = None) -> None:
        self.runtime = runtime
        self.env = dict(os.environ if environ is None else environ)

    def command(self, *args: str) -> list[str]:
        return [
            self.runtime, "compose",
            "-f", str(REPO_ROOT / "docker-compose.yml"),
            "-p", PROJECT,
            "--profile", PROFILE,
            *args,
        ]  # fmt: skip

    def _run(self, args: Sequence[str], *, timeout: float = 300) -> str:
        argv = self.command(*args)
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=self.env, check=False)
        except subprocess.TimeoutExpired as error:
            raise ServiceError(f"`{' '.join(argv[:3])} {' '.join(args)}` timed out") from error
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines()
            raise ServiceError(
                f"`{self.runtime} compose {' '.join(args)}` failed: {lines[-1] if lines else result.returncode}"
            )
        return result.stdout

    def start(self) -> None:
        self._run(["up", "--detach", "--wait"])

    def port(self, service: str, container_port: int) -> int:
        return parse_port(self._run(["port", service, str(container_port)], timeout=30))

    def urls(self) -> ServiceUrls:
        ports = {key: self.port(*target) for key, target in SERVICE_PORTS.items()}
        return ServiceUrls(
            postgres_host="127.0.0.1",
            postgres_port=ports["postgres"],
            postgres_user=self.env.get("POSTGRES_USER", "postgres"),
            postgres_password=self.env.get("POSTGRES_PASSWORD", "postgres"),
            redis_url=f"redis://127.0.0.1:{ports['redis']}/0",
            s3_endpoint=f"http://127.0.0.1:{ports['s3']}",
            s3_access_key=self.env.get("MINIO_ROOT_USER", "minioadmin"),
            s3_secret_key=self.env.get("MINIO_ROOT_PASSWORD", "minioadmin"),
        )

    def healthy(self) -> bool:
        try:
            output = self._run(["ps", "--status", "running", "--services"], timeout=30)
        except ServiceError:
            return False
        running = set(output.split())
        return all(service in running for service, _ in SERVICE_PORTS.values())

    def stop(self) -> None:
        self._run(["down", "--remove-orphans"])
