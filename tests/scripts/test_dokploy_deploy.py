"""scripts/dokploy_deploy.sh against a Dokploy stand-in: inputs, env upsert, errors, secrets."""

from __future__ import annotations

import json
import socket
import threading

import psutil
import pytest

SHA = "0123456789abcdef0123456789abcdef01234567"


def deploy_env(server, **extra: str) -> dict[str, str]:
    return {
        "DOKPLOY_API_URL": f"{server.url}/api/",
        "DOKPLOY_API_KEY": server.api_key,
        "GIT_COMMIT_SHA": SHA,
        **extra,
    }


def env_of(server, compose_id: str) -> dict[str, str]:
    lines = server.composes[compose_id].env.splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return dict(pairs)  # type: ignore[arg-type]


def assert_no_secret(server, text: str) -> None:
    for secret in server.all_secrets:
        assert secret not in text


def test_lists_every_missing_input_at_once(run_script):
    result = run_script("dokploy_deploy.sh")
    assert result.returncode == 2
    for expected in (
        "<compose_id>",
        "<image_tag>",
        "<app_url>",
        "GIT_COMMIT_SHA",
        "DOKPLOY_API_URL",
        "DOKPLOY_API_KEY",
    ):
        assert expected in result.stderr
    assert "missing 6 input(s)" in result.stderr


def test_github_sha_stands_in_for_git_commit_sha(run_script, dokploy):
    env = deploy_env(dokploy)
    del env["GIT_COMMIT_SHA"]
    result = run_script("dokploy_deploy.sh", "cmp-staging", SHA, "https://x", env={**env, "GITHUB_SHA": "f" * 40})
    assert result.returncode == 0, result.output
    assert env_of(dokploy, "cmp-staging")["GIT_COMMIT_SHA"] == "f" * 40


def test_deploy_upserts_keys_keeps_the_rest_then_deploys(run_script, dokploy):
    result = run_script(
        "dokploy_deploy.sh",
        "cmp-staging",
        SHA,
        "https://report-staging.example.com",
        env=deploy_env(dokploy, ENV_SUFFIX="-staging"),
    )
    assert result.returncode == 0, result.output
    env = env_of(dokploy, "cmp-staging")
    assert env["IMAGE_TAG"] == SHA
    assert env["GIT_COMMIT_SHA"] == SHA
    assert env["NEXT_PUBLIC_APP_URL"] == "https://report-staging.example.com"
    assert env["COMPOSE_PROFILES"] == "app"
    assert env["ENV_SUFFIX"] == "-staging"
    # Hand-set values survive, in place, with comments.
    assert env["POSTGRES_PASSWORD"] == dokploy.postgres_password
    assert env["BASE_CURRENCY"] == "SGD"
    assert dokploy.composes["cmp-staging"].env.startswith("# staging settings")
    assert dokploy.composes["cmp-staging"].env.count("IMAGE_TAG=") == 1
    # Read, write, then deploy — in that order, with the key in the x-api-key header.
    assert dokploy.calls() == ["compose.one", "compose.update", "compose.deploy"]
    assert all(request.headers["x-api-key"] == dokploy.api_key for request in dokploy.requests)
    assert dokploy.deployed == ["cmp-staging"]
    assert_no_secret(dokploy, result.output)


def test_wrong_key_fails_with_401_and_never_shows_the_key(run_script, dokploy):
    env = deploy_env(dokploy, DOKPLOY_API_KEY="wrong-key-abcdef123456")
    result = run_script("dokploy_deploy.sh", "cmp-staging", SHA, "https://x", env=env)
    assert result.returncode == 1
    assert "HTTP 401" in result.stderr
    assert "DOKPLOY_API_KEY" in result.stderr  # the hint names what to fix
    assert "wrong-key-abcdef123456" not in result.output
    assert dokploy.deployed == []


@pytest.mark.parametrize("endpoint", ["compose.one", "compose.update", "compose.deploy"])
def test_server_error_fails_and_shows_the_reply_with_secrets_masked(run_script, dokploy, endpoint):
    leaky = {
        "message": "Internal error",
        "env": dokploy.composes["cmp-staging"].env,
        "apiKey": dokploy.api_key,
    }
    dokploy.failures[endpoint] = (500, leaky)
    result = run_script("dokploy_deploy.sh", "cmp-staging", SHA, "https://x", env=deploy_env(dokploy))
    assert result.returncode == 1
    assert f"Dokploy API {'GET' if endpoint == 'compose.one' else 'POST'} {endpoint}" in result.stderr
    assert "answered HTTP 500" in result.stderr
    assert "Internal error" in result.stderr
    assert "***" in result.stderr
    # Secret-looking KEY=VALUE pairs are redacted even before the env was read.
    assert_no_secret(dokploy, result.output)
    assert dokploy.deployed == []


def test_unknown_compose_fails_with_the_servers_message(run_script, dokploy):
    result = run_script("dokploy_deploy.sh", "nope", SHA, "https://x", env=deploy_env(dokploy))
    assert result.returncode == 1
    assert "HTTP 404" in result.stderr
    assert "Compose nope not found" in result.stderr


def test_unreachable_api_is_a_clear_error(run_script, dokploy, unused_port):
    env = {"DOKPLOY_API_URL": f"http://127.0.0.1:{unused_port}", "DOKPLOY_API_KEY": dokploy.api_key}
    result = run_script("dokploy_deploy.sh", "c", SHA, "https://x", env={**env, "GIT_COMMIT_SHA": SHA})
    assert result.returncode == 1
    assert "did not answer" in result.stderr
    assert dokploy.api_key not in result.output


def test_github_actions_masks_the_key_and_secret_values_only(run_script, dokploy):
    env = deploy_env(dokploy, GITHUB_ACTIONS="true")
    result = run_script("dokploy_deploy.sh", "cmp-staging", SHA, "https://x", env=env)
    assert result.returncode == 0, result.output
    masked = {
        line.removeprefix("::add-mask::") for line in result.stdout.splitlines() if line.startswith("::add-mask::")
    }
    assert masked == {
        dokploy.api_key,
        dokploy.postgres_password,
        dokploy.s3_secret,
        dokploy.database_url,
    }
    # The mask commands come first, and the values appear nowhere else.
    stdout = result.stdout.splitlines()
    first_other = next(i for i, line in enumerate(stdout) if "::add-mask::" not in line)
    assert all("::add-mask::" not in line for line in stdout[first_other:])
    lines = result.output.splitlines()
    rest = "\n".join(line for line in lines if not line.startswith("::add-mask::"))
    assert_no_secret(dokploy, rest)


def test_preview_is_created_from_the_template_then_reused(run_script, dokploy):
    env = deploy_env(
        dokploy,
        DOKPLOY_PREVIEW_ENVIRONMENT_ID="env-previews",
        DOKPLOY_PREVIEW_TEMPLATE_ID="cmp-staging",
        PREVIEW_BRANCH="feature/x",
        ENV_SUFFIX="-pr-7",
    )
    args = ("--preview", "pr-7", "pr-7", "https://report-pr-7.example.com")
    first = run_script("dokploy_deploy.sh", *args, env=env)
    assert first.returncode == 0, first.output
    created = dokploy.composes["created-1"]
    assert created.name == "pr-7"
    assert created.environmentId == "env-previews"
    assert (created.sourceType, created.repository, created.branch) == (
        "github",
        "finance_report",
        "feature/x",
    )
    preview_env = env_of(dokploy, "created-1")
    assert preview_env["POSTGRES_PASSWORD"] == dokploy.postgres_password  # copied from the template
    assert preview_env["ENV_SUFFIX"] == "-pr-7"
    assert preview_env["IMAGE_TAG"] == "pr-7"
    assert dokploy.deployed == ["created-1"]
    assert_no_secret(dokploy, first.output)

    second = run_script("dokploy_deploy.sh", *args, env=env)
    assert second.returncode == 0, second.output
    assert dokploy.created == 1
    assert dokploy.deployed == ["created-1", "created-1"]


def test_preview_inputs_are_listed_together(run_script, dokploy):
    result = run_script("dokploy_deploy.sh", "--preview", env=deploy_env(dokploy))
    assert result.returncode == 2
    for expected in ("<name>", "<image_tag>", "<app_url>", "DOKPLOY_PREVIEW_ENVIRONMENT_ID"):
        assert expected in result.stderr
    assert "DOKPLOY_PREVIEW_TEMPLATE_ID" in result.stderr


def test_remove_preview_stops_then_deletes(run_script, dokploy):
    dokploy.composes["cmp-staging"].environmentId = "env-previews"
    dokploy.composes["cmp-staging"].name = "pr-9"
    env = deploy_env(dokploy, DOKPLOY_PREVIEW_ENVIRONMENT_ID="env-previews")
    result = run_script("dokploy_deploy.sh", "--remove-preview", "pr-9", env=env)
    assert result.returncode == 0, result.output
    assert dokploy.calls() == ["environment.one", "compose.stop", "compose.delete"]
    assert "cmp-staging" not in dokploy.composes
    assert dokploy.requests[-1].body == {"composeId": "cmp-staging", "deleteVolumes": True}


def test_remove_preview_of_a_missing_preview_is_a_no_op(run_script, dokploy):
    env = deploy_env(dokploy, DOKPLOY_PREVIEW_ENVIRONMENT_ID="env-previews")
    result = run_script("dokploy_deploy.sh", "--remove-preview", "pr-404", env=env)
    assert result.returncode == 0, result.output
    assert "nothing to remove" in result.stdout
    assert dokploy.calls() == ["environment.one"]


def test_unknown_option_is_a_usage_error(run_script):
    result = run_script("dokploy_deploy.sh", "--frobnicate")
    assert result.returncode == 2
    assert "unknown option '--frobnicate'" in result.stderr


def test_no_secret_on_curl_command_line_while_it_runs(run_script, dokploy):
    """Another process listing commands (ps, /proc) during the call must find no secret in curl's."""
    reached, release = threading.Event(), threading.Event()
    answer = dokploy.handle

    def held_update(request):
        if request.endpoint == "compose.update":
            reached.set()
            release.wait(30)
        return answer(request)

    dokploy.handle = held_update
    outcome: list = []
    runner = threading.Thread(
        target=lambda: outcome.append(
            run_script("dokploy_deploy.sh", "cmp-staging", SHA, "https://x", env=deploy_env(dokploy))
        )
    )
    runner.start()
    try:
        assert reached.wait(30), "the script never sent compose.update"
        command_lines = []
        for process in psutil.process_iter(["name", "cmdline"]):
            cmdline = process.info["cmdline"] or []
            if process.info["name"] == "curl" and any(dokploy.url in part for part in cmdline):
                command_lines.append(" ".join(cmdline))
    finally:
        release.set()
        runner.join(60)
    assert command_lines, "curl was not running during the held call"
    for command_line in command_lines:
        assert_no_secret(dokploy, command_line)
    assert outcome[0].returncode == 0, outcome[0].output
    # The secrets did travel, in the body read from a file.
    update = next(request for request in dokploy.requests if request.endpoint == "compose.update")
    assert dokploy.postgres_password in update.body["env"]


TRICKY_ENV = {
    # Names that do not look secret, values with quotes, non-ASCII and spaces.
    "WEBHOOK_URL": "https://hooks.example.com/services/T000/B000/xyzzy-hook",
    "GREETING": 'it"s-ünïcödé-välue',
    "NOTE": "pässwörd with spaces",
}


def tricky_compose_env() -> str:
    return "\n".join(
        [
            f"WEBHOOK_URL={TRICKY_ENV['WEBHOOK_URL']}",
            'GREETING="it\\"s-ünïcödé-välue"',
            f"NOTE='{TRICKY_ENV['NOTE']}'",
            "BASE_CURRENCY=SGD",
        ]
    )


def spellings(value: str) -> set[str]:
    """A value as it may appear in output: raw, or escaped inside a JSON reply."""
    return {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}


@pytest.mark.parametrize("endpoint", ["compose.one", "compose.update"])
def test_every_env_value_is_redacted_whatever_its_key_or_characters(run_script, dokploy, endpoint):
    dokploy.composes["cmp-staging"].env = tricky_compose_env()
    leaky = {"message": "Internal error", "env": dokploy.composes["cmp-staging"].env}
    dokploy.failures[endpoint] = (500, leaky)
    result = run_script("dokploy_deploy.sh", "cmp-staging", SHA, "https://x", env=deploy_env(dokploy))
    assert result.returncode == 1
    assert "Internal error" in result.stderr
    for value in TRICKY_ENV.values():
        for spelled in spellings(value):
            assert spelled not in result.output, f"{spelled!r} leaked"
    for fragment in ("xyzzy-hook", "välue", "v\\u00e4lue", "wörd", "w\\u00f6rd"):
        assert fragment not in result.output


def test_github_actions_masks_values_of_any_key(run_script, dokploy):
    dokploy.composes["cmp-staging"].env = tricky_compose_env()
    result = run_script(
        "dokploy_deploy.sh", "cmp-staging", SHA, "https://x", env=deploy_env(dokploy, GITHUB_ACTIONS="true")
    )
    assert result.returncode == 0, result.output
    masked = {
        line.removeprefix("::add-mask::") for line in result.stdout.splitlines() if line.startswith("::add-mask::")
    }
    assert masked >= set(TRICKY_ENV.values())
    assert "SGD" not in masked  # too short to be a secret; masking it would mangle every log line


def test_a_hung_api_ends_after_the_timeout_with_one_line(run_script):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel accepts the connection; nothing ever answers
        env = {
            "DOKPLOY_API_URL": f"http://127.0.0.1:{silent.getsockname()[1]}/api",
            "DOKPLOY_API_KEY": "dk_hung_0123456789",
            "GIT_COMMIT_SHA": SHA,
            "DOKPLOY_TIMEOUT": "1",
        }
        result = run_script("dokploy_deploy.sh", "cmp-staging", SHA, "https://x", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith(
        "dokploy_deploy: error: Dokploy API GET compose.one?composeId=cmp-staging did not answer within 1 s"
    )
    assert result.stderr.count("\n") == 1
    assert "dk_hung_0123456789" not in result.output


def test_a_bad_timeout_is_a_usage_error(run_script, dokploy):
    result = run_script("dokploy_deploy.sh", "c", SHA, "https://x", env=deploy_env(dokploy, DOKPLOY_TIMEOUT="soon"))
    assert result.returncode == 2
    assert "DOKPLOY_TIMEOUT must be a whole number of seconds, not 'soon'" in result.stderr


@pytest.mark.parametrize("reply", ["<html><body>Please log in</body></html>", ""])
def test_a_non_json_200_ends_in_one_clear_line(run_script, dokploy, reply):
    dokploy.failures["compose.one"] = (200, reply)
    result = run_script("dokploy_deploy.sh", "cmp-staging", SHA, "https://x", env=deploy_env(dokploy))
    assert result.returncode == 1
    assert "Traceback" not in result.output
    assert result.stderr.count("\n") == 1
    assert "Dokploy API GET compose.one?composeId=cmp-staging answered HTTP 200 but not JSON" in result.stderr
    assert result.stderr.rstrip().endswith(reply or "(empty reply)")
    assert dokploy.deployed == []


def test_a_compose_env_with_the_plain_service_addresses_is_carried_to_the_app_names_once(run_script, dokploy):
    """docker-compose.yml reads APP_DATABASE_URL (a copied .env.example sets DATABASE_URL to loopback):
    a Dokploy env written before that keeps deploying against its managed services."""
    before = env_of(dokploy, "cmp-staging")
    assert before["DATABASE_URL"]
    assert "APP_DATABASE_URL" not in before
    first = run_script("dokploy_deploy.sh", "cmp-staging", SHA, "https://x", env=deploy_env(dokploy))
    assert first.returncode == 0, first.output
    after = env_of(dokploy, "cmp-staging")
    assert after["APP_DATABASE_URL"] == after["DATABASE_URL"] == before["DATABASE_URL"]
    assert "DATABASE_URL -> APP_DATABASE_URL" in first.output
    assert_no_secret(dokploy, first.output)

    # Once: an APP_ value set (or changed) in Dokploy afterwards is never overwritten.
    dokploy.composes["cmp-staging"].env = dokploy.composes["cmp-staging"].env.replace(
        f"APP_DATABASE_URL={before['DATABASE_URL']}", "APP_DATABASE_URL=postgresql+psycopg://app@other:5432/x"
    )
    second = run_script("dokploy_deploy.sh", "cmp-staging", SHA, "https://x", env=deploy_env(dokploy))
    assert second.returncode == 0, second.output
    assert env_of(dokploy, "cmp-staging")["APP_DATABASE_URL"] == "postgresql+psycopg://app@other:5432/x"
    assert dokploy.composes["cmp-staging"].env.count("APP_DATABASE_URL=") == 1
    assert "APP_DATABASE_URL" not in second.output
