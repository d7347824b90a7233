"""Where the services answer, and the credentials to use them: what every backend hands the run.

A name-level contract below the backends: the run contract serialises it for the apps, and each
backend (noxlib/services/) produces one, so neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit


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
            urlsplit(self.redis_url).password or "",
        ]
        return [value for value in values if value]
