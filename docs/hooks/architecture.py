"""MkDocs hook: noxlib's rooms, their modules and the imports between them, drawn from the code.

`docs/architecture.md` shows where each piece of noxlib lives and which way its imports run. A
hand-kept table went stale (a module was missing from it), so this hook reads noxlib with `ast` —
every import, the lazy ones inside functions too — and renders one table per room (sub-package:
its docstring, each module's first docstring line and size) and a flowchart of the arrows
between rooms. The build fails when an import runs upward against `ROOMS`' order, two modules
import each other in a circle or a module grows past 400 lines: the layout is checked on every
docs build (and by tests/test_architecture.py), not only drawn.
Read, not imported: a hook must not run the modules it documents.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # mkdocs only when the hook runs in a build: tests/test_architecture.py reads the rules bare
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files
    from mkdocs.structure.pages import Page

REPO_ROOT = Path(__file__).resolve().parents[2]
NOXLIB = REPO_ROOT / "noxlib"
PLACEHOLDER = "<!-- noxlib-rooms -->"
# Top to bottom: a room imports only rooms below it. env_keys stands apart (it imports none).
ROOMS = ("sessions", "smoke", "ci", "run", "services", "names", "core", "env_keys")
# A module past this holds more than one concern: split it, and its room says which.
MAX_MODULE_LINES = 400


class LayoutError(ValueError):
    """noxlib's layout breaks a rule; the message lists every break, one a line."""


def module_name(path: Path, root: Path = NOXLIB) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Which noxlib modules each module imports, at its top or inside a function."""
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            edges[name].update(t for t in targets if t in modules and t != name and not name.startswith(f"{t}."))
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or through others (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def first_line(path: Path) -> str:
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return docstring.strip().splitlines()[0].replace("|", "\\|") if docstring.strip() else ""


def render(root: Path = NOXLIB) -> str:
    modules = {module_name(path, root): path for path in sorted(root.rglob("*.py"))}
    edges = imports(modules)
    problems = [f"import circle: {' ↔ '.join(group)}" for group in circles(edges)]
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules.items()}
    problems += [
        f"{name}: {size} lines, over {MAX_MODULE_LINES}" for name, size in sizes.items() if size > MAX_MODULE_LINES
    ]
    arrows: dict[tuple[str, str], int] = defaultdict(int)
    for source, targets in edges.items():
        for target in targets:
            rooms = room_of(source), room_of(target)
            if "" in rooms or rooms[0] == rooms[1]:
                continue
            if rooms[0] not in ROOMS or rooms[1] not in ROOMS:
                problems.append(f"{source}: room {rooms[0] if rooms[0] not in ROOMS else rooms[1]} is not in ROOMS")
            elif ROOMS.index(rooms[0]) > ROOMS.index(rooms[1]):
                problems.append(f"{source} imports {target}: an arrow upward, from {rooms[0]}/ into {rooms[1]}/")
            arrows[rooms] += 1
    stray = [name for name in modules if name.count(".") == 1 and room_of(name) not in ROOMS]
    problems += [f"{name}: a module outside every room (put it in one of {', '.join(ROOMS)})" for name in stray]
    if problems:
        raise LayoutError("noxlib's layout:\n  " + "\n  ".join(problems))
    lines = ["```mermaid", "flowchart TD"]
    lines += [f"    {source} --> {target}" for (source, target) in sorted(arrows)]
    lines += ["```", ""]
    total = sum(sizes.values())
    for room in ROOMS:
        members = sorted(name for name in modules if room_of(name) == room and name != f"noxlib.{room}")
        package = modules[f"noxlib.{room}"]
        size = sum(sizes[name] for name in members)
        lines += [f"### `{room}/` — {size} lines", "", first_line(package), "", "| Module | What it holds | Lines |"]
        lines += ["| --- | --- | --- |"]
        for name in members:
            lines.append(f"| `{modules[name].name}` | {first_line(modules[name])} | {sizes[name]} |")
        lines.append("")
    lines.append(f"*{len(modules)} modules, {total} lines; generated from noxlib's imports and docstrings.*")
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Replace the placeholder with the rooms and their arrows."""
    if PLACEHOLDER not in markdown:
        return markdown
    from mkdocs.exceptions import PluginError

    try:
        return markdown.replace(PLACEHOLDER, render())
    except LayoutError as error:
        raise PluginError(str(error)) from None
