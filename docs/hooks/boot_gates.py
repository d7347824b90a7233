"""MkDocs hook: what each boot gate (`nox -s boot -- dry-run|critical|full`) checks, from the backend's list.

`apps/backend/src/boot.py` keeps its checks (`CHECKS`, what each verifies) and which mode runs
which (`MODE_CHECKS`) as plain literals; this hook reads them with `ast` — the app is not
imported, so building the docs connects to nothing — and renders one row per check with a mark
for each mode that runs it. A change to the checks changes this table on the next build.
"""

from __future__ import annotations

import ast
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.livereload import LiveReloadServer
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

REPO_ROOT = Path(__file__).resolve().parents[2]
BOOT = REPO_ROOT / "apps" / "backend" / "src" / "boot.py"
PLACEHOLDER = "<!-- boot-gates -->"
LITERALS = ("CHECKS", "MODE_CHECKS")


def read_gates(path: Path = BOOT) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """`CHECKS` and `MODE_CHECKS` as the module assigns them; the build fails when either is not a literal."""
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
            if isinstance(target, ast.Name) and target.id in LITERALS and node.value is not None:
                try:
                    found[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    raise PluginError(f"boot gates: {target.id} in {path} must stay a literal") from None
    checks, modes = found.get("CHECKS"), found.get("MODE_CHECKS")
    if not isinstance(checks, dict) or not isinstance(modes, dict):
        raise PluginError(f"boot gates: {path} no longer assigns {' and '.join(LITERALS)}")
    return checks, modes


def render_table(checks: dict[str, str], modes: dict[str, tuple[str, ...]]) -> str:
    lines = [
        "| Check | What it checks | " + " | ".join(f"`{mode}`" for mode in modes) + " |",
        "| --- | --- | " + " | ".join("---" for _ in modes) + " |",
    ]
    for name, what in checks.items():
        marks = " | ".join("✓" if name in checked else "" for checked in modes.values())
        lines.append(f"| `{name}` | {what} | {marks} |")
    lines.append("")
    lines.append("*Generated from `CHECKS` and `MODE_CHECKS` in `apps/backend/src/boot.py`.*")
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Replace the placeholder with the table."""
    if PLACEHOLDER not in markdown:
        return markdown
    return markdown.replace(PLACEHOLDER, render_table(*read_gates()))


def on_serve(server: LiveReloadServer, config: MkDocsConfig, builder: object) -> LiveReloadServer:
    """Rebuild when the checks change, so the served table follows the code being edited."""
    server.watch(str(BOOT))
    return server
