"""MkDocs hook: render the table of nox sessions from noxfile.py at build time.

The noxfile is the one list of sessions (`nox -l` shows it, `nox -t ci -l --json` feeds CI), so
the docs read it too instead of repeating it. It is read with `ast`, not imported: importing
it would pull in nox and every noxlib dependency just to build the docs. A session whose
decorator cannot be read statically fails the build with the line to fix.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.livereload import LiveReloadServer
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

REPO_ROOT = Path(__file__).resolve().parents[2]
NOXFILE = REPO_ROOT / "noxfile.py"
PLACEHOLDER = "<!-- nox-sessions -->"


@dataclass(frozen=True)
class SessionInfo:
    """What `nox -l` would say about one session, plus its tags."""

    name: str
    summary: str
    tags: tuple[str, ...]
    # Whether bare `nox` runs it: nox's per-session `default=` (True unless the decorator says False).
    default: bool = True


def _module_constants(tree: ast.Module) -> dict[str, ast.expr]:
    """Module-level `NAME = <expr>` assignments, to resolve `tags=CI_TAGS`-style arguments."""
    constants: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                constants[target.id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            constants[node.target.id] = node.value
    return constants


def _resolve(node: ast.expr, constants: dict[str, ast.expr]) -> ast.expr:
    """Follow a bare name to the module-level value it was assigned, once."""
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    return node


def _strings(node: ast.expr, constants: dict[str, ast.expr]) -> tuple[str, ...] | None:
    """A literal string or list/tuple of strings, or None when it is computed."""
    node = _resolve(node, constants)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return (node.value,)
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        values = [_resolve(element, constants) for element in node.elts]
        if all(isinstance(v, ast.Constant) and isinstance(v.value, str) for v in values):
            return tuple(v.value for v in values)  # type: ignore[attr-defined]
    return None


def _session_decorator(function: ast.FunctionDef) -> ast.expr | None:
    """The `@nox.session(...)`/`@nox_uv.session(...)`/`@session` decorator, if any."""
    for decorator in function.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
        if name == "session":
            return decorator
    return None


def _placeholder_name(node: ast.expr, constants: dict[str, ast.expr]) -> str | None:
    """A session name, with `<python>`-style placeholders for the parts a loop fills in.

    `name=f"test-{_python}"` inside `for _python in PYTHONS:` becomes `test-<python>`: the
    values are computed when nox loads the file, and `nox -l` shows them.
    """
    literal = _strings(node, constants)
    if literal:
        return literal[0]
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value, ast.FormattedValue):
                parts.append(f"<{ast.unparse(value.value).strip('_')}>")
        return "".join(parts)
    return None


def _parameters(function: ast.FunctionDef) -> list[str]:
    """The argument names of `@nox.parametrize(...)` decorators, e.g. `shard`."""
    names: list[str] = []
    for decorator in function.decorator_list:
        if not isinstance(decorator, ast.Call) or not decorator.args:
            continue
        target = decorator.func
        called = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        first = decorator.args[0]
        if called == "parametrize" and isinstance(first, ast.Constant):
            names.extend(part.strip() for part in str(first.value).split(","))
    return names


def _session_functions(tree: ast.Module) -> list[ast.FunctionDef]:
    """Session functions at module level and inside module-level loops (one per Python, say)."""
    functions = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            functions.append(node)
        elif isinstance(node, ast.For | ast.If):
            functions.extend(child for child in node.body if isinstance(child, ast.FunctionDef))
    return functions


def read_sessions(noxfile: Path) -> list[SessionInfo]:
    """Every session the noxfile defines, in file order."""
    tree = ast.parse(noxfile.read_text(encoding="utf-8"), filename=str(noxfile))
    constants = _module_constants(tree)
    sessions = []
    for node in _session_functions(tree):
        decorator = _session_decorator(node)
        if decorator is None:
            continue
        keywords = (
            {keyword.arg: keyword.value for keyword in decorator.keywords} if isinstance(decorator, ast.Call) else {}
        )
        name = node.name
        if "name" in keywords:
            placeholder = _placeholder_name(keywords["name"], constants)
            if placeholder is None:
                raise PluginError(f"{noxfile.name}:{node.lineno}: session name is not a literal")
            name = placeholder
        parameters = _parameters(node)
        if parameters:
            name += "(" + ", ".join(f"{parameter}=<{parameter}>" for parameter in parameters) + ")"
        tags: tuple[str, ...] = ()
        if "tags" in keywords:
            resolved = _strings(keywords["tags"], constants)
            if resolved is None:
                raise PluginError(
                    f"{noxfile.name}:{node.lineno}: tags of session {name!r} are computed; "
                    "use a literal list or a module-level constant"
                )
            tags = resolved
        docstring = ast.get_docstring(node) or ""
        summary = docstring.strip().splitlines()[0] if docstring.strip() else ""
        if not summary:
            raise PluginError(f"{noxfile.name}:{node.lineno}: session {name!r} has no docstring for `nox -l`")
        default_node = keywords.get("default")
        default = not (isinstance(default_node, ast.Constant) and default_node.value is False)
        sessions.append(SessionInfo(name, summary, tags, default))
    return sessions


def read_default_sessions(noxfile: Path) -> tuple[str, ...]:
    """What bare `nox` runs: every session whose decorator does not say `default=False`."""
    return tuple(session.name for session in read_sessions(noxfile) if session.default)


def render_session_table(sessions: list[SessionInfo], defaults: tuple[str, ...] = ()) -> str:
    """The Markdown table: command, what it does (its docstring), tags."""
    lines = ["| Command | What it does | Tags |", "| --- | --- | --- |"]
    for session in sessions:
        tags = ", ".join(f"`{tag}`" for tag in session.tags) or "—"
        summary = session.summary.replace("|", "\\|")
        lines.append(f"| `nox -s {session.name}` | {summary} | {tags} |")
    lines.append("")
    lines.append(f"*{len(sessions)} sessions; generated from `noxfile.py`.*")
    if defaults:
        lines.append("")
        lines.append("Bare `nox` (no `-s`) runs " + ", ".join(f"`{name}`" for name in defaults) + ".")
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Replace the placeholder with the session table; other pages pass through untouched."""
    if PLACEHOLDER not in markdown:
        return markdown
    if not NOXFILE.is_file():
        raise PluginError(f"session reference: {NOXFILE} not found")
    try:
        sessions = read_sessions(NOXFILE)
    except SyntaxError as error:
        raise PluginError(f"session reference: noxfile.py:{error.lineno}: {error.msg}") from None
    return markdown.replace(PLACEHOLDER, render_session_table(sessions, read_default_sessions(NOXFILE)))


def on_serve(server: LiveReloadServer, config: MkDocsConfig, builder: Any) -> LiveReloadServer:
    """Rebuild when the noxfile changes, so the served table follows it."""
    server.watch(str(NOXFILE))
    return server
