"""Services someone else runs: we use them as given and start or stop nothing.

Only this run's own databases and bucket are created and dropped there; the lifecycle's
namespace guard applies exactly as it does on services we started.
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

from noxlib.core.errors import UserError
from noxlib.services.base import ServiceUrls
from noxlib.services.probes import all_ready


class ExternalServices:
    name = "external"
    owns_services = False

    def __init__(self, urls: ServiceUrls) -> None:
        self._urls = urls

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> ExternalServices:
        env = os.environ if environ is None else environ
        # The keys every app reads name the services; a user names them the same way.
        from noxlib.names.run_contract import SERVICE_KEYS

        missing = [key for key in SERVICE_KEYS if not env.get(key)]
        if missing:
            raise UserError(f"FR_SERVICES=external needs {', '.join(missing)} set.")
        database = urlsplit(env["DATABASE_URL"])
        if not database.scheme.startswith("postgres") or not database.hostname:
            raise UserError("DATABASE_URL must look like postgresql://user:password@host:port/db.")
        return cls(
            ServiceUrls(
                postgres_host=database.hostname,
                postgres_port=database.port or 5432,
                postgres_user=unquote(database.username or "postgres"),
                postgres_password=unquote(database.password or ""),
                admin_database=database.path.lstrip("/") or "postgres",
                redis_url=env["REDIS_URL"],
                s3_endpoint=env["S3_ENDPOINT"],
                s3_access_key=env["S3_ACCESS_KEY"],
                s3_secret_key=env["S3_SECRET_KEY"],
                s3_region=env.get("S3_REGION", "us-east-1"),
            )
        )

    def start(self) -> None:
        """Nothing to start; `healthy` tells whether the given services answer."""

    def urls(self) -> ServiceUrls:
        return self._urls

    def healthy(self) -> bool:
        return all_ready(self._urls)

    def stop(self) -> None:
        """Never ours to stop."""

    def running(self) -> bool:
        """Always there: `down` may still reap the orphan test databases on them."""
        return True
