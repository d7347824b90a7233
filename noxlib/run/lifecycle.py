"""The test lifecycle: lease the services, give the run its own databases and bucket, clean up.

Order matters and is the whole point of this module:
1. Take a lease (start the services when none are up, join them when they are).
2. Remove this namespace's leftovers from a crashed run, then clone the migrated template into
   the test database and one database per xdist worker; create the bucket.
3. Hand pytest the run's contract (noxlib/names/run_contract.py) in its environment.
4. Always — on success, failure, Ctrl+C or SIGTERM — drop what step 2 made and release the
   lease; the last lease out stops services that a test run started.

The leases live in noxlib/run/service_leases.py, the services a developer keeps in noxlib/sessions/infra.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from noxlib.core.errors import UserError
from noxlib.core.json_store import lock_path
from noxlib.core.paths import BACKEND_DIR, REPO_ROOT, state_dir
from noxlib.core.phases import Log, Phases
from noxlib.core.processes import adopt_orphans, stop_descendants_with_env
from noxlib.core.redaction import redacting
from noxlib.core.signals import interrupt_once, signals_deferred
from noxlib.names.namespace import (
    get_namespace,
    get_worker_db_name,
    sanitize_namespace,
)
from noxlib.names.run_contract import RunContract
from noxlib.run import buckets
from noxlib.run.databases import DatabaseJanitor, migrations_hash
from noxlib.run.service_leases import ServiceLease, leased_services, set_lease_template
from noxlib.services import ServiceUrls

MIGRATIONS_DIR = BACKEND_DIR / "alembic"
ALEMBIC_CONFIG = BACKEND_DIR / "alembic.ini"


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
    with FileLock(lock_path(state_dir() / "template.lock")):
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
    with interrupt_once():
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
            # The bucket is made beside the database clones (boto3's import and S3's answers overlap
            # PostgreSQL's copying), but only once the namespace is claimed; cleanup waits for it.
            bucket_creation: Future[None]
            creator = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bucket")
            try:
                with phases.phase("database") as details:
                    leftovers = janitor.drop_leftovers()
                    claimed = True
                    bucket_creation = creator.submit(buckets.create_bucket, urls, bucket)
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
                    bucket_creation.result()
                    details.append(bucket)
                log("ports      " + " ".join(f"{k}={v}" for k, v in urls.ports().items()))
                yield IsolatedRun(contract, workers, urls)
            finally:
                with signals_deferred(), phases.phase("cleanup") as details:
                    # A bucket still being created would outlive the cleanup that removes it.
                    creator.shutdown(wait=True)
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
    """A `migrate(database_url)` that runs the backend's `alembic upgrade head` through `run`."""

    def migrate(database_url: str) -> None:
        # No chdir (it would move every thread of the process): the config is named by its path
        # (its `script_location` is relative to itself) and the backend's `src` is put on the path.
        run(
            "alembic",
            "-c",
            str(ALEMBIC_CONFIG),
            "upgrade",
            "head",
            env={"DATABASE_URL": database_url, "PYTHONPATH": str(BACKEND_DIR)},
            silent=True,
        )

    return migrate


# ----- services a developer keeps ----------------------------------------------------------
