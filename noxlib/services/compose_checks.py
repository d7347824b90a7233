"""Where a compose stack and what the person configured disagree, said in the one line that fixes it.

nox joins a healthy stack without `up` (a stack started by hand is the person's, and other runs
may be using it), so a value changed in `.env` since the containers were created — a new
`POSTGRES_PASSWORD`, another host port — would silently not apply. And `POSTGRES_PASSWORD` takes
effect only when the postgres-data volume is created: a recreated container may sit on a volume
that rejects it. A fixed host port may be taken by another program. Each case ends the run with
what happened and what to do, never a later "PostgreSQL died" or a driver's page of context.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from noxlib.core.errors import ServiceError, UserError
from noxlib.services.base import ServiceUrls

# Compose labels every container with a hash of the service configuration it was created from;
# `compose config --hash SERVICES` prints the hash of the configuration as it resolves now.
CONFIG_HASH_LABEL = "com.docker.compose.config-hash"
# The variable that moves each published container port on the host (docker-compose.yml).
HOST_PORT_VARIABLES = {
    ("postgres", 5432): "POSTGRES_HOST_PORT",
    ("redis", 6379): "REDIS_HOST_PORT",
    ("minio", 9000): "MINIO_HOST_PORT",
    ("minio", 9001): "MINIO_CONSOLE_HOST_PORT",
}
VOLUMES = "postgres-data, redis-data and minio-data"
# Docker's two spellings: another container holds the port, or another program on the host does.
_PORT_TAKEN = re.compile(
    r"(?:Bind for|listen tcp\d?) [\d.:\[\]]*?:(\d+)"
    r"(?: failed: port is already allocated|: bind: address already in use)"
)
# libpq's words when the server is there but refuses these credentials.
_REJECTED = ("password authentication failed", "does not exist")


def stale_services(created_from: Mapping[str, str], configured: str) -> list[str]:
    """Services whose container was created from another configuration than the one configured now.

    `created_from` is each container's label ("" when unlabelled: not judged); `configured` is what
    `compose config --hash SERVICES` prints, one `SERVICE HASH` a line.
    """
    hashes = {
        service: digest for service, _, digest in (line.strip().partition(" ") for line in configured.splitlines())
    }
    return sorted(
        service for service, digest in created_from.items() if digest and digest != hashes.get(service, digest)
    )


def stale_error(services: list[str], project: str) -> UserError:
    return UserError(
        f"the running {', '.join(services)} container(s) of compose project {project} were created from other "
        "settings than docker-compose.yml, .env and the environment give now (a changed password or port?); "
        "apply them with `docker compose --profile infra up --detach --wait`, which recreates those containers "
        "and keeps their volumes"
    )


def port_taken_error(error: ServiceError, published: Mapping[int, tuple[str, int]]) -> UserError | None:
    """A failed `up` because a fixed host port is taken → the line naming the variable that moves it.

    `published` maps each host port the configuration publishes to its (service, container port).
    """
    match = _PORT_TAKEN.search(str(error))
    if match is None:
        return None
    host_port = int(match.group(1))
    service, container_port = published.get(host_port, ("a service", 0))
    variable = HOST_PORT_VARIABLES.get((service, container_port), "its *_HOST_PORT variable")
    return UserError(
        f"host port {host_port} for compose service {service} is already in use by another program or stack; "
        f"set {variable} to a free port (in the environment or .env) and run again"
    )


def check_postgres_accepts(urls: ServiceUrls) -> None:
    """Raise the volume's story when PostgreSQL answers but refuses the container's own credentials."""
    import psycopg

    try:
        with psycopg.connect(urls.database_url(), connect_timeout=5):
            return
    except psycopg.OperationalError as error:
        if not any(words in str(error) for words in _REJECTED):
            return  # not an answer about credentials: the run's own checks say what is wrong
    raise UserError(
        "PostgreSQL in the postgres-data volume refuses the POSTGRES_USER/POSTGRES_PASSWORD its container was "
        "given: the volume keeps the ones it was created with. Put the old value back (environment or .env), or "
        f"start empty with `docker compose --profile infra down --volumes`, which deletes the {VOLUMES} "
        "volumes (dev databases, Redis data, uploaded files)"
    )
