"""A newcomer's first hour, walked on a fresh clone: what README and docs say, against what the tool prints.

Issue 24 quoted each place where the two disagreed; each is a check here, in the order a person
meets them reading README, index, development, environments and configuration. The commands run
are the cheap ones the docs show (`nox -l`, `-- --help`, the env-key check). `dev` itself — its
services block, its last line, the backend's `GET /` and Ctrl+C — and `boot -- dry-run` are
walked by the journeys (tests/test_journeys.py), which run the app; this file checks the docs'
side of the same facts, so a docs edit re-runs only it (docs_check) and an app edit only them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from noxlib.names.namespace import get_dev_bucket, get_s3_bucket
from noxlib.sessions import docs as docs_session
from noxlib.smoke import cli as smoke
from tests.runs import ENVDIR, REPO, fresh_clone, nox_env

# It reads README and docs: docs_check runs it, so a docs edit re-runs it. What it runs in the
# clone is the suite's own (`nox -l`, `--help`, the env-key script); `dev` and `boot` themselves
# are walked by the journeys (tests/test_journeys.py), which the docs' side here is checked against.
pytestmark = [pytest.mark.slow, pytest.mark.docs]
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh clone of this checkout's commit: only what is committed, as a new team member gets it."""
    return fresh_clone(tmp_path_factory.mktemp("first-hour") / "finance-report")


def nox_in(clone: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`nox ARGS` in the clone, its venvs shared with the suite's other runs (`-R`: reused as they are)."""
    return subprocess.run(
        [sys.executable, "-m", "nox", "--envdir", str(ENVDIR), "-R", *args],
        cwd=clone, env=nox_env(**env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=900, check=False,
    )  # fmt: skip


def read(clone: Path, name: str) -> str:
    return (clone / name).read_text(encoding="utf-8")


def flat(text: str) -> str:
    """Prose with its line breaks and table pipes as single spaces, so a quoted phrase matches across lines."""
    return re.sub(r"\s+", " ", text)


def test_readme_then_the_docs_say_what_the_tool_prints(clone: Path) -> None:
    readme, index = flat(read(clone, "README.md")), flat(read(clone, "docs/index.md"))
    development, environments = flat(read(clone, "docs/development.md")), flat(read(clone, "docs/environments.md"))
    configuration = flat(read(clone, "docs/configuration.md"))

    # README, Quick start: `dev` ends with the URL to open and says what the first run costs.
    assert "ends with the URL to open" in readme
    assert "runs `npm ci` in `apps/frontend` (about 30 s)" in readme

    # README, Sessions: a shard session's names as `nox -l` prints them, and what `-s test-3.12` runs.
    listed = nox_in(clone, "-l")
    assert listed.returncode == 0, listed.stdout
    assert "test-3.12(shard='1/4')" in listed.stdout
    assert "`nox -l` lists `test-3.12(shard='1/4')`" in readme
    assert "`nox -s test-3.12` all four" in readme
    # development.md: non-default sessions are marked `-` in `nox -l`, as it prints them.
    assert re.search(r"^- docs( \[[a-z,]+\])? -> ", listed.stdout, re.MULTILINE), listed.stdout
    assert re.search(r"^\* lint( \[[a-z,]+\])? -> ", listed.stdout, re.MULTILINE), listed.stdout
    assert "the others are marked `-`" in development

    # README, Services backends: the bucket names the tool creates.
    assert get_s3_bucket("x").startswith("statements-test-")
    assert get_dev_bucket("x").startswith("statements-dev-")
    assert "(`statements-test-<namespace>`;" in readme
    assert "`statements-dev-<namespace>`" in readme
    assert "statements-<namespace>" not in readme

    # index.md and environments.md: dev's services are the kept, shared ones (no "of its own").
    assert "services of its own" not in index.split("## Where to go next")[0]
    assert "on the kept local services" in index
    assert "Kept services, shared by every checkout" in environments

    # configuration.md and .env.example say the same about who reads `.env`; the backend reads none.
    assert "read by **`docker compose` only**" in configuration
    assert "it is read by `docker compose` only" in flat(read(clone, ".env.example"))
    assert "env_file=None" in read(clone, "apps/backend/src/config.py")

    # The Vault template: no submodule exists, and neither the docs nor the tool call it one.
    assert not (clone / ".gitmodules").exists()
    for page in (environments, configuration, development):
        assert "submodule `repo/`" not in page
        assert "infra submodule" not in page
    # The generated pages' sources: the placeholders the hooks fill are where the docs promise.
    assert "<!-- nox-variables -->" in read(clone, "docs/configuration.md")
    assert "<!-- boot-gates -->" in read(clone, "docs/development.md")

    # `docs`' own error names `-- serve`, which development.md documents.
    with pytest.raises(Exception, match=r"nox -s docs -- serve") as refused:
        docs_session.choose_mode(["sreve"], interactive=False)
    assert "\n" not in str(refused.value)
    assert "`nox -s docs -- serve`" in development


def test_the_env_key_check_says_where_the_vault_template_comes_from(clone: Path) -> None:
    """`env_keys` said "the infra submodule is not checked out" with nothing to check out."""
    result = subprocess.run(
        [sys.executable, str(clone / "scripts" / "check_env_keys.py"), "--root", str(clone),
         "--settings-json", str(REPO / "tests" / "data" / "env_keys" / "settings.json")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    line = next(line for line in result.stdout.splitlines() if "vault-template" in line)
    assert "SKIP" in line, result.stdout
    assert "no clone of the separate infra repository at repo/" in result.stdout
    assert "submodule" not in result.stdout


def test_smoke_help_names_the_session_and_claims_only_what_it_does() -> None:
    """It said `usage: python3 -m noxlib.smoke` and "default $BASE_URL", which the session never reads."""
    printed = smoke.parser(smoke.SESSION_PROG).format_help()
    assert printed.startswith("usage: nox -s smoke --")
    assert "BASE_URL" not in printed.replace("--base-url BASE_URL", "")
    assert "starts its own stack" in printed
    assert "$BASE_URL" in smoke.parser().format_help(), "the script's command line does read BASE_URL"


def test_the_docs_say_what_boot_prints(clone: Path) -> None:
    """The namespace rules list `_boot`; the docs say `boot` prints `ports …` (the boot journey in
    tests/test_journeys.py proves the tool prints both, and the checks development.md's table lists)."""
    development = flat(read(clone, "docs/development.md"))
    assert "`nox -s boot` adds `_boot`" in development
    assert "`nox -s test` and `nox -s boot` print them (`ports …`)" in development


def test_dev_help_prints_usage_and_starts_nothing(clone: Path, tmp_path: Path) -> None:
    """`dev -- --help` started the app and ran 13 minutes until interrupted."""
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    result = nox_in(clone, "-s", "dev", "--", "--help", FR_CACHE_DIR=str(state))
    assert result.returncode == 0, result.stdout
    assert "usage: nox -s dev -- [-h] [--frontend]" in result.stdout
    assert list(state.iterdir()) == []
