"""PostgreSQL, Redis and S3 behind one interface, whichever backend provides them.

Every backend has the same four verbs — `start`, `urls`, `healthy`, `stop` — so the lifecycle
never asks which one it has. `FR_SERVICES` picks: `auto` (compose when a container engine
answers, else native), `compose`, `native` or `external`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote, urlsplit

from noxlib.errors import UserError

BACKEND_NAMES = ("auto", "compose", "native", "external")


@dataclass(frozen=True)
class ServiceUrls:
    """Where the services answer, and the credentials to use them."""

    postgres_host: str
    postgres_port: int
    postgres_user: str
    postgres_password: str
    redis_url: str
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str
    s3_region: str = "us-east-1"
    admin_database: str = "postgres"

    def database_url(self, database: str | None = None, *, driver: str = "postgresql") -> str:
        """A libpq-style URL; `driver="postgresql+psycopg"` gives the SQLAlchemy form the app uses."""
        user = quote(self.postgres_user, safe="")
        password = quote(self.postgres_password, safe="")
        name = database or self.admin_database
        return f"{driver}://{user}:{password}@{self.postgres_host}:{self.postgres_port}/{name}"

    def ports(self) -> dict[str, int]:
        return {
            "postgres": self.postgres_port,
            "redis": urlsplit(self.redis_url).port or 6379,
            "s3": urlsplit(self.s3_endpoint).port or 80,
        }

    def secrets(self) -> list[str]:
        """Values that must never be printed."""
        values = [
            self.postgres_password,
            self.s3_secret_key,
            quote(self.postgres_password, safe=""),
        ]
        return [value for value in values if value]


class ServiceBackend(Protocol):
    """What the lifecycle needs from a provider of PostgreSQL, Redis and S3."""

    name: str
    # Whether stop() really stops something: external services are never ours to stop.
    owns_services: bool

    def start(self) -> None: ...

    def urls(self) -> ServiceUrls: ...

    def healthy(self) -> bool: ...

    def stop(self) -> None: ...


def requested_backend(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    value = env.get("FR_SERVICES", "auto").strip().lower() or "auto"
    if value not in BACKEND_NAMES:
        raise UserError(f"FR_SERVICES={value!r} is not a services backend; use one of {', '.join(BACKEND_NAMES)}.")
    return value


def select_backend(environ: dict[str, str] | None = None) -> ServiceBackend:
    """The backend `FR_SERVICES` asks for; `auto` prefers a container engine that answers."""
    from noxlib.services.compose import ComposeServices, detect_runtime
    from noxlib.services.external import ExternalServices
    from noxlib.services.native import NativeServices

    choice = requested_backend(environ)
    if choice == "external":
        return ExternalServices.from_environment(environ)
    if choice == "native":
        return NativeServices()
    runtime = detect_runtime(environ)
    if choice == "compose":
        if runtime is None:
            raise UserError(
                "FR_SERVICES=compose but neither docker nor podman answers; start the engine or use FR_SERVICES=native."
            )
        return ComposeServices(runtime)
    return ComposeServices(runtime) if runtime else NativeServices()
