"""What the PostgreSQL role a run connects as may do, and the templates that are its own.

With `FR_SERVICES=external` the role is whoever `DATABASE_URL` names, and it may be a limited
one. A role without CREATEDB ended the run in an `InsufficientPrivilege` traceback; here it is one
line naming the privilege and how to grant it. A template's tables belong to the role that ran
its migrations, so a clone of another role's template leaves a run unable to read its own
tables (`permission denied for table alembic_version`): a template is keyed by the migrations
*and* the role that builds it, so no role ever clones another role's template.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

from noxlib.core.errors import UserError, first_line


def role_of(url: str) -> str:
    """The role a PostgreSQL URL connects as (libpq's default, `postgres`, when it names none)."""
    return unquote(urlsplit(url).username or "postgres")


def template_key(migrations_hash: str, role: str) -> str:
    """The hash a template is named by: the same migrations built by another role are another template."""
    return hashlib.sha256(f"{migrations_hash}\0{role}".encode()).hexdigest()


@contextlib.contextmanager
def privileges_named(role: str) -> Iterator[None]:
    """A privilege the role lacks becomes one line that names it, instead of a traceback."""
    import psycopg

    try:
        yield
    except psycopg.errors.InsufficientPrivilege as error:
        if "create database" in str(error):
            raise UserError(
                f"the PostgreSQL role {role} may not create databases (it lacks CREATEDB), and each run "
                f"creates its own: `ALTER ROLE {role} CREATEDB` as a superuser, or set DATABASE_URL to a role "
                "that has it."
            ) from None
        raise UserError(f"the PostgreSQL role {role} lacks a privilege the run needs: {first_line(error)}") from None
