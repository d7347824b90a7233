"""The rules: each compares two inputs and says which keys one lacks, with the snippet that fixes it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from noxlib.env_keys.model import (
    COMPOSE_FILE,
    COMPOSE_REFERENCE,
    DEFAULT_CTMPL,
    ENV_EXAMPLE,
    FRONTEND_DOCKERFILE,
    SETTINGS_SOURCE,
    UNTYPED_MARKERS,
    EnvFile,
    Missing,
    Problem,
    Report,
    RuleResult,
    SettingsField,
)
from noxlib.env_keys.parsers import (
    build_arg_names,
    display_path,
    find_frontend_build,
    find_frontend_env_reads,
    parse_ctmpl,
    parse_env_file,
    public_reads,
    read_compose,
    read_dockerfile_args,
)


def _env_example_snippet(settings_field: SettingsField | None, key: str) -> str:
    """A `.env.example` line for a key: its default, blank for secrets, with its description."""
    if settings_field is None:
        return f"{key}="
    value = "" if settings_field.secret or settings_field.default is None else settings_field.default
    if isinstance(value, bool):
        value = str(value).lower()
    elif isinstance(value, list | dict):
        value = json.dumps(value)
    comment = settings_field.description or ("secret" if settings_field.secret else "")
    line = f"{key}={value}"
    return f"# {comment}\n{line}" if comment else line


def _settings_snippet(key: str) -> str:
    """A `Settings` field reading `key`, to paste into apps/backend/src/config.py."""
    return f'    {key.lower()}: str = Field(default="", validation_alias="{key}")'


def check_vault_template(root: Path, ctmpl: Path | None, env_names: dict[str, SettingsField]) -> RuleResult:
    """Every key the Vault template renders must be read by `Settings`, or it is dead config."""
    result = RuleResult("vault-template", "every key secrets.ctmpl renders is a Settings env name")
    explicit = ctmpl is not None
    path = ctmpl if ctmpl is not None else root / DEFAULT_CTMPL
    shown = display_path(path, root)
    if not path.is_file():
        result.status = "SKIPPED"
        if explicit:
            result.status = "FAIL"
            result.problems.append(Problem(shown, "--ctmpl file not found"))
        else:
            result.note = (
                f"{shown} not found (no clone of the separate infra repository at repo/); check it with --ctmpl PATH"
            )
        return result
    template = parse_ctmpl(path, root)
    result.note = f"checked {shown}"
    result.problems.extend(template.problems)
    for key, line in template.keys.items():
        if key not in env_names:
            result.missing.append(
                Missing(
                    key,
                    str(SETTINGS_SOURCE),
                    _settings_snippet(key),
                    f"rendered by {shown}:{line}; add a Settings field or drop it from there",
                )
            )
    result.comparisons.append((f"{shown} keys", sorted(template.keys), "Settings env names", sorted(env_names)))
    result.fail_if_needed()
    return result


def check_settings_defaults(fields: Sequence[SettingsField]) -> RuleResult:
    """Every field must have a type and a default, so the app boots from `.env.example` alone."""
    result = RuleResult("settings-defaults", "every Settings field has a type and a default")
    for settings_field in fields:
        lacking = []
        if settings_field.type in UNTYPED_MARKERS:
            lacking.append("type")
        if not settings_field.has_default:
            lacking.append("default")
        if lacking:
            result.missing.append(
                Missing(
                    settings_field.name,
                    str(SETTINGS_SOURCE),
                    f"    {settings_field.name}: <type> = Field(default=<value>)",
                    f"Settings.{settings_field.name} has no {' and no '.join(lacking)}",
                )
            )
    result.fail_if_needed()
    return result


def check_settings_in_env_example(fields: Sequence[SettingsField], env_example: EnvFile) -> RuleResult:
    """Every `Settings` field must be named in `.env.example` under one of its env names."""
    result = RuleResult("settings-in-env-example", "every Settings env name is in .env.example")
    result.problems.extend(env_example.problems)
    if not env_example.exists:
        result.problems.append(Problem(str(ENV_EXAMPLE), "not found; create it from --fix"))
    expected = []
    for settings_field in fields:
        expected.append(settings_field.primary_env)
        if not any(name in env_example.keys for name in settings_field.env):
            key = settings_field.primary_env
            result.missing.append(
                Missing(
                    key,
                    str(ENV_EXAMPLE),
                    _env_example_snippet(settings_field, key),
                    f"read by Settings.{settings_field.name}",
                )
            )
    result.comparisons.append(("Settings env names", sorted(expected), ".env.example keys", sorted(env_example.keys)))
    result.fail_if_needed()
    return result


def check_frontend_public_keys(root: Path, reads: dict[str, str], env_example: EnvFile) -> RuleResult:
    """Every NEXT_PUBLIC_* the frontend reads must reach `next build`: example, ARG, compose.

    Next.js inlines NEXT_PUBLIC_* values at build time, so a key that is not a Docker build
    argument is silently `undefined` in the shipped bundle.
    """
    result = RuleResult(
        "frontend-public-keys",
        "every NEXT_PUBLIC_* the frontend reads is in .env.example, a Dockerfile ARG and a compose build arg",
    )
    if not reads:
        result.note = "the frontend reads no NEXT_PUBLIC_* keys"
        return result
    for key, where in reads.items():
        if key not in env_example.keys:
            result.missing.append(Missing(key, str(ENV_EXAMPLE), f"{key}=", f"read at {where}"))
    result.comparisons.append(
        (
            "frontend NEXT_PUBLIC_* reads",
            sorted(reads),
            ".env.example keys",
            sorted(env_example.keys),
        )
    )
    _check_dockerfile_args(root, reads, result)
    _check_compose_build_args(root, reads, result)
    result.fail_if_needed()
    return result


def _check_dockerfile_args(root: Path, reads: dict[str, str], result: RuleResult) -> None:
    """Each public key must be an `ARG` of the frontend image, or `next build` never sees it."""
    dockerfile = root / FRONTEND_DOCKERFILE
    if not dockerfile.is_file():
        result.problems.append(Problem(str(FRONTEND_DOCKERFILE), "not found; cannot check ARGs"))
        return
    declared, problems = read_dockerfile_args(dockerfile, root)
    result.problems.extend(problems)
    for key, where in reads.items():
        if key not in declared:
            result.missing.append(
                Missing(
                    key,
                    str(FRONTEND_DOCKERFILE),
                    f"ARG {key}\nENV {key}=${key}",
                    f"read at {where}; declare it in the stage that runs `next build`",
                )
            )
    public_declared = sorted(name for name in declared if name.startswith("NEXT_PUBLIC_"))
    result.comparisons.append(("frontend NEXT_PUBLIC_* reads", sorted(reads), "Dockerfile ARGs", public_declared))


def _check_compose_build_args(root: Path, reads: dict[str, str], result: RuleResult) -> None:
    """Each public key must be passed as a build arg of the compose frontend service."""
    compose_path = root / COMPOSE_FILE
    if not compose_path.is_file():
        result.problems.append(Problem(str(COMPOSE_FILE), "not found; cannot check build args"))
        return
    compose, problems = read_compose(compose_path, root)
    result.problems.extend(problems)
    if compose is None:
        return
    service, build = find_frontend_build(compose)
    if service is None:
        result.problems.append(Problem(str(COMPOSE_FILE), "no service builds apps/frontend; cannot check build args"))
        return
    passed = build_arg_names(build)
    target = f"{COMPOSE_FILE} (services.{service}.build.args)"
    for key, where in reads.items():
        if key not in passed:
            result.missing.append(Missing(key, target, f"        {key}: ${{{key}:-}}", f"read at {where}"))
    result.comparisons.append(("frontend NEXT_PUBLIC_* reads", sorted(reads), f"{service} build args", sorted(passed)))


def unused_env_example_warnings(
    root: Path,
    env_example: EnvFile,
    env_names: dict[str, SettingsField],
    reads: dict[str, str],
) -> list[str]:
    """Keys in `.env.example` that neither Settings, the frontend nor compose read."""
    used = set(env_names) | set(reads)
    compose_path = root / COMPOSE_FILE
    if compose_path.is_file():
        used |= set(COMPOSE_REFERENCE.findall(compose_path.read_text(errors="replace")))
    shown = display_path(env_example.path, root)
    return [
        f"{shown}:{line}: {key} is not read by Settings, the frontend or {COMPOSE_FILE}; remove it or use it"
        for key, line in env_example.keys.items()
        if key not in used
    ]


def run_checks(
    root: Path,
    fields: Sequence[SettingsField],
    ctmpl: Path | None = None,
) -> Report:
    """Run every rule against the repository at `root` and the given `Settings` fields."""
    env_names = {name: settings_field for settings_field in fields for name in settings_field.env}
    env_example = parse_env_file(root / ENV_EXAMPLE, root)
    env_reads = find_frontend_env_reads(root)
    rules = [
        check_vault_template(root, ctmpl, env_names),
        check_settings_defaults(fields),
        check_settings_in_env_example(fields, env_example),
        check_frontend_public_keys(root, public_reads(env_reads), env_example),
    ]
    warnings = unused_env_example_warnings(root, env_example, env_names, env_reads)
    return Report(rules, warnings)
