"""credentials.json: the native services' secrets, generated once per state directory, checked on every read."""

from __future__ import annotations

import errno
import json
import os
import secrets
from pathlib import Path

from noxlib.core.errors import UserError
from noxlib.core.paths import create_exclusively

# What credentials.json must hold: every value a non-empty string.
CREDENTIAL_KEYS = ("postgres_password", "s3_secret_key", "redis_password")
# Keys a file of an earlier version lacks: added on first read, never a reason to reset anything.
ADDED_CREDENTIAL_KEYS = ("redis_password",)


class CorruptCredentials(ValueError):
    """credentials.json is there but unusable; the message says why."""


class CredentialsLost(UserError):
    """The cluster exists but its password is gone: `nox -s infra` resets it."""


class CredentialsFile:
    """The file and its checks; whether a lost file may be replaced is the caller's to decide."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, str]:
        """The stored credentials, checked like the lease file: `CorruptCredentials` says what is wrong."""
        try:
            raw = self.path.read_bytes()
        except IsADirectoryError:
            raise CorruptCredentials("a directory, not a file") from None
        except OSError as error:
            if error.errno == errno.ENOENT:
                raise
            raise UserError(f"cannot read {self.path} ({error.strerror}); fix its permissions.") from None
        try:
            stored = json.loads(raw)
        except json.JSONDecodeError as error:
            raise CorruptCredentials(f"not JSON: {error.msg}") from None
        except UnicodeDecodeError:
            raise CorruptCredentials("not UTF-8 text") from None
        if not isinstance(stored, dict):
            raise CorruptCredentials("not a JSON object")
        for key in CREDENTIAL_KEYS:
            value = stored.get(key)
            if key in ADDED_CREDENTIAL_KEYS and key not in stored:
                continue
            if not isinstance(value, str) or not value:
                raise CorruptCredentials(f"{key} is missing or not a string")
        credentials = {key: stored[key] for key in CREDENTIAL_KEYS if key in stored}
        if missing := [key for key in ADDED_CREDENTIAL_KEYS if key not in credentials]:
            credentials |= {key: secrets.token_urlsafe(18) for key in missing}
            self.write(credentials)
        return credentials

    def problem(self) -> str | None:
        """Why the stored credentials cannot be used (missing, or corrupt and how); None when they can."""
        try:
            self.read()
        except FileNotFoundError:
            return "missing"
        except CorruptCredentials as error:
            return str(error)
        return None

    def new(self) -> dict[str, str]:
        credentials = {key: secrets.token_urlsafe(18) for key in CREDENTIAL_KEYS}
        self.write(credentials)
        return credentials

    def write(self, credentials: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole, readable by its owner only, and never through a link.
        temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        temporary.unlink(missing_ok=True)
        create_exclusively(temporary, json.dumps(credentials).encode(), 0o600)
        temporary.replace(self.path)
