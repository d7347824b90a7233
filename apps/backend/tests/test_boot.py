"""Boot gates: each mode's checks and exit codes, against the real services and dead ones."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from src import boot
from src.health import CheckResult, format_age
from src.migrations import MigrationsNotAtHead, describe_migration_state
from tests.contract import TestContract
from tests.dead_endpoints import closed_port
from tests.served_app import START_DEADLINE_SECONDS

pytestmark = pytest.mark.integration
BACKEND_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture
def boot_env(contract: TestContract, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The worker's services in the environment, and a fresh Vault secrets file."""
    secrets = tmp_path / "vault.env"
    secrets.write_text("SECRET_KEY=from-vault\n")
    for key, value in contract.environ(VAULT_SECRETS_FILE=str(secrets)).items():
        monkeypatch.setenv(key, value)
    return monkeypatch, secrets


def run_boot(mode: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, tuple[str, str]]]:
    """Exit code and {check: (status, message)} parsed from the printed table."""
    code = boot.main(["--mode", mode])
    rows = {}
    for line in capsys.readouterr().out.splitlines()[1:-1]:
        name, status, rest = line.split(maxsplit=2)
        rows[name] = (status, rest.rsplit(maxsplit=1)[0])
    return code, rows


def statuses(rows: dict[str, tuple[str, str]]) -> dict[str, str]:
    return {name: status for name, (status, _) in rows.items()}


def test_dry_run_checks_config_and_app_only(boot_env, capsys) -> None:
    code, rows = run_boot("dry-run", capsys)
    assert code == 0
    assert statuses(rows) == {
        "config": "ok",
        "app": "ok",
        "database": "skipped",
        "migrations": "skipped",
        "redis": "skipped",
        "s3": "skipped",
        "vault_secrets": "skipped",
    }


def test_dry_run_fails_on_bad_config_and_skips_the_rest(boot_env, capsys) -> None:
    monkeypatch, _ = boot_env
    monkeypatch.setenv("DEBUG", "sometimes")
    code, rows = run_boot("dry-run", capsys)
    assert code == 1
    assert rows["config"][0] == "error"
    assert rows["config"][1].startswith("invalid configuration: DEBUG")
    assert rows["app"] == ("skipped", "config failed")


def test_critical_passes_on_a_migrated_database(boot_env, capsys) -> None:
    code, rows = run_boot("critical", capsys)
    assert code == 0
    assert rows["database"][0] == "ok"
    assert rows["migrations"][0] == "ok"
    assert rows["migrations"][1].startswith("at head")
    assert rows["redis"] == ("skipped", "not part of --mode critical")


def test_critical_fails_when_the_database_is_down(boot_env, capsys) -> None:
    monkeypatch, _ = boot_env
    monkeypatch.setenv("DATABASE_URL", f"postgresql+psycopg://x@127.0.0.1:{closed_port()}/x")
    code, rows = run_boot("critical", capsys)
    assert code == 1
    assert rows["database"][0] == "error"
    assert rows["migrations"] == ("skipped", "database failed")


def test_full_passes_with_fresh_secrets(boot_env, capsys) -> None:
    code, rows = run_boot("full", capsys)
    assert code == 0
    assert set(statuses(rows).values()) == {"ok"}
    # Written just before the run: its age, whatever this machine's speed, is under the 60 min limit.
    assert re.search(r" is \d+ (s|min) old$", rows["vault_secrets"][1]), rows["vault_secrets"][1]


def test_full_warns_on_missing_secrets_but_passes(boot_env, capsys) -> None:
    _, secrets = boot_env
    secrets.unlink()
    code, rows = run_boot("full", capsys)
    assert code == 0
    assert rows["vault_secrets"][0] == "warning"
    assert "not found" in rows["vault_secrets"][1]


def test_full_warns_on_stale_secrets_but_passes(boot_env, capsys) -> None:
    _, secrets = boot_env
    ninety_minutes_ago = time.time() - 90 * 60
    os.utime(secrets, (ninety_minutes_ago, ninety_minutes_ago))
    code, rows = run_boot("full", capsys)
    assert code == 0
    assert rows["vault_secrets"][0] == "warning"
    # The age is read when the check runs, some time after the file was dated: at least 90 min.
    shown = re.search(r" is (\d+) min old \(stale after 60 min\)$", rows["vault_secrets"][1])
    assert shown, rows["vault_secrets"][1]
    assert int(shown[1]) >= 90


def test_full_fails_when_redis_is_down(boot_env, capsys) -> None:
    monkeypatch, _ = boot_env
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{closed_port()}/0")
    code, rows = run_boot("full", capsys)
    assert code == 1
    assert rows["redis"][0] == "error"
    assert rows["s3"][0] == "ok"


def test_full_fails_when_the_bucket_is_missing(boot_env, capsys) -> None:
    monkeypatch, _ = boot_env
    monkeypatch.setenv("S3_BUCKET", "bucket-that-is-not-there")
    code, rows = run_boot("full", capsys)
    assert code == 1
    assert "does not exist" in rows["s3"][1]


def test_interrupt_exits_130(boot_env, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    async def interrupted(self: boot.BootRun) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(boot.BootRun, "check_database", interrupted)
    assert boot.main(["--mode", "critical"]) == 130
    assert capsys.readouterr().err == "boot checks interrupted\n"


def test_unexpected_failure_in_a_local_check_is_an_error_row(boot_env, capsys, monkeypatch) -> None:
    async def broken(self: boot.BootRun) -> str:
        raise ImportError("no module named nothing")

    monkeypatch.setattr(boot.BootRun, "check_app", broken)
    code, rows = run_boot("dry-run", capsys)
    assert code == 1
    assert rows["app"] == ("error", "ImportError: no module named nothing")


def test_table_columns_line_up() -> None:
    table = boot.render_table([CheckResult("config", "ok", "loaded", 1.25), CheckResult("s3", "error", "down", 2000.0)])
    header, first, second = table.splitlines()
    assert header.split() == ["check", "status", "message", "ms"]
    assert first.index("ok") == second.index("error") == header.index("status")
    assert first.endswith("1.2") or first.endswith("1.3")
    assert second.endswith("2000.0")


@pytest.mark.parametrize(("seconds", "shown"), [(5, "5 s"), (600, "10 min"), (7200, "2.0 h")])
def test_format_age(seconds: float, shown: str) -> None:
    assert format_age(seconds) == shown


async def test_schema_behind_head_is_reported_with_the_fix(db_session: AsyncSession) -> None:
    connection = await db_session.connection()
    assert (await describe_migration_state(connection)).startswith("at head")
    await connection.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    with pytest.raises(MigrationsNotAtHead, match=r"database at older, code expects .*alembic upgrade"):
        await describe_migration_state(connection)
    await connection.execute(text("DELETE FROM alembic_version"))
    with pytest.raises(MigrationsNotAtHead, match="none \\(empty database\\)"):
        await describe_migration_state(connection)


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("mode", "overrides", "expected_code"),
    # Each process costs seconds of imports; the in-process tests above cover the other cases.
    [
        ("critical", {"DATABASE_URL": "postgresql+psycopg://x@127.0.0.1:{port}/x"}, 1),
        ("full", {"VAULT_SECRETS_FILE": "/nonexistent/.env"}, 0),
    ],
)
def test_entry_point_exit_codes(
    contract: TestContract, mode: str, overrides: dict[str, str], expected_code: int
) -> None:
    env = contract.environ(**{key: value.format(port=closed_port()) for key, value in overrides.items()})
    result = subprocess.run(
        [sys.executable, "-m", "src.boot", "--mode", mode],
        cwd=BACKEND_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=START_DEADLINE_SECONDS,
    )
    assert result.returncode == expected_code, result.stdout + result.stderr
    assert result.stdout.splitlines()[0].split() == ["check", "status", "message", "ms"]
    assert "Traceback" not in result.stderr


def test_unknown_mode_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        boot.main(["--mode", "everything"])
    assert raised.value.code == 2
    assert "invalid choice: 'everything'" in capsys.readouterr().err


def test_each_mode_runs_a_prefix_of_the_documented_checks_and_each_check_exists() -> None:
    """The docs' boot-gate table is generated from CHECKS and MODE_CHECKS: they must be what runs."""
    assert boot.MODE_CHECKS["full"] == boot.CHECK_ORDER
    for checks in boot.MODE_CHECKS.values():
        assert checks == boot.CHECK_ORDER[: len(checks)]
    for name in boot.CHECK_ORDER:
        assert callable(getattr(boot.BootRun, f"check_{name}", None)), name
        assert boot.CHECKS[name], name
