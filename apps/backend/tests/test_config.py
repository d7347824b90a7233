"""Settings: env names, secrets never shown, one-line errors, and the generated descriptions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr
from pydantic.fields import FieldInfo

from src import config
from src.config import (
    ConfigurationError,
    Settings,
    describe_fields,
    describe_type,
    env_names,
    get_settings,
    load_settings,
    mask_url_password,
    render_config,
    render_env_example,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
CONTRACT_ENV_NAMES = {
    "DATABASE_URL",
    "REDIS_URL",
    "S3_ENDPOINT",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "S3_BUCKET",
    "S3_REGION",
    "SECRET_KEY",
    "CORS_ORIGINS",
    "ENVIRONMENT",
    "DEBUG",
    "BASE_CURRENCY",
    "GIT_COMMIT_SHA",
    "OTEL_SERVICE_NAME",
    "REDIS_KEY_PREFIX",
    "VAULT_SECRETS_FILE",
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No Settings variable from the test contract leaks into these tests."""
    for field in describe_fields():
        for name in field["env"]:
            monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_every_issue_env_name_is_read() -> None:
    names = {name for field in describe_fields() for name in field["env"]}
    assert names >= CONTRACT_ENV_NAMES


def test_environment_variables_override_defaults(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DATABASE_URL", "postgresql+psycopg://u:p@db:5432/x")
    clean_env.setenv("DEBUG", "true")
    clean_env.setenv("CORS_ORIGINS", "http://a.test, http://b.test")
    clean_env.setenv("HEALTH_CHECK_TIMEOUT", "0.5")
    settings = load_settings()
    assert settings.database_url == "postgresql+psycopg://u:p@db:5432/x"
    assert settings.debug is True
    assert settings.cors_origins == ["http://a.test", "http://b.test"]
    assert settings.health_check_timeout_seconds == 0.5


def test_cors_origins_accept_a_json_list(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CORS_ORIGINS", '["http://a.test"]')
    assert load_settings().cors_origins == ["http://a.test"]


def test_fields_can_be_set_by_name_in_code() -> None:
    assert load_settings(redis_key_prefix="ns:gw0").redis_key_prefix == "ns:gw0"


def test_bad_value_is_one_line_naming_the_env_variable(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DEBUG", "maybe")
    clean_env.setenv("BASE_CURRENCY", "euro")
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("invalid configuration: ")
    assert "DEBUG: " in message
    assert "BASE_CURRENCY: " in message


GOOD_SECRET_KEY = "k" * 32


@pytest.mark.parametrize("environment", ["production", "staging"])
@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        (None, "SECRET_KEY: required when ENVIRONMENT="),
        ("dev-secret-key-change-me", "SECRET_KEY: the development default is refused"),
        ("s3cr3t-value", "SECRET_KEY: shorter than 32 bytes"),
        ("é" * 15, "SECRET_KEY: shorter than 32 bytes"),  # 30 bytes: bytes count, not characters
    ],
)
def test_deployed_environments_refuse_a_weak_secret_key(
    clean_env: pytest.MonkeyPatch, environment: str, secret: str | None, problem: str
) -> None:
    clean_env.setenv("ENVIRONMENT", environment)
    if secret is not None:
        clean_env.setenv("SECRET_KEY", secret)
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    message = str(raised.value)
    assert problem in message
    assert f"ENVIRONMENT={environment}" in message
    assert "\n" not in message
    if secret:
        assert secret not in message


def test_deployed_environments_accept_a_long_secret_key(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ENVIRONMENT", "production")
    clean_env.setenv("SECRET_KEY", GOOD_SECRET_KEY)
    assert load_settings().secret_key.get_secret_value() == GOOD_SECRET_KEY


def test_development_accepts_the_development_secret_key(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ENVIRONMENT", "development")
    clean_env.setenv("SECRET_KEY", "dev-secret-key-change-me")
    assert load_settings().secret_key.get_secret_value() == "dev-secret-key-change-me"


def test_a_weak_production_key_stops_the_server_with_one_line(clean_env: pytest.MonkeyPatch) -> None:
    """What uvicorn --factory prints: the app factory turns the refusal into SystemExit."""
    from src.main import create_app

    get_settings.cache_clear()
    clean_env.setenv("ENVIRONMENT", "production")
    clean_env.setenv("SECRET_KEY", "dev-secret-key-change-me")
    try:
        with pytest.raises(SystemExit) as raised:
            create_app()
    finally:
        get_settings.cache_clear()
    assert str(raised.value).startswith("error: invalid configuration: SECRET_KEY: the development default is refused")


def test_secrets_are_never_rendered() -> None:
    settings = load_settings(
        secret_key="top-secret-value",
        s3_secret_key="",
        database_url="postgresql+psycopg://app:db-password@db:5432/finance",
    )
    shown = render_config(settings)
    assert "top-secret-value" not in shown
    assert "db-password" not in shown
    assert "top-secret-value" not in repr(settings)
    values = {key.strip(): value for key, value in (line.split(" = ", 1) for line in shown.splitlines())}
    assert values["SECRET_KEY"] == "set"
    assert values["S3_SECRET_KEY"] == "not set"
    assert "postgresql+psycopg://app:***@db:5432/finance" in shown


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://:pw@host:6379/0", "redis://:***@host:6379/0"),
        ("postgresql+psycopg://u:pw@h/db", "postgresql+psycopg://u:***@h/db"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
    ],
)
def test_mask_url_password(url: str, expected: str) -> None:
    assert mask_url_password(url) == expected


def test_fields_json_describes_every_field() -> None:
    described = {field["field"]: field for field in describe_fields()}
    assert set(described) == set(Settings.model_fields)
    for field in described.values():
        assert set(field) == {"field", "env", "type", "default", "secret", "description"}
        assert field["description"], f"{field['field']} has no description"
        json.dumps(field)
    assert described["s3_secret_key"] == {
        "field": "s3_secret_key",
        "env": ["S3_SECRET_KEY"],
        "type": "str",
        "default": None,
        "secret": True,
        "description": described["s3_secret_key"]["description"],
    }
    assert described["cors_origins"]["type"] == "list[str]"
    assert described["cors_origins"]["default"] == ["http://localhost:3000"]
    assert described["vault_secrets_file"]["type"] == "path"
    assert described["vault_secrets_file"]["default"] == "/secrets/.env"
    assert described["environment"]["type"].startswith("one of: development")


def test_env_names_come_from_the_alias_or_the_field_name() -> None:
    assert env_names("timeout", FieldInfo(validation_alias="HTTP_TIMEOUT")) == ["HTTP_TIMEOUT"]
    assert env_names("timeout", FieldInfo()) == ["TIMEOUT"]


def test_describe_type_reads_like_python() -> None:
    assert describe_type(int | None) == "int | none"
    assert describe_type(dict[str, int]) == "dict[str, int]"
    assert describe_type(SecretStr) == "str"


def test_env_example_opens_with_the_generated_backend_section() -> None:
    """.env.example at the repository root starts with exactly what Settings generates."""
    example = (REPO_ROOT / ".env.example").read_text()
    assert example.startswith(render_env_example()), (
        "regenerate the backend section: cd apps/backend && python -m src.config --env-example"
    )
    generated = render_env_example().splitlines()
    keys = [line.split("=", 1)[0] for line in generated if "=" in line and line[0] != "#"]
    assert keys == [field["env"][0] for field in describe_fields()]
    for index, line in enumerate(generated):
        if "=" in line and not line.startswith("#"):
            assert generated[index - 1].startswith("# "), f"{line} has no comment above it"


def test_cli_show_config(clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    clean_env.setenv("S3_SECRET_KEY", "hidden-value")
    assert config.main(["--show-config"]) == 0
    out = capsys.readouterr().out
    assert "hidden-value" not in out
    assert "S3_SECRET_KEY" in out


def test_cli_fields_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert config.main(["--fields-json"]) == 0
    assert json.loads(capsys.readouterr().out) == describe_fields()


def test_cli_env_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert config.main(["--env-example"]) == 0
    assert capsys.readouterr().out == render_env_example()


def test_cli_reports_bad_config_in_one_line(clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    clean_env.setenv("MAX_UPLOAD_BYTES", "lots")
    assert config.main(["--show-config"]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("error: invalid configuration: MAX_UPLOAD_BYTES")


@pytest.mark.e2e
def test_module_entry_point_runs_as_a_process() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "src.config", "--fields-json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 0, result.stderr
    assert {field["field"] for field in json.loads(result.stdout)} == set(Settings.model_fields)
