"""PostgreSQL, Redis and S3 behind one interface, whichever backend provides them.

Every backend has the same four verbs — `start`, `urls`, `healthy`, `stop` — so the lifecycle
never asks which one it has. `FR_SERVICES` picks: `auto` (compose when a container engine
answers, else native), `compose`, `native` or `external`.
"""

from __future__ import annotations

import os

from noxlib.core.errors import UserError
from noxlib.services.base import ServiceBackend as ServiceBackend
from noxlib.services.base import ServiceUrls as ServiceUrls

BACKEND_NAMES = ("auto", "compose", "native", "external")


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
