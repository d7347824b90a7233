"""The env-key contract: every place that names an environment variable agrees with `Settings`.

Four files name the same keys and drift apart silently: the backend's `Settings` model, the
Vault template that renders production's env file, `.env.example` that a developer copies, and
the frontend's build-time `NEXT_PUBLIC_*` plumbing (source, Dockerfile `ARG`, compose build
`args`). A key missing from any of them fails only at deploy time, so this check fails first.

`Settings` is read by loading the model, never by regex: the backend prints its fields with
`python -m src.config --fields-json` (noxlib never imports the apps), and tests hand the same
JSON in with `--settings-json FILE`. Only the standard library is imported at module level, so
the noxfile and the docs hook can import this module anywhere; PyYAML is imported where
`docker-compose.yml` is read.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import nox

REPO_ROOT = Path(__file__).resolve().parents[1]

# Where the infra repository (a git submodule) keeps the template Vault agent renders into the
# app's env file in staging and production. Absent unless the submodule is checked out.
DEFAULT_CTMPL = Path("repo/finance_report/finance_report/10.app/secrets.ctmpl")
ENV_EXAMPLE = Path(".env.example")
BACKEND_DIR = Path("apps/backend")
SETTINGS_SOURCE = Path("apps/backend/src/config.py")
FRONTEND_DIR = Path("apps/frontend")
FRONTEND_DOCKERFILE = Path("apps/frontend/Dockerfile")
COMPOSE_FILE = Path("docker-compose.yml")

FRONTEND_SOURCE_SUFFIXES = frozenset({".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs", ".mts", ".cts"})
# Installed packages and build output are not the app's source: a NEXT_PUBLIC_ name inside them
# is someone else's, or a copy of ours already inlined by `next build`.
FRONTEND_SKIPPED_DIRS = frozenset({"node_modules", ".next", "out"})

KEY_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*"
ENV_LINE = re.compile(rf"^(?P<key>{KEY_PATTERN})=(?P<value>.*)$")
# Next.js inlines only these two spellings at build time; destructuring `process.env` yields
# undefined in the browser, so it is not a way to read a public key and is not looked for.
# Server-side code reads other keys the same way; those only count as "used" for the warning.
ENV_READ = re.compile(
    rf"process\.env\.({KEY_PATTERN})"
    rf"|process\.env\[\s*['\"`]({KEY_PATTERN})['\"`]\s*\]"
)
PUBLIC_PREFIX = "NEXT_PUBLIC_"
# A read mentioned in a comment ("keep `process.env.NEXT_PUBLIC_NAME` literal") is not a read.
# Whole comment lines are skipped; stripping comments inside a line would need a JS parser,
# since `//` and `/*` also occur in strings such as URLs and globs.
COMMENT_LINE_STARTS = ("//", "/*", "*")
TEMPLATE_ACTION = re.compile(r"\{\{.*?\}\}", re.DOTALL)
COMPOSE_REFERENCE = re.compile(rf"\$\{{?({KEY_PATTERN})")
# What the backend prints for a field that has no default (pydantic's sentinel), in case it
# prints the sentinel's name instead of leaving "default" out or setting "required".
NO_DEFAULT_MARKERS = frozenset({"PydanticUndefined", "PydanticUndefinedType", "<required>"})
UNTYPED_MARKERS = frozenset({"", "Any", "typing.Any"})

Status = Literal["PASS", "FAIL", "SKIPPED"]


class SettingsUnavailableError(Exception):
    """`Settings` could not be read; the message says why and what to run instead."""


@dataclass(frozen=True)
class SettingsField:
    """One `Settings` field as `python -m src.config --fields-json` describes it."""

    name: str
    env: tuple[str, ...]
    type: str
    default: Any
    has_default: bool
    secret: bool
    description: str

    @property
    def primary_env(self) -> str:
        """The env name to suggest when none is present: the first alias `Settings` tries."""
        return self.env[0]


@dataclass(frozen=True)
class Problem:
    """A malformed input: where (file:line) and what is wrong with it."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class Missing:
    """A key that must be added to a file, with the snippet that adds it."""

    key: str
    into: str
    snippet: str
    why: str = ""


@dataclass
class RuleResult:
    """The outcome of one rule: its status, what is missing where, and the key sets it compared."""

    name: str
    description: str
    status: Status = "PASS"
    missing: list[Missing] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    note: str = ""
    # (label of the expected set, its keys, label of the actual set, its keys) for --diff.
    comparisons: list[tuple[str, list[str], str, list[str]]] = field(default_factory=list)

    def fail_if_needed(self) -> None:
        """Mark the rule failed when it found anything missing or malformed."""
        if self.missing or self.problems:
            self.status = "FAIL"


@dataclass
class EnvFile:
    """Keys of a KEY=value file in order, with the line each is on."""

    path: Path
    keys: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    exists: bool = True


@dataclass
class Report:
    """Every rule's result plus the warnings that do not fail the check."""

    rules: list[RuleResult]
    warnings: list[str]

    @property
    def failed(self) -> bool:
        """True when any rule failed: the check exits 1."""
        return any(rule.status == "FAIL" for rule in self.rules)


# --- reading the inputs -------------------------------------------------------------------------


def _display(path: Path, root: Path) -> str:
    """A path as the person running the check would type it: relative to the repo when inside."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _read_text(path: Path, shown: str, problems: list[Problem]) -> str | None:
    """Read a file as UTF-8, turning the ways it can be malformed into problems, not tracebacks."""
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        problems.append(Problem(f"{shown}:1", "starts with a UTF-8 byte-order mark; save it without"))
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        problems.append(Problem(f"{shown}:{line}", "is not valid UTF-8; save it as UTF-8"))
        return None
    crlf_lines = [number for number, line in enumerate(text.split("\n"), 1) if line.endswith("\r")]
    if crlf_lines:
        more = f" (and {len(crlf_lines) - 1} more lines)" if len(crlf_lines) > 1 else ""
        problems.append(Problem(f"{shown}:{crlf_lines[0]}", f"has CRLF line endings{more}; convert to LF"))
    return text.replace("\r\n", "\n")


def _check_value_quotes(value: str) -> str | None:
    """Why a value's quoting is broken, or None; an unclosed quote swallows the next lines."""
    if value[:1] in {'"', "'"}:
        quote = value[0]
        closing = value.rfind(quote)
        if closing == 0:
            return f"value opens a {quote} quote that is never closed"
    return None


def parse_env_file(path: Path, root: Path) -> EnvFile:
    """Parse `.env.example`: KEY=value lines, comments and blanks; anything else is a problem.

    Strict on purpose: docker compose, python-dotenv and a shell each accept a different
    superset, so only the subset all three read the same way is allowed.
    """
    shown, result, text = _open_env_source(path, root)
    if text is None:
        return result
    for number, line in enumerate(text.split("\n"), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        _record_key_line(line, number, shown, result)
    return result


def _record_key_line(line: str, number: int, shown: str, result: EnvFile) -> None:
    """Record one KEY=value line, or the problem with it (bad syntax, duplicate key)."""
    where = f"{shown}:{number}"
    match = ENV_LINE.match(line)
    if match is None:
        hint = "expected KEY=value"
        if line.lstrip().startswith("export "):
            hint = "drop `export`: expected KEY=value"
        elif "=" in line and ENV_LINE.match(line.replace(" =", "=").replace("= ", "=")):
            hint = "no spaces around `=`: expected KEY=value"
        elif line[:1].isspace():
            hint = "no leading whitespace: expected KEY=value"
        result.problems.append(Problem(where, f"cannot parse {line.strip()!r}; {hint}"))
        return
    key = match["key"]
    quote_problem = _check_value_quotes(match["value"])
    if quote_problem:
        result.problems.append(Problem(where, f"{key}: {quote_problem}"))
    _record_key(key, number, where, result)


def _record_key(key: str, number: int, where: str, result: EnvFile) -> None:
    """Remember where `key` is set; a second setting is a problem that names the first."""
    if key in result.keys:
        result.problems.append(Problem(where, f"duplicate key {key} (first on line {result.keys[key]}); keep one"))
        return
    result.keys[key] = number


def _open_env_source(path: Path, root: Path) -> tuple[str, EnvFile, str | None]:
    """The display name, an empty result, and the text — None when missing or unreadable."""
    shown = _display(path, root)
    result = EnvFile(path=path)
    if not path.is_file():
        result.exists = False
        return shown, result, None
    return shown, result, _read_text(path, shown, result.problems)


def parse_ctmpl(path: Path, root: Path) -> EnvFile:
    """The keys a consul-template file renders, e.g. `KEY={{ .Data.data.key }}` lines.

    Template actions (`{{ with secret ... }}`, `{{ end }}`, comments) render to nothing, so
    they are blanked out first, keeping their newlines so line numbers stay true; what is left
    must read like an env file.
    """
    shown, result, text = _open_env_source(path, root)
    if text is None:
        return result
    rendered = TEMPLATE_ACTION.sub(lambda action: "\n" * action.group().count("\n"), text)
    if "{{" in rendered or "}}" in rendered:
        unclosed_at = rendered.split("{{")[0].count("\n") + 1 if "{{" in rendered else 1
        result.problems.append(Problem(f"{shown}:{unclosed_at}", "has an unclosed `{{` template action"))
    original_lines = text.split("\n")
    for number, line in enumerate(rendered.split("\n"), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = ENV_LINE.match(line)
        if match is None:
            source = original_lines[number - 1].strip()
            result.problems.append(Problem(f"{shown}:{number}", f"cannot parse {source!r}; expected KEY=<template>"))
            continue
        _record_key(match["key"], number, f"{shown}:{number}", result)
    return result


def settings_fields_from_json(text: str, source: str) -> list[SettingsField]:
    """Turn the backend's `--fields-json` output into fields; a bad shape is one clear error."""
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as error:
        raise SettingsUnavailableError(f"{source}:{error.lineno}: not valid JSON ({error.msg})") from None
    if not isinstance(entries, list):
        raise SettingsUnavailableError(f"{source}: expected a JSON list of fields")
    fields: list[SettingsField] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("field"), str):
            raise SettingsUnavailableError(f'{source}: entry {index} has no "field" name')
        env = entry.get("env")
        if isinstance(env, str):
            env = [env]
        if not isinstance(env, list) or not env or not all(isinstance(n, str) for n in env):
            raise SettingsUnavailableError(f'{source}: field {entry["field"]!r} has no "env" list of names')
        default = entry.get("default")
        has_default = (
            "default" in entry
            and not entry.get("required", False)
            and not (isinstance(default, str) and default in NO_DEFAULT_MARKERS)
        )
        fields.append(
            SettingsField(
                name=entry["field"],
                env=tuple(env),
                type=str(entry.get("type") or ""),
                default=default,
                has_default=has_default,
                secret=bool(entry.get("secret", False)),
                description=str(entry.get("description") or ""),
            )
        )
    return fields


def read_settings_fields(
    root: Path = REPO_ROOT,
    settings_json: Path | None = None,
    python: str | None = None,
) -> list[SettingsField]:
    """Load `Settings` by asking the backend to describe itself, or from a JSON file.

    The backend is run as a subprocess (cwd apps/backend, so `src` imports) with `python`,
    by default this interpreter: run inside an environment that has the backend installed.
    """
    if settings_json is not None:
        if not settings_json.is_file():
            raise SettingsUnavailableError(f"--settings-json {settings_json}: no such file")
        return settings_fields_from_json(settings_json.read_text(encoding="utf-8"), str(settings_json))
    command = [python or sys.executable, "-m", "src.config", "--fields-json"]
    backend = root / BACKEND_DIR
    if not backend.is_dir():
        raise SettingsUnavailableError(f"{_display(backend, root)} not found; cannot load Settings")
    completed = subprocess.run(command, cwd=backend, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        last_line = (completed.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SettingsUnavailableError(
            f"`python -m src.config --fields-json` failed in {_display(backend, root)}: "
            f"{last_line}. Run `nox -s env_keys` (it installs the backend) or pass --settings-json"
        )
    return settings_fields_from_json(completed.stdout, "python -m src.config --fields-json")


def find_frontend_env_reads(root: Path) -> dict[str, str]:
    """Every `process.env` key the frontend source reads, with where it is first read."""
    frontend = root / FRONTEND_DIR
    found: dict[str, str] = {}
    if not frontend.is_dir():
        return found
    for directory, subdirectories, files in os.walk(frontend):
        subdirectories[:] = sorted(d for d in subdirectories if d not in FRONTEND_SKIPPED_DIRS)
        for name in sorted(files):
            path = Path(directory) / name
            if path.suffix not in FRONTEND_SOURCE_SUFFIXES:
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            for number, line in enumerate(text.splitlines(), 1):
                if line.lstrip().startswith(COMMENT_LINE_STARTS):
                    continue
                for match in ENV_READ.finditer(line):
                    key = match.group(1) or match.group(2)
                    found.setdefault(key, f"{_display(path, root)}:{number}")
    return dict(sorted(found.items()))


def public_reads(env_reads: dict[str, str]) -> dict[str, str]:
    """The NEXT_PUBLIC_* subset: the keys `next build` inlines into the browser bundle."""
    return {key: where for key, where in env_reads.items() if key.startswith(PUBLIC_PREFIX)}


def read_dockerfile_args(path: Path, root: Path) -> tuple[set[str], list[Problem]]:
    """The build arguments a Dockerfile declares with `ARG NAME[=default]`."""
    problems: list[Problem] = []
    text = _read_text(path, _display(path, root), problems)
    if text is None:
        return set(), problems
    # A trailing backslash continues an instruction on the next line.
    joined = re.sub(r"\\\n", " ", text)
    names: set[str] = set()
    for line in joined.split("\n"):
        match = re.match(r"^\s*ARG\s+(.*)$", line, re.IGNORECASE)
        if match:
            for token in match[1].split():
                names.add(token.split("=", 1)[0])
    return names, problems


def _compose_loader() -> type:
    """A safe YAML loader that refuses duplicate mapping keys, which PyYAML silently merges."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: dict[Any, int] = {}
            for key_node, _value in node.value:
                # `<<: *anchor` merges are compose's way to share settings, not duplicates.
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=deep)
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {key!r} (first on line {seen[key]})",
                        key_node.start_mark,
                    )
                seen[key] = line
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def read_compose(path: Path, root: Path) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Load docker-compose.yml; YAML errors come back as file:line problems."""
    import yaml

    shown = _display(path, root)
    problems: list[Problem] = []
    text = _read_text(path, shown, problems)
    if text is None:
        return None, problems
    try:
        document = yaml.load(text, Loader=_compose_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        problems.append(Problem(f"{shown}:{line}", f"invalid YAML: {error.problem or error}"))
        return None, problems
    except yaml.YAMLError as error:
        problems.append(Problem(f"{shown}:1", f"invalid YAML: {error}"))
        return None, problems
    if not isinstance(document, dict):
        problems.append(Problem(f"{shown}:1", "expected a mapping with `services:`"))
        return None, problems
    return document, problems


def find_frontend_build(compose: dict[str, Any]) -> tuple[str | None, Any]:
    """The frontend service's name and `build` section: the one building apps/frontend."""
    services = compose.get("services") or {}
    if not isinstance(services, dict):
        return None, None
    for name, service in services.items():
        build = service.get("build") if isinstance(service, dict) else None
        context = build.get("context") if isinstance(build, dict) else build
        if isinstance(context, str) and Path(context).as_posix().strip("./") == "apps/frontend":
            return str(name), build
    service = services.get("frontend")
    if isinstance(service, dict):
        return "frontend", service.get("build")
    return None, None


def build_arg_names(build: Any) -> set[str]:
    """Names under `build.args`, which compose allows as a mapping or a list of KEY[=value]."""
    if not isinstance(build, dict):
        return set()
    args = build.get("args") or {}
    if isinstance(args, dict):
        return {str(key) for key in args}
    if isinstance(args, list):
        return {str(item).split("=", 1)[0] for item in args}
    return set()


# --- the rules ----------------------------------------------------------------------------------


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
    shown = _display(path, root)
    if not path.is_file():
        result.status = "SKIPPED"
        if explicit:
            result.status = "FAIL"
            result.problems.append(Problem(shown, "--ctmpl file not found"))
        else:
            result.note = f"{shown} not found (the infra submodule is not checked out); check it with --ctmpl PATH"
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
    shown = _display(env_example.path, root)
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


# --- the report ---------------------------------------------------------------------------------


def format_report(report: Report, *, diff: bool = False, fix: bool = False) -> str:
    """The report a person reads: one block per rule, then warnings, then a one-line verdict."""
    lines: list[str] = []
    for rule in report.rules:
        lines.append(f"[{rule.status}] {rule.name}: {rule.description}")
        if rule.note:
            lines.append(f"    {rule.note}")
        lines.extend(f"    {problem}" for problem in rule.problems)
        lines.extend(
            f"    missing {item.key} -> add to {item.into}" + (f"  ({item.why})" if item.why else "")
            for item in rule.missing
        )
        if diff and rule.status == "FAIL":
            lines.extend(_format_diffs(rule))
    lines.extend(f"warning: {warning}" for warning in report.warnings)
    if fix:
        lines.extend(_format_fixes(report))
    counts = {status: sum(r.status == status for r in report.rules) for status in ("PASS", "FAIL")}
    skipped = [rule.name for rule in report.rules if rule.status == "SKIPPED"]
    verdict = "FAILED" if report.failed else "OK"
    summary = (
        f"env_keys: {verdict}: {counts['FAIL']} failed, {counts['PASS']} passed, "
        f"{len(skipped)} skipped{' (' + ', '.join(skipped) + ')' if skipped else ''}, "
        f"{len(report.warnings)} warnings"
    )
    lines.append(summary)
    return "\n".join(lines)


def _format_diffs(rule: RuleResult) -> Iterable[str]:
    """The compared key sets as unified diffs: `-` lines are expected but missing."""
    for expected_label, expected, actual_label, actual in rule.comparisons:
        # Only the keys that matter to this comparison: extra keys elsewhere are not drift.
        relevant = sorted(set(actual) & set(expected))
        diff = difflib.unified_diff(expected, relevant, fromfile=expected_label, tofile=actual_label, lineterm="", n=0)
        yield from (f"    {line}" for line in diff)


def _format_fixes(report: Report) -> Iterable[str]:
    """Paste-ready snippets, grouped by the file each must go into."""
    by_file: dict[str, list[Missing]] = {}
    for rule in report.rules:
        for item in rule.missing:
            by_file.setdefault(item.into, []).append(item)
    if not by_file:
        return
    yield ""
    yield "Snippets to add (--fix):"
    for into, items in by_file.items():
        yield f"--- {into}"
        seen: set[str] = set()
        for item in items:
            if item.snippet not in seen:
                seen.add(item.snippet)
                yield item.snippet
    yield ""


# --- entry points -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The command line shared by `nox -s env_keys -- ...` and scripts/check_env_keys.py."""
    parser = argparse.ArgumentParser(
        prog="check_env_keys",
        description="Check that Settings, .env.example, the Vault template and the frontend's "
        "build-time keys agree. Exits 1 on any violation.",
    )
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository to check")
    parser.add_argument(
        "--ctmpl",
        type=Path,
        help=f"Vault consul-template to check (default: {DEFAULT_CTMPL} when checked out)",
    )
    parser.add_argument(
        "--settings-json",
        type=Path,
        help="read Settings fields from this file instead of `python -m src.config --fields-json`",
    )
    parser.add_argument("--python", help="interpreter with the backend installed (default: this one)")
    parser.add_argument("--diff", action="store_true", help="show each failed comparison as a diff of key lists")
    parser.add_argument("--fix", action="store_true", help="print the snippets to add, grouped by file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the check and print the report; 0 when every rule passed or was skipped, else 1."""
    arguments = build_parser().parse_args(argv)
    root = arguments.root.resolve()
    if not root.is_dir():
        print(f"env_keys: --root {arguments.root} is not a directory", file=sys.stderr)
        return 1
    try:
        fields = read_settings_fields(root, arguments.settings_json, arguments.python)
    except SettingsUnavailableError as error:
        print(f"env_keys: cannot load Settings: {error}", file=sys.stderr)
        return 1
    report = run_checks(root, fields, arguments.ctmpl)
    print(format_report(report, diff=arguments.diff, fix=arguments.fix))
    return 1 if report.failed else 0


def run(session: nox.Session) -> None:
    """Run the check inside the session's environment, which has the backend installed.

    The check runs as the script rather than in nox's own process because `Settings` must be
    loaded by an interpreter that can import the backend, and that is the session's.
    """
    session.run("python", str(REPO_ROOT / "scripts" / "check_env_keys.py"), *session.posargs)
