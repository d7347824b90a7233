"""MkDocs hook: render the `Settings` table into the configuration page at build time.

The table comes from the same place the env-key check reads, `python -m src.config
--fields-json` through `noxlib.env_keys.parsers.read_settings_fields`, so the docs, `.env.example`
and the Vault template are all checked against one list and the page cannot go stale. The
build fails (rather than publishing an empty table) when the backend cannot be loaded.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.livereload import LiveReloadServer
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

REPO_ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = "<!-- settings-reference -->"
SETTINGS_SOURCE = REPO_ROOT / "apps" / "backend" / "src" / "config.py"

# mkdocs loads hooks by file path, so the repository root is not importable by default.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from noxlib.env_keys.model import SettingsField, SettingsUnavailableError  # noqa: E402 - needs the path above
from noxlib.env_keys.parsers import read_settings_fields  # noqa: E402 - needs the path above


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: pipes and newlines would end the cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _default_cell(settings_field: SettingsField) -> str:
    """The default as a reader would type it in `.env`; a secret's real default is not shown."""
    default = settings_field.default
    if not settings_field.has_default:
        return "*required*"
    if settings_field.secret and default not in ("", None):
        return "*hidden*"
    if default is None:
        return "*unset*"
    if default == "":
        return '`""`'
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, str):
        return f"`{_cell(default)}`"
    return f"`{_cell(json.dumps(default))}`"


def render_settings_table(fields: list[SettingsField]) -> str:
    """The Markdown table of every field: env var(s), field, type, default, secret, purpose."""
    lines = [
        "| Env var | Field | Type | Default | Secret | Description |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for settings_field in fields:
        names = ", ".join(f"`{name}`" for name in settings_field.env)
        lines.append(
            f"| {names} | `{settings_field.name}` | {_cell(settings_field.type)} "
            f"| {_default_cell(settings_field)} | {'yes' if settings_field.secret else 'no'} "
            f"| {_cell(settings_field.description)} |"
        )
    count = len(fields)
    secrets = sum(settings_field.secret for settings_field in fields)
    lines.append("")
    lines.append(f"*{count} settings, {secrets} of them secret; generated from `Settings`.*")
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Replace the placeholder with the table; other pages pass through untouched."""
    if PLACEHOLDER not in markdown:
        return markdown
    try:
        fields = read_settings_fields(REPO_ROOT)
    except SettingsUnavailableError as error:
        raise PluginError(f"configuration reference: {error}") from None
    return markdown.replace(PLACEHOLDER, render_settings_table(fields))


def on_serve(server: LiveReloadServer, config: MkDocsConfig, builder: Any) -> LiveReloadServer:
    """Rebuild when `Settings` changes, so the served table follows the code being edited."""
    server.watch(str(SETTINGS_SOURCE))
    return server
