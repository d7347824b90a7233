"""scripts/health_check.sh against an app stand-in: retries, sha matching, the failure summary."""

from __future__ import annotations

import pytest

LONG_SHA = "0123456789abcdef0123456789abcdef01234567"
FAST = {"HEALTH_CHECK_DELAY": "0", "HEALTH_CHECK_TIMEOUT": "5"}


def check(run_script, url: str, *args: str):
    return run_script("health_check.sh", url, "staging", *args, env=FAST)


def test_healthy_on_first_answer(run_script, app_server, health):
    app = app_server([(200, health())])
    result = check(run_script, f"{app.url}/api/health", "3")
    assert result.returncode == 0, result.output
    assert "staging is healthy (attempt 1/3" in result.stdout
    assert len(app.requests) == 1


def test_unhealthy_then_healthy_retries_until_healthy(run_script, app_server, health):
    app = app_server(
        [(502, "Bad Gateway"), (503, health("unhealthy")), (200, health())],
    )
    result = check(run_script, f"{app.url}/api/health", "5")
    assert result.returncode == 0, result.output
    assert "attempt 1/5: not-json (HTTP 502" in result.stdout
    assert "attempt 2/5: unhealthy (HTTP 503" in result.stdout
    assert "healthy (attempt 3/5" in result.stdout
    assert len(app.requests) == 3


def test_never_healthy_fails_with_a_troubleshooting_summary(run_script, app_server, health):
    app = app_server([(503, health("unhealthy"))])
    result = check(run_script, f"{app.url}/api/health", "3")
    assert result.returncode == 1
    assert len(app.requests) == 3
    assert "did not become healthy after 3 attempts" in result.stderr
    assert "last HTTP code: 503" in result.stderr
    assert "last status:    unhealthy" in result.stderr
    assert "Troubleshooting:" in result.stderr


def test_server_errors_are_retried_and_reported(run_script, app_server):
    app = app_server([(500, "Internal Server Error")])
    result = check(run_script, f"{app.url}/api/health", "2")
    assert result.returncode == 1
    assert "last result:    not-json" in result.stderr
    assert "Internal Server Error" in result.stderr  # the body excerpt


def test_healthy_body_with_an_error_code_is_not_trusted(run_script, app_server, health):
    app = app_server([(500, health())])
    result = check(run_script, f"{app.url}/api/health", "1")
    assert result.returncode == 1
    assert "http-500" in result.output


@pytest.mark.parametrize(
    ("served", "expected"),
    [
        (LONG_SHA, LONG_SHA),
        (LONG_SHA, LONG_SHA[:7]),  # short tag, long sha in the reply
        (LONG_SHA[:7], LONG_SHA),  # long tag, short sha in the reply
        (LONG_SHA.upper(), LONG_SHA[:12]),
    ],
)
def test_sha_matches_by_prefix_either_way(run_script, app_server, health, served, expected):
    app = app_server([(200, health(git_sha=served))])
    result = check(run_script, f"{app.url}/api/health", "1", expected)
    assert result.returncode == 0, result.output


def test_old_release_still_serving_is_a_sha_mismatch(run_script, app_server, health):
    app = app_server([(200, health(git_sha="fedcba9876543210"))])
    result = check(run_script, f"{app.url}/api/health", "2", LONG_SHA)
    assert result.returncode == 1
    assert "last result:    sha-mismatch" in result.stderr
    assert "git_sha seen:   fedcba9876543210" in result.stderr
    assert f"git_sha wanted: {LONG_SHA}" in result.stderr


def test_old_release_then_new_release(run_script, app_server, health):
    app = app_server([(200, health(git_sha="fedcba98")), (200, health(git_sha=LONG_SHA))])
    result = check(run_script, f"{app.url}/api/health", "3", LONG_SHA[:8])
    assert result.returncode == 0, result.output
    assert "attempt 1/3: sha-mismatch" in result.stdout


def test_a_too_short_sha_proves_nothing(run_script, app_server, health):
    app = app_server([(200, health(git_sha="0123"))])
    result = check(run_script, f"{app.url}/api/health", "1", LONG_SHA)
    assert result.returncode == 1
    assert "sha-mismatch" in result.stderr


def test_missing_sha_in_reply_fails_when_one_is_expected(run_script, app_server, health):
    app = app_server([(200, health(git_sha=None))])
    result = check(run_script, f"{app.url}/api/health", "1", LONG_SHA)
    assert result.returncode == 1
    assert "sha-mismatch" in result.stderr


def test_unreachable_app_fails_with_the_connection_error(run_script, unused_port):
    result = check(run_script, f"http://127.0.0.1:{unused_port}/api/health", "2")
    assert result.returncode == 1
    assert "last result:    unreachable" in result.stderr
    assert "last HTTP code: 000" in result.stderr


def test_missing_arguments_are_listed_together(run_script):
    result = run_script("health_check.sh", env=FAST)
    assert result.returncode == 2
    assert "missing <health_url> <environment>" in result.stderr
    assert "usage:" in result.stderr


@pytest.mark.parametrize("attempts", ["0", "-1", "three"])
def test_bad_attempt_count_is_a_usage_error(run_script, attempts):
    result = run_script("health_check.sh", "http://127.0.0.1:1/", "staging", attempts, env=FAST)
    assert result.returncode == 2
    assert f"max_attempts must be a positive integer, got '{attempts}'" in result.stderr


def test_bad_delay_is_a_usage_error(run_script):
    result = run_script("health_check.sh", "http://127.0.0.1:1/", "staging", env={"HEALTH_CHECK_DELAY": "soon"})
    assert result.returncode == 2
    assert "HEALTH_CHECK_DELAY must be a number of seconds" in result.stderr


def test_degraded_is_not_a_finished_deploy_and_names_what_fails(run_script, app_server, health):
    """200 `degraded` (Redis down) keeps a load balancer routing, but a deploy waits for healthy."""
    degraded = {**health("degraded"), "failing": ["redis"]}
    app = app_server([(200, degraded), (200, health())])
    result = run_script("health_check.sh", f"{app.url}/api/health", "staging", "3", env={"HEALTH_CHECK_DELAY": "0"})
    assert result.returncode == 0, result.output
    assert "attempt 1/3: degraded (redis failing) (HTTP 200, status degraded" in result.stdout
    assert "staging is healthy (attempt 2/3" in result.stdout
