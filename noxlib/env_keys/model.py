"""The env-key check's vocabulary: where each input lives, and what a problem, a rule and a report are."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

REPO_ROOT = Path(__file__).resolve().parents[2]

# Where the template Vault agent renders into the app's env file in staging and production is,
# in a clone of the infra repository at `repo/` of this checkout. That repository is separate (no
# submodule, no `.gitmodules`): a checkout without the clone skips the rule, or gives --ctmpl PATH.
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
# Next.js inlines only the two `process.env` spellings at build time; destructuring `process.env` yields
# undefined in the browser, so it is not a way to read a public key and is not looked for.
# Server-side code reads other keys the same way, or through an `env` object that defaults to
# `process.env` so a test can pass its own (apps/frontend/lib/backend-proxy.ts: `env.BACKEND_URL`);
# those only count as "used" for the warning. A bare `env` is one not after a dot or an identifier
# character, so `import.meta.env.X` or `myenv.X` are not taken for it.
ENV_READ = re.compile(
    rf"(?:process\.|(?<![\w.$]))env\.({KEY_PATTERN})"
    rf"|(?:process\.|(?<![\w.$]))env\[\s*['\"`]({KEY_PATTERN})['\"`]\s*\]"
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
