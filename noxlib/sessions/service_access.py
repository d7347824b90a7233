"""How a person reaches the services a `dev` or `infra` run holds: one line each, no password in any.

"How do I `psql` into the dev database?" had no answer on screen. A printed password would end up
in scrollback, pasted logs and screen shares, so none is printed: every URL has its password
masked, and the PostgreSQL line is a `psql` command that works as pasted because it names a
password file (libpq's `PGPASSFILE`) this module writes, 0600, in the per-user state directory —
the same directory that already holds the native services' credentials.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
from pathlib import Path
from urllib.parse import quote

from noxlib.core.paths import state_dir
from noxlib.core.redaction import redact
from noxlib.services.base import ServiceUrls

PGPASS_NAME = "pgpass"


def _pgpass_field(value: str) -> str:
    """A .pgpass field: libpq reads `:` and `\\` escaped with a backslash."""
    return value.replace("\\", "\\\\").replace(":", "\\:")


def write_pgpass(urls: ServiceUrls, directory: Path | None = None) -> Path:
    """The services' PostgreSQL password in libpq's password-file format, readable by this account only.

    Written to a new file and renamed over the old one, so a reader never sees half of it, and
    created 0600 from the start (libpq ignores a password file others can read).
    """
    path = (directory or state_dir()) / PGPASS_NAME
    entry = ":".join(
        _pgpass_field(value)
        for value in (urls.postgres_host, str(urls.postgres_port), "*", urls.postgres_user, urls.postgres_password)
    )
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(entry + "\n")
        temporary.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return path


def psql_program() -> str:
    """`psql` when it is on PATH; else the one beside the native backend's PostgreSQL, when there is one."""
    if shutil.which("psql"):
        return "psql"
    from noxlib.core.errors import UserError
    from noxlib.services.native_postgres import find_postgres_bindir

    with contextlib.suppress(UserError, OSError):
        candidate = find_postgres_bindir() / "psql"
        if candidate.is_file():
            return str(candidate)
    return "psql"


def psql_command(urls: ServiceUrls, database: str, pgpass: Path) -> str:
    """A command a person can paste: the password comes from `pgpass`, never from the command line."""
    user = quote(urls.postgres_user, safe="")
    url = f"postgresql://{user}@{urls.postgres_host}:{urls.postgres_port}/{database}"
    return f"PGPASSFILE={shlex.quote(str(pgpass))} {shlex.quote(psql_program())} {shlex.quote(url)}"


def service_lines(
    urls: ServiceUrls, *, database: str, bucket: str, redis_prefix: str = "", directory: Path | None = None
) -> list[str]:
    """One labelled line per service, passwords masked; the psql line uses a freshly written password file."""
    pgpass = write_pgpass(urls, directory)
    prefix = f" (keys prefixed {redis_prefix}:)" if redis_prefix else ""
    lines = [
        f"postgres   {urls.database_url(database)}",
        f"psql       {psql_command(urls, database, pgpass)}",
        f"redis      {urls.redis_url}{prefix}",
        f"s3         {urls.s3_endpoint}  bucket {bucket}  (access key {urls.s3_access_key})",
    ]
    return [redact(line, urls.secrets()) for line in lines]
