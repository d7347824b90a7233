"""Keeping passwords out of what the suite prints: one place, used by every line it logs.

Masking by plain substring replacement is wrong both ways. It misses a password that was
never registered as a secret (Redis's, in `redis://:PASS@host`), and it mangles everything
when the password is a common word: the PostgreSQL default `postgres` turned
`postgres   postgresql://postgres:postgres@host/postgres` into `***   ***ql://***:***@…/***`.
So every URL is parsed and only its password component is replaced where it stands; a known
secret is replaced elsewhere only where it stands as a whole value (not inside a word), and
only when it is long enough not to be an ordinary word.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from urllib.parse import SplitResult, urlsplit

MASK = "***"
# Shorter secrets are ordinary words (`postgres`, `minioadmin`): replacing them wherever they
# occur would hit labels, schemes and database names. They are still masked inside URLs.
MIN_FREE_SECRET_LENGTH = 12
# scheme://netloc… up to whitespace or a closing quote/bracket; the netloc holds the password.
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>`]+")


def redact_url(url: str) -> str:
    """`url` with its password (if any) replaced by `***`; user, host, port and path kept."""
    try:
        parts = urlsplit(url)
        has_password = parts.password is not None
    except ValueError:
        # Not parseable as a URL (a bad port, a bracket): hide everything after the scheme's user.
        return re.sub(r"(://[^/@\s]*?:)[^/@\s]*@", rf"\g<1>{MASK}@", url)
    if not has_password:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return SplitResult(parts.scheme, f"{user}:{MASK}@{hostport}", parts.path, parts.query, parts.fragment).geturl()


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every URL's password masked in place and long known secrets masked as whole values."""
    text = _URL.sub(lambda match: redact_url(match.group(0)), text)
    for secret in sorted({value for value in secrets if len(value) >= MIN_FREE_SECRET_LENGTH}, key=len, reverse=True):
        # Only where the secret stands alone: not as part of a longer word or value.
        text = re.sub(rf"(?<![\w-]){re.escape(secret)}(?![\w-])", MASK, text)
    return text


def redacting(log: Callable[[str], None], secrets: Iterable[str] = ()) -> Callable[[str], None]:
    """A `log` that redacts every line before it reaches the terminal."""
    known = list(secrets)

    def redacted_log(line: str) -> None:
        log(redact(line, known))

    return redacted_log
