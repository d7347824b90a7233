"""Reading the inputs: .env files, the Vault template, `Settings`, the frontend, its Dockerfile and compose."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from noxlib.env_keys.model import (
    BACKEND_DIR,
    COMMENT_LINE_STARTS,
    ENV_LINE,
    ENV_READ,
    FRONTEND_DIR,
    FRONTEND_SKIPPED_DIRS,
    FRONTEND_SOURCE_SUFFIXES,
    NO_DEFAULT_MARKERS,
    PUBLIC_PREFIX,
    REPO_ROOT,
    TEMPLATE_ACTION,
    EnvFile,
    Problem,
    SettingsField,
    SettingsUnavailableError,
)


def display_path(path: Path, root: Path) -> str:
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
    shown = display_path(path, root)
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
        raise SettingsUnavailableError(f"{display_path(backend, root)} not found; cannot load Settings")
    completed = subprocess.run(command, cwd=backend, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        last_line = (completed.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SettingsUnavailableError(
            f"`python -m src.config --fields-json` failed in {display_path(backend, root)}: "
            f"{last_line}. Run `nox -s env_keys` (it installs the backend) or pass --settings-json"
        )
    return settings_fields_from_json(completed.stdout, "python -m src.config --fields-json")


def find_frontend_env_reads(root: Path) -> dict[str, str]:
    """Every key the frontend source reads from `process.env` (or an `env` standing for it), and where first."""
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
                    found.setdefault(key, f"{display_path(path, root)}:{number}")
    return dict(sorted(found.items()))


def public_reads(env_reads: dict[str, str]) -> dict[str, str]:
    """The NEXT_PUBLIC_* subset: the keys `next build` inlines into the browser bundle."""
    return {key: where for key, where in env_reads.items() if key.startswith(PUBLIC_PREFIX)}


def read_dockerfile_args(path: Path, root: Path) -> tuple[set[str], list[Problem]]:
    """The build arguments a Dockerfile declares with `ARG NAME[=default]`."""
    problems: list[Problem] = []
    text = _read_text(path, display_path(path, root), problems)
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

    shown = display_path(path, root)
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
