"""The env-key contract: every place that names an environment variable agrees with `Settings`.

Four files name the same keys and drift apart silently: the backend's `Settings` model, the
Vault template that renders production's env file, `.env.example` that a developer copies, and
the frontend's build-time `NEXT_PUBLIC_*` plumbing (source, Dockerfile `ARG`, compose build
`args`). A key missing from any of them fails only at deploy time, so this check fails first.

`Settings` is read by loading the model, never by regex: the backend prints its fields with
`python -m src.config --fields-json` (noxlib never imports the apps), and tests hand the same
JSON in with `--settings-json FILE`. Only the standard library is imported at module level, so
the noxfile and the docs hook can import this package anywhere; PyYAML is imported where
`docker-compose.yml` is read.

The package: `model` (inputs and results), `parsers` (reading each input), `rules` (comparing
them), `report` (printing the result); this module is the command line and the nox session.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from noxlib.env_keys.model import DEFAULT_CTMPL, REPO_ROOT, SettingsUnavailableError
from noxlib.env_keys.parsers import read_settings_fields
from noxlib.env_keys.report import format_report
from noxlib.env_keys.rules import run_checks

if TYPE_CHECKING:
    import nox


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
