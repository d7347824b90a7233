"""MkDocs hook: the table of environment variables nox reads, checked against the code that reads them.

The rows come from `noxlib.names.nox_variables.VARIABLES`. So that list cannot drift from the code, the
hook also reads noxlib's source with `ast` — every `environ.get("NAME")`, `env["NAME"]`,
`os.getenv("NAME")`, `*_from_env("NAME")` and `NAME_VARIABLE = "NAME"` — and fails the build when
the code reads a variable the list does not name (or names in `NOT_SETTINGS`), or the list names
one nothing reads. Read, not imported: a hook must not run the modules it documents.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

REPO_ROOT = Path(__file__).resolve().parents[2]
NOXLIB = REPO_ROOT / "noxlib"
PLACEHOLDER = "<!-- nox-variables -->"
# Names a mapping of the environment goes by in noxlib.
ENVIRONMENT_NAMES = {"environ", "env", "environment"}
VARIABLE_NAME = re.compile(r"[A-Z][A-Z0-9_]*")

# mkdocs loads hooks by file path, so the repository root is not importable by default.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from noxlib.names.nox_variables import NOT_SETTINGS, VARIABLES  # noqa: E402 - needs the path above


def _terminal_name(node: ast.expr) -> str:
    """`os.environ` -> `environ`, `env` -> `env`, anything else -> ``."""
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _constant_name(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and VARIABLE_NAME.fullmatch(node.value):
        return node.value
    return None


def _reads_by_call(function: ast.expr) -> bool:
    """`environ.get(NAME)`, `env.pop(NAME)`, `os.getenv(NAME)`, `_port_from_env(NAME, …)`."""
    if isinstance(function, ast.Attribute) and function.attr in ("get", "pop"):
        return _terminal_name(function.value) in ENVIRONMENT_NAMES
    return _terminal_name(function) == "getenv" or _terminal_name(function).endswith("from_env")


def variables_read(source: str) -> set[str]:
    """The environment variables a module reads, by the patterns noxlib reads them with."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        name = None
        if isinstance(node, ast.Call) and node.args and _reads_by_call(node.func):
            name = _constant_name(node.args[0])
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            name = _constant_name(node.slice) if _terminal_name(node.value) in ENVIRONMENT_NAMES else None
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            name = _constant_name(node.value) if _terminal_name(node.targets[0]).endswith("_VARIABLE") else None
        if name:
            found.add(name)
    return found


def noxlib_reads(root: Path = NOXLIB) -> dict[str, list[str]]:
    """Every variable noxlib reads -> the modules that read it."""
    readers: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        for name in variables_read(path.read_text(encoding="utf-8")):
            readers.setdefault(name, []).append(str(path.relative_to(root.parent)))
    return readers


def drift(readers: dict[str, list[str]]) -> list[str]:
    """What the list and the code disagree on, one sentence each."""
    problems = [
        f"{name} is read by {', '.join(modules)} but not listed in noxlib/names/nox_variables.py"
        for name, modules in sorted(readers.items())
        if name not in VARIABLES and name not in NOT_SETTINGS
    ]
    problems += [
        f"{name} is listed in noxlib/names/nox_variables.py but no noxlib module reads it"
        for name in [*VARIABLES, *NOT_SETTINGS]
        if name not in readers
    ]
    return problems


def render_table(readers: dict[str, list[str]]) -> str:
    lines = ["| Variable | Read by | What it changes | Where in the code |", "| --- | --- | --- | --- |"]
    for name, (reader, effect) in VARIABLES.items():
        modules = ", ".join(f"`{module}`" for module in readers.get(name, []))
        lines.append(f"| `{name}` | {reader} | {effect} | {modules} |")
    lines.append("")
    lines.append(
        f"*{len(VARIABLES)} variables; generated from `noxlib/names/nox_variables.py`, checked against the code.*"
    )
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Replace the placeholder with the table; fail the build when the list and the code disagree."""
    if PLACEHOLDER not in markdown:
        return markdown
    readers = noxlib_reads()
    if problems := drift(readers):
        raise PluginError("nox variables: " + "; ".join(problems))
    return markdown.replace(PLACEHOLDER, render_table(readers))
