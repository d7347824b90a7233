"""Names of everything a run owns, derived from one namespace.

Every database, bucket and container suffix of a run is derived here so that two branches,
two worktrees of one branch, or two shards of one CI job never share a name. PostgreSQL cuts
identifiers at 63 bytes without an error and S3 rejects bucket names outside its rules, so the
limits are enforced here rather than discovered as collisions later.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from noxlib.core import paths
from noxlib.core.errors import UserError

# Each kind of database has its own prefix, and none of them is a prefix of another, so a name
# of one kind can never be a name of another whatever the namespace.
DB_PREFIX = "finance_report_test_"
TEMPLATE_PREFIX = "finance_report_template_"
DEV_DB_PREFIX = "finance_report_dev_"
BUCKET_PREFIX = "statements-"
TEST_BUCKET_KIND = "test-"
DEV_BUCKET_KIND = "dev-"
# A sanitized namespace never contains "__": it marks a worker clone or a shortening hash.
KIND_SEPARATOR = "__"
# PostgreSQL's NAMEDATALEN is 64: identifiers keep at most 63 bytes, longer ones are truncated.
PG_MAX_IDENTIFIER = 63
# The longest worker suffix a name must leave room for: "__gw999".
WORKER_SUFFIX_RESERVE = len(KIND_SEPARATOR + "gw999")
S3_MAX_BUCKET = 63
HASH_LENGTH = 8

_NON_WORD = re.compile(r"[^a-z0-9]+")
_WORKER_ID = re.compile(r"^gw([0-9]{1,3})$")
_NAMESPACE = re.compile(r"[a-z0-9]+(_[a-z0-9]+)*")


def short_hash(text: str, length: int = HASH_LENGTH) -> str:
    """A stable hex digest, used wherever a name must stay distinct after being shortened."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:length]


def sanitize_namespace(name: str) -> str:
    """Turn any branch-like string into `[a-z0-9_]`, or "" when nothing usable is left.

    ASCII punctuation becomes `_` (`feature/auth-v2` -> `feature_auth_v2`). Characters that
    cannot be spelt in ASCII are dropped, and then a short hash of the original is appended so
    that `café` and `cafè` do not end up as the same namespace.
    """
    lowered = name.lower()
    ascii_only = lowered.encode("ascii", "ignore").decode("ascii")
    cleaned = _NON_WORD.sub("_", ascii_only).strip("_")
    if not cleaned:
        return ""
    if ascii_only != lowered:
        cleaned = f"{cleaned}_{short_hash(name)}"
    return cleaned


def _fit(text: str, limit: int, separator: str) -> str:
    """Shorten `text` to `limit` characters, keeping it unique with a hash of the full text."""
    if len(text) <= limit:
        return text
    keep = limit - HASH_LENGTH - len(separator)
    return f"{text[:keep].rstrip(separator[0])}{separator}{short_hash(text)}"


def repo_path_hash(repo: Path | None = None) -> str:
    """Eight hex digits that tell two checkouts (worktrees) of the same branch apart."""
    path = (repo or Path.cwd()).resolve()
    return short_hash(str(path))


def _git_branch(repo: Path) -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--abbrev-ref", "HEAD"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    branch = result.stdout.strip()
    if result.returncode != 0 or not branch or branch == "HEAD":
        return None
    return branch


def get_namespace(repo: Path | None = None, environ: dict[str, str] | None = None) -> str:
    """The run's namespace: `BRANCH_NAME`, else git branch + checkout hash; `WORKSPACE_ID` is appended.

    An explicit `BRANCH_NAME` is a promise from the caller (CI sets it), so one that sanitizes to
    nothing is an error; a git branch is whatever the developer named it, so a branch made only
    of symbols falls back to a hash of itself instead of failing the run.
    """
    env = os.environ if environ is None else environ
    repo = (repo or Path.cwd()).resolve()
    branch_name = env.get("BRANCH_NAME", "").strip()
    if branch_name:
        namespace = sanitize_namespace(branch_name)
        if not namespace:
            raise UserError(
                f"BRANCH_NAME={branch_name!r} has no letters or digits to build a namespace from; "
                "set BRANCH_NAME to a name like 'feature-auth'."
            )
        workspace = sanitize_namespace(env.get("WORKSPACE_ID", "").strip())
        return f"{namespace}_{workspace}" if workspace else namespace

    workspace = sanitize_namespace(env.get("WORKSPACE_ID", "").strip())
    suffix = f"_{workspace}" if workspace else ""
    branch = _git_branch(repo)
    if branch:
        namespace = sanitize_namespace(branch) or f"branch_{short_hash(branch)}"
        return f"{namespace}_{repo_path_hash(repo)}{suffix}"

    print(
        "warning: no git branch found; using a namespace from the checkout path. Set BRANCH_NAME to choose one.",
        file=sys.stderr,
    )
    return f"default_{repo_path_hash(repo)}{suffix}"


def require_namespace(namespace: str) -> str:
    """`namespace` itself when `sanitize_namespace` could have produced it; else a ValueError.

    Every name below is disjoint from every name of another kind only because a namespace is
    `[a-z0-9]+` words joined by single `_`: no `__`, no `-`, no `.`. The separators that mark a
    worker clone (`__gwN`) or a shortened name (`__<hash>`) rely on that, so it is checked here
    instead of being assumed at each call site.
    """
    if not _NAMESPACE.fullmatch(namespace):
        raise ValueError(f"namespace must be words of [a-z0-9] joined by single '_', got {namespace!r}")
    return namespace


def get_test_db_name(namespace: str) -> str:
    """`finance_report_test_{ns}`, short enough that every worker suffix still fits in 63 bytes.

    A shortened name ends in `__<hash>`: a namespace never contains `__`, so no namespace's
    full name can equal another's shortened one.
    """
    limit = PG_MAX_IDENTIFIER - WORKER_SUFFIX_RESERVE - len(DB_PREFIX)
    return f"{DB_PREFIX}{_fit(require_namespace(namespace), limit, KIND_SEPARATOR)}"


def get_worker_db_name(namespace: str, worker_id: str) -> str:
    """The xdist worker's clone: the test database name plus `__gwN`.

    `__` never occurs in a test database name of any namespace and a shortening hash is hex
    (never `gw…`), so namespace `x_gw0`'s test database can never be namespace `x`'s first
    worker's. The app is handed the pattern (`worker_db_pattern`) rather than re-deriving it.
    """
    if worker_id in ("", "master"):
        return get_test_db_name(namespace)
    match = _WORKER_ID.match(worker_id)
    if not match:
        raise ValueError(f"xdist worker id must look like gw0..gw999, got {worker_id!r}")
    return f"{get_test_db_name(namespace)}{KIND_SEPARATOR}{worker_id}"


def worker_db_pattern(namespace: str) -> str:
    """The worker database name with `{worker}` where `PYTEST_XDIST_WORKER` goes, for the apps."""
    return f"{get_test_db_name(namespace)}{KIND_SEPARATOR}{{worker}}"


def _bucket_body(namespace: str) -> str:
    # A namespace is [a-z0-9_] with single underscores, so this is [a-z0-9-] with single hyphens.
    return require_namespace(namespace).replace("_", "-")


def get_s3_bucket(namespace: str) -> str:
    """The test run's bucket, `statements-test-{ns}`, under the S3 bucket rules.

    3-63 characters of [a-z0-9-], starting and ending with a letter or digit, never `--` (the
    reserved `xn--`/`--x-s3` forms), never shaped like an IP address (it starts with a letter).
    The `test-` kind marker keeps it apart from `statements-dev-{ns}`: namespace `dev_x`'s test
    bucket used to be namespace `x`'s dev bucket, and a test run deletes its bucket.
    """
    return f"{BUCKET_PREFIX}{_fit(TEST_BUCKET_KIND + _bucket_body(namespace), S3_MAX_BUCKET - len(BUCKET_PREFIX), '-')}"


def get_env_suffix(namespace: str) -> str:
    """Suffix for container and deployment names (`-{ns}`)."""
    return f"-{namespace}"


def get_dev_db_name(namespace: str) -> str:
    """The database `nox -s dev` runs the app on: per namespace, so two branches never share a schema.

    Shortened exactly as before the kind markers existed, so a developer's data keeps its name.
    """
    return f"{DEV_DB_PREFIX}{_fit(require_namespace(namespace), PG_MAX_IDENTIFIER - len(DEV_DB_PREFIX), '_')}"


def get_dev_bucket(namespace: str) -> str:
    """The dev app's bucket, `statements-dev-{ns}`: kept between runs, never a test bucket."""
    return f"{BUCKET_PREFIX}{_fit(DEV_BUCKET_KIND + _bucket_body(namespace), S3_MAX_BUCKET - len(BUCKET_PREFIX), '-')}"


def get_template_db_name(migrations_hash: str) -> str:
    """Template databases are shared by every namespace whose migrations hash the same."""
    if not re.fullmatch(r"[0-9a-f]{12,}", migrations_hash):
        raise ValueError(f"a template is named by a hex migrations hash, got {migrations_hash!r}")
    return f"{TEMPLATE_PREFIX}{migrations_hash[:12]}"


def state_dir_id() -> str:
    """Which state directory on which machine: recorded on every database a run creates, so a
    `down` elsewhere (another clone, user or CI runner on a shared server) can tell the database
    is not its own to judge."""
    return short_hash(f"{socket.gethostname()}:{paths.state_dir()}", 12)
