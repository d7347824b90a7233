"""What every services backend shares: the verbs a backend has (where services answer: names/service_urls.py).

The backends (compose, native, external) import these from here, never from the package that
chooses between them, so nothing imports upward.
"""

from __future__ import annotations

from typing import Protocol

from noxlib.names.service_urls import ServiceUrls as ServiceUrls


class ServiceBackend(Protocol):
    """What the lifecycle needs from a provider of PostgreSQL, Redis and S3."""

    name: str
    # Whether stop() really stops something: external services are never ours to stop.
    owns_services: bool

    def start(self) -> None: ...

    def urls(self) -> ServiceUrls: ...

    def healthy(self) -> bool: ...

    def stop(self) -> None: ...

    def running(self) -> bool:
        """Whether anything of this backend may be up, healthy or not: what `nox -s down` stops."""
        ...
