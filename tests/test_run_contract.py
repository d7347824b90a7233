"""The run contract: one writer of the environment the apps read, and kinds that never overlap."""

from __future__ import annotations

import ast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from noxlib.core.errors import UserError
from noxlib.core.paths import REPO_ROOT
from noxlib.names.namespace import get_worker_db_name, sanitize_namespace
from noxlib.names.run_contract import RUN_KEYS, SERVICE_KEYS, TEST_KEYS, RunContract
from noxlib.run import lifecycle
from noxlib.services import ServiceUrls

URLS = ServiceUrls(
    postgres_host="127.0.0.1",
    postgres_port=5432,
    postgres_user="postgres",
    postgres_password="p@ss word",
    redis_url="redis://127.0.0.1:6379/0",
    s3_endpoint="http://127.0.0.1:9000",
    s3_access_key="access",
    s3_secret_key="secret-key-value",
)
namespaces = st.text(min_size=1, max_size=80).map(sanitize_namespace).filter(bool)


@given(namespaces, st.sampled_from(["test", "dev"]))
def test_the_environment_reads_back_as_the_same_contract(namespace, kind):
    contract = RunContract.for_run(kind, URLS, namespace)
    assert RunContract.from_env(contract.to_env()) == contract


@given(namespaces)
def test_test_and_dev_runs_of_one_namespace_share_no_name(namespace):
    test, dev = (RunContract.for_run(kind, URLS, namespace) for kind in ("test", "dev"))
    assert test.database != dev.database
    assert test.bucket != dev.bucket
    # A test run's cleanup removes `<prefix>:*`; it must match none of the dev app's keys.
    assert not f"{dev.redis_key_prefix}:reconciliation:stats".startswith(f"{test.redis_key_prefix}:")
    assert not f"{test.redis_key_prefix}:gw0:x".startswith(f"{dev.redis_key_prefix}:")


@given(namespaces, st.integers(min_value=0, max_value=999))
def test_the_worker_pattern_names_the_databases_the_lifecycle_clones(namespace, index):
    contract = RunContract.for_run("test", URLS, namespace)
    worker = f"gw{index}"
    assert contract.worker_database_pattern.replace("{worker}", worker) == get_worker_db_name(namespace, worker)


def test_only_test_runs_carry_the_test_keys():
    assert "TEST_NAMESPACE" in RunContract.for_run("test", URLS, "ns").to_env()
    assert not {"TEST_NAMESPACE", "TEST_DATABASE_WORKER_PATTERN"} & set(RunContract.for_run("dev", URLS, "ns").to_env())


def test_a_missing_key_is_one_line_naming_it():
    env = RunContract.for_run("test", URLS, "ns").to_env()
    del env[SERVICE_KEYS[0]]
    with pytest.raises(UserError, match=rf"^the run's environment lacks {SERVICE_KEYS[0]}; start it through nox\.$"):
        RunContract.from_env(env)


def test_a_test_runs_redis_cleanup_leaves_the_dev_apps_keys(services):
    """The journey the issue reported: `nox -s test` of namespace X used to delete `nox -s dev`'s keys of X."""
    import redis

    urls = services.urls
    test, dev = (RunContract.for_run(kind, urls, "contract_probe") for kind in ("test", "dev"))
    client = redis.Redis.from_url(urls.redis_url)
    try:
        client.set(f"{dev.redis_key_prefix}:reconciliation:stats", "dev data")
        client.set(f"{test.redis_key_prefix}:gw0:reconciliation:stats", "test data")
        assert lifecycle.delete_redis_keys(urls, test.redis_key_pattern) == 1
        assert client.get(f"{dev.redis_key_prefix}:reconciliation:stats") == b"dev data"
    finally:
        client.delete(f"{dev.redis_key_prefix}:reconciliation:stats")
        client.close()


# ----- the backend's side of the contract ---------------------------------------------------------
BACKEND_CONTRACT = REPO_ROOT / "apps" / "backend" / "tests" / "contract.py"


def backend_contract_keys() -> tuple[str, ...]:
    """`CONTRACT_KEYS` of the backend's test harness, read from its source (the apps never import
    noxlib, and noxlib never imports the apps: the check sits between them)."""
    tree = ast.parse(BACKEND_CONTRACT.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "CONTRACT_KEYS" for target in node.targets
        ):
            return tuple(ast.literal_eval(node.value))
    raise AssertionError(f"{BACKEND_CONTRACT} defines no CONTRACT_KEYS")


def test_the_backend_requires_exactly_the_keys_a_test_run_hands_it():
    """One writer (noxlib/names/run_contract.py), one reader (apps/backend/tests/contract.py): a key added
    on one side and not the other fails here, before a run fails with "lacks KEY"."""
    handed = RunContract.for_run("test", URLS, "contract_keys").to_env()
    assert sorted(backend_contract_keys()) == sorted(handed)
    assert sorted(handed) == sorted(SERVICE_KEYS + RUN_KEYS + TEST_KEYS)
