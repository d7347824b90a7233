"""The test lifecycle: lease the services, give the run its own databases and bucket, clean up.

Order matters and is the whole point of this module:
1. Take a lease (start the services when none are up, join them when they are).
2. Remove this namespace's leftovers from a crashed run, then clone the migrated template into
   the test database and one database per xdist worker; create the bucket.
3. Hand pytest the run's contract (noxlib/run_contract.py) in its environment.
4. Always — on success, failure, Ctrl+C or SIGTERM — drop what step 2 made and release the
   lease; the last lease out stops services that a test run started.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from noxlib import buckets
from noxlib.databases import DatabaseJanitor, migrations_hash
from noxlib.errors import UserError
from noxlib.leases import Lease, LeaseRegistry, RegistryState
from noxlib.namespace import (
    get_namespace,
    get_worker_db_name,
    sanitize_namespace,
)
from noxlib.paths import BACKEND_DIR, REPO_ROOT, state_dir
from noxlib.processes import adopt_orphans, current_process_identity, stop_descendants_with_env
from noxlib.redaction import redact, redacting
from noxlib.run_contract import RunContract
from noxlib.services import ServiceBackend, ServiceUrls, requested_backend, select_backend

# The signal rules live in noxlib/signals.py; the sessions keep importing them from here.
from noxlib.signals import Terminated as Terminated
from noxlib.signals import signals_deferred as signals_deferred
from noxlib.signals import terminate_as_interrupt as terminate_as_interrupt

MIGRATIONS_DIR = BACKEND_DIR / "alembic"
Log = Callable[[str], None]


# ----- output ------------------------------------------------------------------------------
@dataclass
class Phases:
    """One line per phase with its duration — the run's story in a handful of lines."""

    log: Log
    secrets: list[str] = field(default_factory=list)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[list[str]]:
        details: list[str] = []
        started = time.perf_counter()
        yield details
        elapsed = time.perf_counter() - started
        self.log(redact(f"{name:<10} {' '.join(details)} ({elapsed:.2f}s)", self.secrets))


# ----- leases ------------------------------------------------------------------------------
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
    with phases.phase("backend") as details, leases.locked() as state:
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


# ----- test runs ---------------------------------------------------------------------------
def resolve_workers(args: list[str], default: str = "auto") -> tuple[int, list[str]]:
    """How many xdist workers pytest will start, and the args with `auto` made explicit.

    The lifecycle must create one database per worker before pytest starts, so `-n auto` is
    resolved here (to the CPUs this process may use) instead of inside xdist.
    """
    args = list(args)
    if "no:xdist" in args:
        return 0, args
    value, index, joined = None, None, False
    for position, arg in enumerate(args):
        if arg in ("-n", "--numprocesses") and position + 1 < len(args):
            value, index = args[position + 1], position + 1
        elif arg.startswith("--numprocesses="):
            value, index, joined = arg.split("=", 1)[1], position, True
        elif arg.startswith("-n") and len(arg) > 2 and not arg.startswith("--"):
            value, index, joined = arg[2:], position, True
    if value is None:
        value = default
        args = ["-n", value, *args]
        index, joined = 1, False
    if value in ("auto", "logical"):
        count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        value = str(count or 1)
    if not value.isdigit():
        raise UserError(f"pytest -n expects a number or 'auto', got {value!r}.")
    if int(value) > 999:
        raise UserError("more than 999 xdist workers: worker database names would not fit.")
    assert index is not None
    args[index] = f"--numprocesses={value}" if joined else value
    return int(value), args


@dataclass
class IsolatedRun:
    """What a test session needs from the lifecycle: the run's contract and its services."""

    contract: RunContract
    workers: int
    urls: ServiceUrls

    @property
    def namespace(self) -> str:
        return self.contract.namespace

    @property
    def env(self) -> dict[str, str]:
        return self.contract.to_env()


def run_namespace(suffix: str | None = None) -> str:
    namespace = get_namespace(REPO_ROOT)
    if suffix:
        namespace = f"{namespace}_{sanitize_namespace(suffix)}"
    return namespace


def prepare_template(
    service_lease: ServiceLease, janitor: DatabaseJanitor, migrate: Callable[[str], None]
) -> tuple[str, bool]:
    """The migrated template for the current migrations, built once and shared by all runs."""
    from filelock import FileLock

    schema_hash = migrations_hash(MIGRATIONS_DIR)
    with FileLock(str(state_dir() / "template.lock")):
        template, built = janitor.ensure_template(
            schema_hash,
            migrate,
            lambda name: service_lease.urls.database_url(name, driver="postgresql+psycopg"),
        )
        needed = set_lease_template(service_lease, template)
        janitor.drop_stale_templates(keep=needed | {template})
    return template, built


@contextlib.contextmanager
def isolated_run(
    migrate: Callable[[str], None],
    *,
    workers: int = 0,
    log: Log = print,
    namespace_suffix: str | None = None,
) -> Iterator[IsolatedRun]:
    """A migrated database per worker and a bucket, torn down however the run ends.

    Test runs use it with their xdist worker count; `boot` and `smoke` with none.
    """
    with terminate_as_interrupt():
        adopt_orphans()  # xdist workers orphaned by a killed pytest stay ours to stop
        namespace = run_namespace(namespace_suffix)
        with leased_services("test", namespace, log=log) as service_lease:
            urls = service_lease.urls
            log = redacting(log, urls.secrets())
            phases = Phases(log, urls.secrets())
            log(f"namespace  {namespace}")
            # The native backend's server lives in this state directory: nobody else's runs use it.
            janitor = DatabaseJanitor(
                urls.database_url(), namespace, private=service_lease.backend.name == "native", log=log
            )
            contract = RunContract.for_run("test", urls, namespace)
            bucket = contract.bucket
            # Until the namespace is known to be free on this server (no live run elsewhere holds
            # it), its bucket and Redis keys may be another run's: cleanup must not touch them.
            claimed = False
            try:
                with phases.phase("database") as details:
                    leftovers = janitor.drop_leftovers()
                    claimed = True
                    template, built = prepare_template(service_lease, janitor, migrate)
                    names = [contract.database] + [
                        get_worker_db_name(namespace, f"gw{index}") for index in range(workers)
                    ]
                    for name in names:
                        janitor.clone(template, name)
                    details.append(
                        f"{names[0]} + {workers} worker clone(s) of {template} "
                        f"({'built' if built else 'reused'})"
                        + (f"; removed {len(leftovers)} leftover(s)" if leftovers else "")
                    )
                with phases.phase("bucket") as details:
                    buckets.create_bucket(urls, bucket)
                    details.append(bucket)
                log("ports      " + " ".join(f"{k}={v}" for k, v in urls.ports().items()))
                yield IsolatedRun(contract, workers, urls)
            finally:
                with signals_deferred(), phases.phase("cleanup") as details:
                    # Nothing of the run may still write to what is about to be dropped.
                    if stray := stop_descendants_with_env("TEST_NAMESPACE", namespace):
                        details.append(f"stopped {len(stray)} leftover test process(es);")
                    details.append(clean_up_run(janitor, urls, contract, claimed=claimed))


def clean_up_run(janitor: DatabaseJanitor, urls: ServiceUrls, contract: RunContract, *, claimed: bool = True) -> str:
    """Drop the run's databases, bucket and Redis keys; the first failure is raised after all three.

    A PostgreSQL that died mid-run must not also leave the bucket and the Redis keys behind:
    each step is tried on its own, and the next run of the namespace removes the rest. A run
    that never `claimed` its namespace (a live run elsewhere holds it) drops only what it created.
    """
    failures: list[UserError] = []
    dropped: list[str] = []
    try:
        dropped = janitor.drop_all_own()
    except UserError as error:
        failures.append(postgres_died(urls, janitor, error))
    if not claimed:
        if failures:
            raise failures[0]
        return f"dropped {len(dropped)} database(s); the namespace's bucket and redis keys are another run's"
    try:
        buckets.remove_bucket(urls, contract.bucket)
    except UserError as error:
        failures.append(error)
    keys = delete_redis_keys(urls, contract.redis_key_pattern)
    if failures:
        raise failures[0]
    return f"dropped {len(dropped)} database(s), bucket, {keys} redis key(s)"


def postgres_died(urls: ServiceUrls, janitor: DatabaseJanitor, error: UserError) -> UserError:
    """A cleanup that cannot reach PostgreSQL says that the server died, not only that a connect failed."""
    from noxlib.services.probes import postgres_ready

    if postgres_ready(urls):
        return error
    return UserError(
        f"PostgreSQL died during the run; left: databases {janitor.test_db}*, which the next run of "
        f"this namespace removes ({str(error).rstrip('.')})"
    )


def delete_redis_keys(urls: ServiceUrls, pattern: str) -> int:
    """Remove the run's Redis keys: every key matching its contract's `redis_key_pattern`."""
    # redis takes half a second to import: only the sessions that clean a namespace pay for it.
    import redis

    client = redis.Redis.from_url(urls.redis_url, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=pattern, count=500))
        if keys:
            client.delete(*keys)
        return len(keys)
    except redis.RedisError:
        return 0
    finally:
        client.close()


def migrate_with_alembic(run: Callable[..., Any]) -> Callable[[str], None]:
    """A `migrate(database_url)` that runs `alembic upgrade head` from the backend directory."""

    def migrate(database_url: str) -> None:
        cwd = os.getcwd()
        os.chdir(BACKEND_DIR)
        try:
            run("alembic", "upgrade", "head", env={"DATABASE_URL": database_url}, silent=True)
        finally:
            os.chdir(cwd)

    return migrate


# ----- services a developer keeps ----------------------------------------------------------
def keep_services(log: Log = print) -> ServiceUrls:
    """Start (or join) the services and mark them as the developer's: only `down` stops them."""
    with leased_services("infra", run_namespace(), keep=True, log=log) as service_lease:
        urls = service_lease.urls
        log = redacting(log, urls.secrets())
        log(f"postgres   {urls.database_url()}")
        log(f"redis      {urls.redis_url}")
        log(f"s3         {urls.s3_endpoint} (access key {urls.s3_access_key})")
        if service_lease.backend.name == "native":
            log(f"passwords  in {state_dir() / 'native' / 'credentials.json'}")
        return urls


PRUNE_FOREIGN = "--prune-foreign"


def down(log: Log = print, *, force: bool = False, prune_foreign: bool = False) -> None:
    """Stop the services; refuse while another run holds a lease, unless forced.

    Test databases are dropped only when provably dead (see `drop_orphan_test_databases`):
    a live run of another clone, user or CI runner sharing the server keeps its databases,
    even with `--force`.
    """
    from noxlib.databases import Verdict, drop_orphan_test_databases
    from noxlib.services.native import NativeServices
    from noxlib.services.probes import postgres_ready

    leases = registry()
    with leases.locked() as state:
        for lease in state.pruned:
            log(f"pruned     dead lease of pid {lease.pid} ({lease.namespace})")
        if state.leases and not force:
            holders = ", ".join(f"pid {lease.pid} ({lease.kind} {lease.namespace})" for lease in state.leases)
            raise UserError(
                f"{len(state.leases)} run(s) still use the services: {holders}; "
                "wait for them to finish or run `nox -s down -- --force`."
            )
        recorded = (state.services or {}).get("backend")
        explicit = requested_backend() == "external"
        backend = NativeServices() if recorded in (None, "native") and not explicit else select_backend()
        if backend.name == "native" and not NativeServices().running():
            log("services   none running")
        else:
            urls = backend.urls()
            log = redacting(log, urls.secrets())
            if postgres_ready(urls):
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
