"""The backend → frontend API contract: one OpenAPI document, one set of generated types.

The backend's pydantic models are the only writer of the JSON shapes. `scripts/export_openapi.py`
(run in the backend's virtualenv, because noxlib never imports the apps) prints the document the
app serves at /api/openapi.json; the frontend commits it as apps/frontend/openapi.json and
generates apps/frontend/lib/api-types.ts from it with openapi-typescript (pinned in
package-lock.json). Its decoders are typed from those types, so a renamed field breaks the
frontend's type check and its tests instead of rendering "—".

`nox -s api_types` fails when either committed file differs from what the app produces now;
`nox -s api_types -- --fix` rewrites both.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nox
from nox.command import CommandFailed

from noxlib.core.errors import UserError
from noxlib.core.paths import FRONTEND_DIR, REPO_ROOT
from noxlib.sessions import frontend

EXPORT_SCRIPT = REPO_ROOT / "scripts" / "export_openapi.py"
OPENAPI_DOCUMENT = FRONTEND_DIR / "openapi.json"
GENERATED_TYPES = FRONTEND_DIR / "lib" / "api-types.ts"
# The package.json script that runs openapi-typescript on OPENAPI_DOCUMENT into GENERATED_TYPES.
GENERATE_SCRIPT = "api-types"
FIX_COMMAND = "nox -s api_types -- --fix"


def export_document(session: nox.Session) -> str:
    """The OpenAPI document the backend serves now, exported by the backend's own interpreter."""
    exported = Path(session.create_tmp()) / "openapi.json"
    session.run("python", str(EXPORT_SCRIPT), "--output", str(exported))
    return exported.read_text(encoding="utf-8")


def document_drift(current: str, committed_path: Path = OPENAPI_DOCUMENT) -> str | None:
    """Why the committed document is not the app's, or None when they are the same."""
    shown = committed_path.relative_to(REPO_ROOT) if committed_path.is_relative_to(REPO_ROOT) else committed_path
    if not committed_path.is_file():
        return f"{shown} is missing"
    if committed_path.read_text(encoding="utf-8") != current:
        return f"{shown} differs from the backend's /api/openapi.json"
    return None


def add_options(parser: argparse.ArgumentParser) -> None:
    """`nox -s api_types -- --fix`."""
    parser.add_argument("--fix", action="store_true", help="regenerate the document and the types instead of checking")


def run(session: nox.Session, fix: bool = False) -> None:
    """Check (or with `fix`, rewrite) the committed document and the types generated from it."""
    current = export_document(session)
    if fix:
        OPENAPI_DOCUMENT.write_text(current, encoding="utf-8")
        frontend.npm_script(session, GENERATE_SCRIPT)
        session.log(f"wrote {OPENAPI_DOCUMENT.relative_to(REPO_ROOT)} and {GENERATED_TYPES.relative_to(REPO_ROOT)}")
        return
    drift = document_drift(current)
    if drift:
        raise UserError(f"the frontend's API contract is stale: {drift}; run `{FIX_COMMAND}` and commit both files")
    try:
        # openapi-typescript regenerates in memory and compares with the committed file.
        frontend.npm_script(session, GENERATE_SCRIPT, "--check")
    except CommandFailed:
        raise UserError(
            f"{GENERATED_TYPES.relative_to(REPO_ROOT)} was not generated from "
            f"{OPENAPI_DOCUMENT.relative_to(REPO_ROOT)} (edited by hand?); run `{FIX_COMMAND}` and commit it"
        ) from None
