"""Runtime configuration: one `Settings` class read from the environment.

Every other place that needs a setting (the app, alembic, the boot gates, the docs' configuration
page, the env-key checker and `.env.example`) reads this class, so the list of keys lives here only.

Run `python -m src.config --show-config` to see the effective configuration (secrets as set / not
set), `--fields-json` for a machine-readable description of every field, `--env-example` for the
text of `.env.example`.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
import typing
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, TypeAdapter, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Environment = Literal["development", "test", "staging", "production"]
# Stages reachable by others: their signing secret must be real, not the development fallback.
DEPLOYED_ENVIRONMENTS = ("staging", "production")
# The fallback docker-compose.yml's app profile uses for local runs; never valid when deployed.
DEVELOPMENT_SECRET_KEY = "dev-secret-key-change-me"  # noqa: S105 (public on purpose: it is what is refused)
# The original project's boot gate: at least 32 bytes (256 bits) of secret.
MIN_SECRET_KEY_BYTES = 32


class ConfigurationError(ValueError):
    """The environment holds a value `Settings` cannot accept; the message is one readable line."""


class Settings(BaseSettings):
    """Everything the backend reads from its environment; each field documents why it exists."""

    model_config = SettingsConfigDict(
        # Only real environment variables: a stray .env in the working directory must not change a
        # test run or a container. The container entrypoint sources the Vault file explicitly.
        env_file=None,
        case_sensitive=False,
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
        frozen=True,
    )

    environment: Environment = Field(
        default="development",
        validation_alias=AliasChoices("ENVIRONMENT"),
        description="Deployment stage; `staging` and `production` refuse to start without a real SECRET_KEY.",
    )
    debug: bool = Field(
        default=False,
        validation_alias=AliasChoices("DEBUG"),
        description="Debug-level logs from the application; never enable in production.",
    )
    database_url: str = Field(
        default="postgresql+psycopg://postgres@127.0.0.1:5432/finance_report",
        validation_alias=AliasChoices("DATABASE_URL"),
        description="SQLAlchemy URL of the PostgreSQL database (driver `postgresql+psycopg`).",
    )
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("REDIS_URL"),
        description="Redis URL used for the reconciliation statistics cache.",
    )
    redis_key_prefix: str = Field(
        default="finance_report",
        validation_alias=AliasChoices("REDIS_KEY_PREFIX"),
        description="Prefix of every Redis key, so apps or test workers can share one Redis.",
    )
    s3_endpoint: str = Field(
        default="http://127.0.0.1:9000",
        validation_alias=AliasChoices("S3_ENDPOINT"),
        description="URL of the S3-compatible object store that keeps uploaded statement files.",
    )
    s3_access_key: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices("S3_ACCESS_KEY"),
        description="S3 access key id; empty means boto3's default credential chain.",
    )
    s3_secret_key: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices("S3_SECRET_KEY"),
        description="S3 secret access key; empty means boto3's default credential chain.",
    )
    s3_bucket: str = Field(
        default="statements",
        validation_alias=AliasChoices("S3_BUCKET"),
        description="Bucket for raw statement files; it must exist before the app starts.",
    )
    s3_region: str = Field(
        default="us-east-1",
        validation_alias=AliasChoices("S3_REGION"),
        description="Region sent with S3 requests (signature scope).",
    )
    s3_key_prefix: str = Field(
        default="",
        validation_alias=AliasChoices("S3_KEY_PREFIX"),
        description="Prefix of every object key, so several test workers can share one bucket.",
    )
    secret_key: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices("SECRET_KEY"),
        description="Application secret for signing; staging/production need 32+ bytes, not the dev default.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default=["http://localhost:3000"],
        validation_alias=AliasChoices("CORS_ORIGINS"),
        description="Origins allowed to call the API from a browser, comma-separated.",
    )
    base_currency: str = Field(
        default="USD",
        validation_alias=AliasChoices("BASE_CURRENCY"),
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 currency assumed for statement lines and entries that name none.",
    )
    git_commit_sha: str = Field(
        default="unknown",
        validation_alias=AliasChoices("GIT_COMMIT_SHA"),
        description="Commit the running build came from; reported by /api/health.",
    )
    otel_service_name: str = Field(
        default="finance-report-backend",
        validation_alias=AliasChoices("OTEL_SERVICE_NAME"),
        description="Service name used in logs and traces.",
    )
    max_upload_bytes: int = Field(
        default=5 * 1024 * 1024,
        gt=0,
        validation_alias=AliasChoices("MAX_UPLOAD_BYTES"),
        description="Largest statement file accepted; larger uploads get 413.",
    )
    health_check_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        validation_alias=AliasChoices("HEALTH_CHECK_TIMEOUT"),
        description="Seconds one health or boot check may take; a dead dependency cannot hang it.",
    )
    stats_cache_ttl_seconds: int = Field(
        default=300,
        gt=0,
        validation_alias=AliasChoices("STATS_CACHE_TTL"),
        description="Upper bound on how long cached reconciliation statistics may live.",
    )
    vault_secrets_file: Path = Field(
        default=Path("/secrets/.env"),
        validation_alias=AliasChoices("VAULT_SECRETS_FILE"),
        description="File the Vault agent renders secrets into; the full boot gate checks its age.",
    )
    vault_secrets_max_age_seconds: int = Field(
        default=3600,
        gt=0,
        validation_alias=AliasChoices("VAULT_SECRETS_MAX_AGE"),
        description="Age after which the Vault secrets file counts as stale (a warning).",
    )
    boot_gate_on_startup: bool = Field(
        default=True,
        validation_alias=AliasChoices("BOOT_GATE_ON_STARTUP"),
        description="Run the critical boot gate at app start-up and refuse to start if it fails.",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_comma_separated(cls, value: Any) -> Any:
        """Accept `a,b` as well as a JSON list, since people write the former in env files."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [origin.strip() for origin in text.split(",") if origin.strip()]
        return value

    @field_validator("secret_key")
    @classmethod
    def _secret_key_required_when_deployed(cls, value: SecretStr, info: Any) -> SecretStr:
        """A deployed app signing with an empty, public or guessable secret is a security bug, so
        refuse it at start-up. The message never contains the value."""
        environment = info.data.get("environment")
        if environment not in DEPLOYED_ENVIRONMENTS:
            return value
        secret = value.get_secret_value()
        fix = "set a random one, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
        if not secret:
            raise ValueError(f"required when ENVIRONMENT={environment}; {fix}")
        if secret == DEVELOPMENT_SECRET_KEY:
            raise ValueError(f"the development default is refused when ENVIRONMENT={environment}; {fix}")
        if len(secret.encode()) < MIN_SECRET_KEY_BYTES:
            raise ValueError(
                f"shorter than {MIN_SECRET_KEY_BYTES} bytes, refused when ENVIRONMENT={environment}; {fix}"
            )
        return value


SECRET_TYPES = (SecretStr,)


def load_settings(**overrides: Any) -> Settings:
    """Build `Settings`, turning validation errors into one line a person can act on."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise ConfigurationError(describe_validation_error(error)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; cached because the environment does not change while running."""
    return load_settings()


def describe_validation_error(error: ValidationError) -> str:
    """Name each bad key by its env variable, e.g. `DEBUG: Input should be a valid boolean`."""
    problems = []
    for item in error.errors(include_url=False):
        location = str(item["loc"][0]) if item["loc"] else "?"
        field_name = _field_name_for_location(location)
        key = env_names(field_name, Settings.model_fields[field_name])[0] if field_name else location
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{key.upper()}: {message}")
    return "invalid configuration: " + "; ".join(problems)


def _field_name_for_location(location: str) -> str | None:
    for name, field in Settings.model_fields.items():
        if location == name or location.upper() in env_names(name, field):
            return name
    return None


def env_names(field_name: str, field: FieldInfo) -> list[str]:
    """The environment variables a field reads, in the order pydantic-settings tries them."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices if isinstance(choice, str)]
    if isinstance(alias, str):
        return [alias]
    return [field_name.upper()]


def describe_type(annotation: Any) -> str:
    """A type as a reader writes it (`list[str]`, `one of: a, b`), not as `typing` prints it."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return describe_type(typing.get_args(annotation)[0])
    if origin is Literal:
        return "one of: " + ", ".join(str(value) for value in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(describe_type(arg) for arg in typing.get_args(annotation))
    if origin is not None:
        arguments = ", ".join(describe_type(arg) for arg in typing.get_args(annotation))
        return f"{origin.__name__}[{arguments}]"
    if annotation is type(None):
        return "none"
    if annotation in SECRET_TYPES:
        return "str"
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return "path"
    return getattr(annotation, "__name__", str(annotation))


def is_secret(field: FieldInfo) -> bool:
    return field.annotation in SECRET_TYPES


def describe_fields() -> list[dict[str, Any]]:
    """One JSON-able description per field; the docs page and the env-key checker consume it."""
    described = []
    for name, field in Settings.model_fields.items():
        secret = is_secret(field)
        default = field.get_default(call_default_factory=True)
        # rebuild_annotation: the full (never None) type, with Annotated metadata such as NoDecode.
        adapter = TypeAdapter[Any](field.rebuild_annotation())
        described.append(
            {
                "field": name,
                "env": env_names(name, field),
                "type": describe_type(field.annotation),
                # A secret's default is never a real value: show none rather than risk a leak.
                "default": None if secret else adapter.dump_python(default, mode="json"),
                "secret": secret,
                "description": field.description or "",
            }
        )
    return described


def mask_url_password(url: str) -> str:
    """`scheme://user:***@host/db` so a URL can be shown without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo = f"{parts.username or ''}:***"
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


def render_config(settings: Settings) -> str:
    """`KEY = value` per field; secrets appear only as `set`/`not set`, URLs without passwords."""
    lines = []
    width = max(len(env_names(name, field)[0]) for name, field in Settings.model_fields.items())
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            shown = "set" if value.get_secret_value() else "not set"
        elif isinstance(value, str) and "://" in value:
            shown = mask_url_password(value)
        elif isinstance(value, list):
            shown = ",".join(str(item) for item in value)
        else:
            shown = str(value)
        lines.append(f"{env_names(name, field)[0]:<{width}} = {shown}")
    return "\n".join(lines)


def render_env_example() -> str:
    """The backend section of `.env.example`: each key, its description above it, a safe default."""
    blocks = [
        "# Finance Report configuration: every key the apps read, with a safe default.",
        "#",
        "# Copied to .env in the repository root, it is read by `docker compose` only (the ${...} in",
        "# docker-compose.yml). The backend, `nox -s dev` and `nox -s test` read no .env file: set a",
        "# variable in your shell to override a default (docs/configuration.md).",
        "#",
        "# The backend section is generated by `python -m src.config --env-example` (run in",
        "# apps/backend) from Settings in apps/backend/src/config.py: change a key there, then",
        "# regenerate this section. Keys for other apps follow after it.",
        "",
        "# --- Backend (apps/backend) ---",
    ]
    for field in describe_fields():
        default = field["default"]
        if default is None:
            value = ""
        elif isinstance(default, list):
            value = ",".join(str(item) for item in default)
        elif isinstance(default, bool):
            value = str(default).lower()
        else:
            value = str(default)
        blocks.append(f"\n# {field['description']}\n{field['env'][0]}={value}")
    return "\n".join(blocks) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit code so tests can call it in-process."""
    parser = argparse.ArgumentParser(prog="python -m src.config", description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--show-config", action="store_true", help="print the effective config")
    action.add_argument("--fields-json", action="store_true", help="describe every field as JSON")
    action.add_argument("--env-example", action="store_true", help="print .env.example")
    arguments = parser.parse_args(argv)

    if arguments.fields_json:
        print(json.dumps(describe_fields(), indent=2))
        return 0
    if arguments.env_example:
        print(render_env_example(), end="")
        return 0
    try:
        settings = load_settings()
    except ConfigurationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(render_config(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
