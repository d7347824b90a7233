"""Leases on the shared services: who uses them, who started them, and who stops them.

A run holds a lease for as long as it uses PostgreSQL, Redis and S3; the services a test run
started are stopped by the last lease out, the ones `infra`/`dev` keep only by `nox -s down`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

from noxlib.core.errors import UserError
from noxlib.core.paths import state_dir
from noxlib.core.phases import Log, Phases
from noxlib.core.processes import current_process_identity
from noxlib.core.signals import signals_deferred
from noxlib.run.leases import Lease, LeaseRegistry, RegistryState
from noxlib.services import ServiceBackend, ServiceUrls, select_backend


@dataclass
class ServiceLease:
    backend: ServiceBackend
    urls: ServiceUrls
    lease: Lease
    registry: LeaseRegistry
    joined: bool


def registry() -> LeaseRegistry:
    return LeaseRegistry(state_dir())


@contextlib.contextmanager
def leased_services(kind: str, namespace: str, *, keep: bool = False, log: Log = print) -> Iterator[ServiceLease]:
    """Hold a lease on running services for the duration of the block.

    `keep` marks the services as the developer's (infra/dev): no test run will stop them, only
    `nox -s down`.
    """
    backend = select_backend()
    leases = registry()
    me = current_process_identity()
    lease = Lease(pid=me.pid, create_time=me.create_time, namespace=namespace,
                  backend=backend.name, kind=kind)  # fmt: skip
    phases = Phases(log)
    with phases.phase("services") as details, leases.locked() as state:
        if kind == "test":
            busy = [other for other in state.others(lease) if other.namespace == namespace
                    and other.kind == "test"]  # fmt: skip
            if busy:
                raise UserError(
                    f"namespace {namespace} is in use by another test run (pid {busy[0].pid}); "
                    "set WORKSPACE_ID (or BRANCH_NAME) to run in parallel."
                )
        recorded = state.services
        if recorded and recorded.get("backend") != backend.name and state.leases:
            raise UserError(
                f"services are running on the {recorded['backend']} backend for other runs; "
                f"unset FR_SERVICES or stop them with `nox -s down` first."
            )
        joined = backend.healthy()
        if not joined:
            start_recorded(backend, leases, state, lease, kind=kind, keep=keep)
        elif not recorded:
            # Running, but we do not know who started them: treat them as the developer's.
            state.services = {"backend": backend.name, "kept": True, "started_by": "unknown"}
        if keep and state.services:
            state.services["kept"] = True
        urls = backend.urls()
        lease.ports = urls.ports()
        state.leases.append(lease)
        details.append(f"{backend.name} ({'joined' if joined else 'started'})")
    service_lease = ServiceLease(backend, urls, lease, leases, joined)
    try:
        yield service_lease
    finally:
        with signals_deferred():
            release(service_lease, log)


def start_recorded(
    backend: ServiceBackend, leases: LeaseRegistry, state: RegistryState, lease: Lease, *, kind: str, keep: bool
) -> None:
    """Start the services with their ownership written down first; undo a start that was interrupted.

    The record is on disk before the first process exists, so a run killed mid-start (even by
    SIGKILL) leaves services that the next run recognises as a test run's and the last lease
    out stops, never "unknown" ones that nothing stops. A start interrupted by Ctrl+C, SIGTERM
    or SIGHUP stops what it started before the signal ends the run, unless other runs use them.
    """
    recorded = state.services
    # When one of the developer's services had died, restarting it does not make the set
    # this run's: the last lease out would otherwise stop what `infra`/`dev` keeps.
    fresh = not (recorded and recorded.get("backend") == backend.name and recorded.get("kept"))
    if fresh:
        state.services = {"backend": backend.name, "kept": keep, "started_by": kind}
        # Still under the registry's lock: the record goes to disk before the start begins.
        leases._write(state)
    try:
        backend.start()
    except BaseException:
        with signals_deferred():
            if fresh and not state.others(lease) and backend.owns_services:
                # A stop that fails keeps the record, so `nox -s down` can still stop them.
                with contextlib.suppress(UserError):
                    backend.stop()
                    state.services = None
            # `locked()` writes nothing when its block fails: write what is true now.
            leases._write(state)
        raise


def release(service_lease: ServiceLease, log: Log = print) -> None:
    """Give the lease back; stop the services when this was the last lease of a test-started set."""
    with service_lease.registry.locked() as state:
        mine = [lease for lease in state.leases if lease.same_holder(service_lease.lease)]
        state.leases = state.others(service_lease.lease)
        services = state.services or {}
        if not mine:
            # Our lease vanished (a corrupted registry was reset): others may be unlisted too,
            # so stopping anything now could pull services from under a live run.
            log("warning: this run's lease was missing from the registry; services left running")
            return
        if state.leases or services.get("kept", True) or not service_lease.backend.owns_services:
            return
        started = time.perf_counter()
        service_lease.backend.stop()
        state.services = None
        log(f"services   stopped (last lease out) ({time.perf_counter() - started:.2f}s)")


def set_lease_template(service_lease: ServiceLease, template: str) -> set[str]:
    """Record which template this run cloned; returns the templates live runs still need."""
    with service_lease.registry.locked() as state:
        for lease in state.leases:
            if lease.same_holder(service_lease.lease):
                lease.template = template
        return {lease.template for lease in state.leases if lease.template}
