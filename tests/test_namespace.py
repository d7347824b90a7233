"""The naming rules: the examples the docs promise, and properties over arbitrary branch names."""

from __future__ import annotations

import ipaddress
import re
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noxlib.core.errors import UserError
from noxlib.names.namespace import (
    get_dev_bucket,
    get_dev_db_name,
    get_env_suffix,
    get_namespace,
    get_s3_bucket,
    get_template_db_name,
    get_test_db_name,
    get_worker_db_name,
    repo_path_hash,
    require_namespace,
    sanitize_namespace,
    worker_db_pattern,
)

BUCKET_RULE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def test_documented_examples():
    assert sanitize_namespace("feature/auth-v2") == "feature_auth_v2"
    assert get_test_db_name("feature_auth") == "finance_report_test_feature_auth"
    assert get_worker_db_name("feature_auth", "gw0") == "finance_report_test_feature_auth__gw0"
    assert worker_db_pattern("feature_auth") == "finance_report_test_feature_auth__{worker}"
    assert get_s3_bucket("feature_auth") == "statements-test-feature-auth"
    assert get_dev_bucket("feature_auth") == "statements-dev-feature-auth"
    assert get_dev_db_name("feature_auth") == "finance_report_dev_feature_auth"
    assert get_env_suffix("feature_auth") == "-feature_auth"


def test_branch_name_and_workspace_id_win():
    env = {"BRANCH_NAME": "feature-auth", "WORKSPACE_ID": "alice"}
    assert get_namespace(environ=env) == "feature_auth_alice"
    assert get_namespace(environ={"BRANCH_NAME": "feature-auth"}) == "feature_auth"


def _git_repo(path, branch):
    subprocess.run(["git", "init", "-q", "-b", branch, str(path)], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(path),
            "-c",
            "user.email=a@b",
            "-c",
            "user.name=a",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "init",
        ],
        check=True,
    )


def test_git_branch_gets_checkout_hash(tmp_path):
    _git_repo(tmp_path, "feature-payments")
    namespace = get_namespace(repo=tmp_path, environ={})
    assert namespace == f"feature_payments_{repo_path_hash(tmp_path)}"
    assert re.fullmatch(r"feature_payments_[0-9a-f]{8}", namespace)


def test_symbol_only_git_branch_does_not_crash(tmp_path):
    _git_repo(tmp_path, "日本語")
    namespace = get_namespace(repo=tmp_path, environ={})
    assert re.fullmatch(r"branch_[0-9a-f]{8}_[0-9a-f]{8}", namespace)


def test_no_git_falls_back_with_a_warning(tmp_path, capsys):
    namespace = get_namespace(repo=tmp_path, environ={})
    assert namespace == f"default_{repo_path_hash(tmp_path)}"
    assert "BRANCH_NAME" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["///", "日本", "   -_- "])
def test_unusable_branch_name_is_a_one_line_error(value):
    with pytest.raises(UserError) as error:
        get_namespace(environ={"BRANCH_NAME": value})
    assert "BRANCH_NAME" in str(error.value)
    assert "\n" not in str(error.value)


def test_dropped_characters_keep_names_distinct():
    assert sanitize_namespace("café") != sanitize_namespace("cafè")


def test_long_names_stay_distinct_after_shortening():
    a = "feature_" + "x" * 80 + "_a"
    b = "feature_" + "x" * 80 + "_b"
    assert get_test_db_name(a) != get_test_db_name(b)
    assert get_s3_bucket(a) != get_s3_bucket(b)


branch_names = st.text(min_size=1, max_size=200)


@settings(max_examples=300, deadline=None)
@given(branch_names, st.integers(min_value=0, max_value=999))
def test_database_names_always_fit(branch, worker):
    namespace = sanitize_namespace(branch) or "x"
    name = get_worker_db_name(namespace, f"gw{worker}")
    assert len(name.encode()) <= 63
    assert re.fullmatch(r"[a-z0-9_]+", name)
    assert name.startswith(get_test_db_name(namespace))


@settings(max_examples=300, deadline=None)
@given(branch_names)
def test_bucket_names_follow_s3_rules(branch):
    bucket = get_s3_bucket(sanitize_namespace(branch) or "x")
    assert 3 <= len(bucket) <= 63
    assert BUCKET_RULE.match(bucket)
    assert "--" not in bucket
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        ipaddress.ip_address(bucket)


@settings(max_examples=300, deadline=None)
@given(branch_names)
def test_sanitized_namespace_is_safe(branch):
    namespace = sanitize_namespace(branch)
    assert re.fullmatch(r"([a-z0-9]+(_[a-z0-9]+)*)?", namespace)


@settings(max_examples=200, deadline=None)
@given(branch_names, branch_names)
def test_distinct_long_namespaces_get_distinct_names(a, b):
    na, nb = sanitize_namespace(a), sanitize_namespace(b)
    if na and nb and na != nb:
        assert get_test_db_name(na) != get_test_db_name(nb)


def test_workspace_id_also_separates_runs_of_one_checkout(tmp_path):
    _git_repo(tmp_path, "feature-payments")
    plain = get_namespace(repo=tmp_path, environ={})
    assert get_namespace(repo=tmp_path, environ={"WORKSPACE_ID": "shard-2"}) == f"{plain}_shard_2"


# ----- kinds never share a name (issue 12 item 2) --------------------------------------------
namespaces = st.one_of(
    st.text(min_size=1, max_size=120).map(sanitize_namespace).filter(bool),
    # Shapes that collided before: a namespace ending like a worker id, or starting like a dev one.
    st.tuples(st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True), st.integers(0, 999)).map(lambda t: f"{t[0]}_gw{t[1]}"),
    st.from_regex(r"dev_[a-z0-9]{1,20}(_[a-z0-9]{1,8}){0,3}", fullmatch=True),
    st.from_regex(r"[a-z0-9]{60,90}", fullmatch=True),
)


def database_names(namespace: str, worker: int) -> dict[str, str]:
    return {
        "test": get_test_db_name(namespace),
        "worker": get_worker_db_name(namespace, f"gw{worker}"),
        "dev": get_dev_db_name(namespace),
    }


def bucket_names(namespace: str) -> dict[str, str]:
    return {"test": get_s3_bucket(namespace), "dev": get_dev_bucket(namespace)}


def related(namespace: str, worker: int) -> st.SearchStrategy[str]:
    """Namespaces built from another one the way the reported collisions were."""
    return st.sampled_from([namespace, f"{namespace}_gw{worker}", f"dev_{namespace}", f"test_{namespace}"])


namespace_pairs = st.tuples(namespaces, st.integers(0, 999)).flatmap(
    lambda pair: st.tuples(st.one_of(namespaces, related(*pair)), st.just(pair[0]), st.just(pair[1]))
)


@settings(max_examples=500, deadline=None)
@given(namespace_pairs, st.integers(0, 999), st.from_regex(r"[0-9a-f]{64}", fullmatch=True))
def test_names_of_different_kinds_never_coincide(pair, worker_a, schema_hash):
    """Any two namespaces, any two workers: a name of one kind is never a name of another kind."""
    a, b, worker_b = pair
    template = get_template_db_name(schema_hash)
    for kind_a, name_a in database_names(a, worker_a).items():
        assert name_a != template
        for kind_b, name_b in database_names(b, worker_b).items():
            if kind_a != kind_b:
                assert name_a != name_b, (kind_a, a, kind_b, b)
    for kind_a, name_a in bucket_names(a).items():
        for kind_b, name_b in bucket_names(b).items():
            if kind_a != kind_b:
                assert name_a != name_b, (kind_a, a, kind_b, b)


@settings(max_examples=300, deadline=None)
@given(namespaces, st.integers(0, 999))
def test_every_name_fits_postgresql_and_s3(namespace, worker):
    for name in database_names(namespace, worker).values():
        assert len(name.encode()) <= 63
        assert re.fullmatch(r"[a-z0-9_]+", name)
    for bucket in bucket_names(namespace).values():
        assert BUCKET_RULE.match(bucket)
        assert "--" not in bucket


def test_the_collisions_the_issue_found_are_gone():
    assert get_test_db_name("x_gw0") != get_worker_db_name("x", "gw0")
    assert get_s3_bucket("dev_x") != get_dev_bucket("x")


@pytest.mark.parametrize("value", ["", "a__b", "_a", "a_", "A", "a-b", "a.b", "dev:x"])
def test_a_namespace_sanitize_could_not_produce_is_refused(value):
    with pytest.raises(ValueError, match="namespace"):
        require_namespace(value)
    with pytest.raises(ValueError, match="namespace"):
        get_test_db_name(value)
