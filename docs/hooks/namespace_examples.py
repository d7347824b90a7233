"""MkDocs hook: the namespace worked examples and the run contract, computed by noxlib itself.

Hand-written examples of hashed, truncated names are wrong the day the rules change; these are
computed on every build by the functions the test lifecycle calls, so the page shows exactly
what a run with those inputs would create. The environment contract table is the environment
`RunContract.to_env()` writes for an example test run: a key added to the contract without a
line of meaning here fails the build (the hand-kept table once lacked REDIS_KEY_PREFIX).
"""

from __future__ import annotations

import sys
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

REPO_ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = "<!-- namespace-examples -->"
CONTRACT_PLACEHOLDER = "<!-- run-contract -->"

# mkdocs loads hooks by file path, so the repository root is not importable by default.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from noxlib.names.namespace import (  # noqa: E402 - needs the path above
    get_dev_bucket,
    get_namespace,
    get_s3_bucket,
    get_test_db_name,
    get_worker_db_name,
    repo_path_hash,
    sanitize_namespace,
)
from noxlib.names.run_contract import RunContract  # noqa: E402
from noxlib.names.service_urls import ServiceUrls  # noqa: E402

# What each key of the contract means to the app that reads it; the value column is computed.
MEANINGS = {
    "DATABASE_URL": "the run's database: a clone of the migrated template, which exists before pytest starts",
    "TEST_DATABASE_WORKER_PATTERN": "xdist worker *N*'s clone: `{worker}` stands for `PYTEST_XDIST_WORKER`",
    "TEST_NAMESPACE": "the namespace every name of the run is derived from",
    "REDIS_URL": "the run's Redis",
    "REDIS_KEY_PREFIX": "every key the run writes starts with it (`test.` or `dev.` and the namespace)",
    "S3_ENDPOINT": "the run's S3",
    "S3_ACCESS_KEY": "the S3 credentials",
    "S3_SECRET_KEY": "the S3 credentials (never printed)",
    "S3_REGION": "the S3 region",
    "S3_BUCKET": "the run's bucket, created before the tests and removed after",
}
# Placeholders, not credentials: the table shows where each value goes.
EXAMPLE_URLS = ServiceUrls(
    postgres_host="127.0.0.1",
    postgres_port=5432,
    postgres_user="USER",
    postgres_password="PASSWORD",  # noqa: S106
    redis_url="redis://:PASSWORD@127.0.0.1:6379/0",
    s3_endpoint="http://127.0.0.1:9000",
    s3_access_key="ACCESS_KEY",
    s3_secret_key="SECRET_KEY",  # noqa: S106
)

# (situation, environment the run sees, git branch and checkout when no BRANCH_NAME is set)
EXAMPLES: list[tuple[str, dict[str, str], tuple[str, str] | None]] = [
    (
        "A developer on `main` in `/home/alice/finance_report`",
        {},
        ("main", "/home/alice/finance_report"),
    ),
    (
        "The same branch in a second worktree, `/home/alice/fr-review`",
        {},
        ("main", "/home/alice/fr-review"),
    ),
    (
        "A CI job of a pull request from `feature/auth-v2`",
        {"BRANCH_NAME": "feature/auth-v2", "WORKSPACE_ID": "9876543210-3"},
        None,
    ),
    (
        "A second local run of one checkout at the same time",
        {"BRANCH_NAME": "feature/auth-v2", "WORKSPACE_ID": "2"},
        None,
    ),
    ("A branch with non-ASCII letters", {"BRANCH_NAME": "fix/café-totals"}, None),
    # These two once collided with another namespace's worker database and dev bucket.
    ("A branch named like a worker", {"BRANCH_NAME": "feature-auth-v2-gw0"}, None),
    ("A branch named like a dev namespace", {"BRANCH_NAME": "dev-feature-auth-v2"}, None),
    (
        "A very long branch name",
        {"BRANCH_NAME": "feature/reconcile-multi-currency-statements-with-fx-rates-per-day"},
        None,
    ),
]


def _namespace(environment: dict[str, str], checkout: tuple[str, str] | None) -> str:
    """The namespace noxlib derives: from the env when set, else branch + checkout hash."""
    if checkout is None:
        return get_namespace(REPO_ROOT, environment)
    # get_namespace asks git for the branch of a real checkout; these checkouts are examples,
    # so the branch is given and the same rule (sanitized branch + path hash) is applied.
    branch, path = checkout
    return f"{sanitize_namespace(branch)}_{repo_path_hash(Path(path))}"


def render_examples() -> str:
    """The worked-examples table: inputs, namespace, databases and bucket."""
    lines = [
        "| Situation | Inputs | Namespace | Test database | First worker's database | Test bucket | Dev bucket |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for situation, environment, checkout in EXAMPLES:
        namespace = _namespace(environment, checkout)
        inputs = (
            "<br>".join(f"`{key}={value}`" for key, value in environment.items())
            if environment
            else f"git branch `{checkout[0]}`"
            if checkout
            else ""
        )
        lines.append(
            f"| {situation} | {inputs} | `{namespace}` | `{get_test_db_name(namespace)}` "
            f"| `{get_worker_db_name(namespace, 'gw0')}` | `{get_s3_bucket(namespace)}` "
            f"| `{get_dev_bucket(namespace)}` |"
        )
    return "\n".join(lines)


def render_contract(namespace: str = "feature_auth") -> str:
    """The environment a test run of `namespace` hands the backend, key by key."""
    environment = RunContract.for_run("test", EXAMPLE_URLS, namespace).to_env()
    unexplained = sorted(set(environment) - set(MEANINGS))
    if unexplained or set(MEANINGS) - set(environment):
        raise PluginError(f"run contract: MEANINGS in {__file__} and RunContract.to_env() disagree: {unexplained}")
    lines = ["| Variable | Example (namespace `feature_auth`) | What it is |", "| --- | --- | --- |"]
    lines += [f"| `{key}` | `{value}` | {MEANINGS[key]} |" for key, value in environment.items()]
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Replace the placeholder with the computed examples."""
    if PLACEHOLDER in markdown:
        markdown = markdown.replace(PLACEHOLDER, render_examples())
    if CONTRACT_PLACEHOLDER in markdown:
        markdown = markdown.replace(CONTRACT_PLACEHOLDER, render_contract())
    return markdown
