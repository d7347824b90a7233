"""Services a developer keeps (`nox -s infra`) and the one way to stop them (`nox -s down`)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from noxlib.core.errors import UserError
from noxlib.core.paths import state_dir
from noxlib.core.phases import Log
from noxlib.core.redaction import redacting
from noxlib.core.signals import interrupt_once
from noxlib.run.lifecycle import run_namespace
from noxlib.run.service_leases import leased_services, registry
from noxlib.services import ServiceBackend, ServiceUrls, requested_backend, select_backend
from noxlib.sessions.service_access import psql_command, write_pgpass


def keep_services(log: Log = print) -> ServiceUrls:
    """Start (or join) the services and mark them as the developer's: only `down` stops them.

    Ctrl+C, SIGTERM and SIGHUP interrupt the start like any run's (exit 130, 143, 129): what this
    start had started is stopped again, never left half-started and recorded as kept.
    """
    with interrupt_once(), leased_services("infra", run_namespace(), keep=True, log=log) as service_lease:
        urls = service_lease.urls
        log = redacting(log, urls.secrets())
        log(f"postgres   {urls.database_url()}")
        log(f"psql       {psql_command(urls, urls.admin_database, write_pgpass(urls))}")
        log(f"redis      {urls.redis_url}")
        log(f"s3         {urls.s3_endpoint} (access key {urls.s3_access_key})")
        if service_lease.backend.name == "native":
            log(f"passwords  in {state_dir() / 'native' / 'credentials.json'}")
        return urls


PRUNE_FOREIGN = "--prune-foreign"


def down_options(parser: argparse.ArgumentParser) -> None:
    """`nox -s down -- --force --prune-foreign`."""
    parser.add_argument("--force", action="store_true", help="stop the services even while other runs hold leases")
    parser.add_argument(
        "--prune-foreign", action="store_true", help="also drop test databases of namespaces no lease names"
    )


def down(log: Log = print, *, force: bool = False, prune_foreign: bool = False) -> None:
    """Stop the services; refuse while another run holds a lease, unless forced.

    Test databases are dropped only when provably dead (see `drop_orphan_test_databases`):
    a live run of another clone, user or CI runner sharing the server keeps its databases,
    even with `--force`.
    """
    from noxlib.run.database_owners import Verdict
    from noxlib.run.databases import drop_orphan_test_databases
    from noxlib.services.probes import postgres_ready

    leases = registry()
    with interrupt_once(), leases.locked() as state:
        for lease in state.pruned:
            log(f"pruned     dead lease of pid {lease.pid} ({lease.namespace})")
        if state.leases and not force:
            holders = ", ".join(f"pid {lease.pid} ({lease.kind} {lease.namespace})" for lease in state.leases)
            raise UserError(
                f"{len(state.leases)} run(s) still use the services: {holders}; "
                "wait for them to finish or run `nox -s down -- --force`."
            )
        backend = recorded_backend(state.services)
        if not backend.running():
            log("services   none running")
        else:
            try:
                urls: ServiceUrls | None = backend.urls()
            except UserError as error:
                # Lost credentials must not keep the services running: stop them all the same.
                log(f"warning: {error} Test databases were not checked.")
                urls = None
            if urls is not None:
                log = redacting(log, urls.secrets())
            if urls is not None and postgres_ready(urls):
                reaping = drop_orphan_test_databases(
                    urls.database_url(),
                    [lease.namespace for lease in state.leases],
                    private=backend.name == "native",
                    prune_foreign=prune_foreign,
                    log=log,
                )
                kept = [verdict for verdict in reaping.kept.values() if verdict is not Verdict.ALIVE]
                note = (
                    f"; kept {len(kept)} not provably ours to drop (`nox -s down -- {PRUNE_FOREIGN}` "
                    "also drops dead runs' of other state directories on this host)"
                    if kept
                    else ""
                )
                log(f"orphans    dropped {len(reaping.dropped)} test database(s){note}")
            if backend.owns_services:
                backend.stop()
                log(f"services   stopped ({backend.name})")
        state.services = None
        if force:
            state.leases = []


def recorded_backend(services: dict[str, Any] | None) -> ServiceBackend:
    """The backend that started the recorded services; with nothing recorded, the one asked for.

    Native services outlive the environment that chose them (a later shell may lack
    `FR_SERVICES=native`), so the record, not the environment, says what `down` stops — unless
    the developer points at external services explicitly. With no record (a fresh state
    directory, a stack started by hand) `down` stops what this environment's runs would use:
    native services found by their data directory first, else what `FR_SERVICES` selects — so
    whether a run had "touched" the stack before does not change what `down` does.
    """
    native = {**os.environ, "FR_SERVICES": "native"}
    recorded = (services or {}).get("backend")
    requested = requested_backend()
    if recorded == "native" and requested != "external":
        return select_backend(native)
    if recorded is None and requested in ("auto", "native"):
        backend = select_backend(native)
        if requested == "native" or backend.running():
            return backend
    return select_backend()
