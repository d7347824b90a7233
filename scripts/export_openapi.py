"""Print the backend's OpenAPI document (what it serves at /api/openapi.json) without serving it.

The frontend's API types are generated from this document (apps/frontend/openapi.json →
apps/frontend/lib/api-types.ts); `nox -s api_types` runs this script in the backend's virtualenv
and fails when the committed copies differ. Run it by hand with the backend installed:

    python scripts/export_openapi.py --output apps/frontend/openapi.json

The app is built from `Settings`' defaults, not from the environment: the document must be the
same on every machine, and the one setting that shows in it (the service name in the summary)
would otherwise make a developer's export differ from GitHub's. Nothing connects: `create_app`
only builds clients, and the document is computed from the routes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# `src` is the backend's top-level package; the script runs from any directory.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "apps" / "backend"))

from src.config import Settings
from src.main import create_app


def setting_variables() -> set[str]:
    """Every environment variable `Settings` reads: each field's name and its aliases."""
    names = set()
    for name, field in Settings.model_fields.items():
        names.add(name)
        alias = field.validation_alias
        choices = getattr(alias, "choices", [alias] if isinstance(alias, str) else [])
        names.update(choice for choice in choices if isinstance(choice, str))
    return {name.upper() for name in names}


def openapi_document() -> dict[str, object]:
    """The document the app serves, built from the default settings."""
    ignored = setting_variables()
    for key in [key for key in os.environ if key.upper() in ignored]:
        del os.environ[key]
    return create_app(Settings()).openapi()


def main() -> None:
    """Write the document as stable, diff-friendly JSON to --output (a file, so no log line mixes in)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, help="file to write (default: standard output)")
    args = parser.parse_args()
    text = json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
