"""What `dev` and `infra` print to reach the services: a psql command that works as pasted, no password anywhere."""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess

import pytest

from noxlib.services import ServiceUrls
from noxlib.sessions.service_access import psql_command, service_lines, write_pgpass

URLS = ServiceUrls(
    postgres_host="127.0.0.1", postgres_port=5432, postgres_user="postgres",
    postgres_password="pa:ss\\word-that-is-long", redis_url="redis://:redis-secret-value@127.0.0.1:6379/0",
    s3_endpoint="http://127.0.0.1:9000", s3_access_key="minioadmin", s3_secret_key="s3-secret-value-long",
)  # fmt: skip


def test_the_password_file_is_private_and_escapes_what_libpq_would_misread(tmp_path):
    path = write_pgpass(URLS, tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "127.0.0.1:5432:*:postgres:pa\\:ss\\\\word-that-is-long\n"
    # Written again (every dev run): replaced whole, still private, nothing left beside it.
    write_pgpass(URLS, tmp_path)
    assert [entry.name for entry in tmp_path.iterdir()] == ["pgpass"]


def test_no_line_carries_a_password(tmp_path):
    lines = service_lines(
        URLS, database="finance_report_dev_x", bucket="statements-dev-x", redis_prefix="dev.x", directory=tmp_path
    )
    printed = "\n".join(lines)
    for secret in ("pa:ss", "word-that-is-long", "redis-secret-value", "s3-secret-value-long"):
        assert secret not in printed
    labels = [line.split()[0] for line in lines]
    assert labels == ["postgres", "psql", "redis", "s3"]
    assert "finance_report_dev_x" in lines[0]
    assert "statements-dev-x" in lines[3]
    assert "dev.x:" in lines[2]
    assert f"PGPASSFILE={tmp_path / 'pgpass'} " in lines[1]


def test_the_printed_psql_command_connects_as_pasted(services, tmp_path):
    """Pasted into a shell, the command reaches the database; the password comes from the file alone."""
    if shutil.which("psql") is None:
        pytest.skip("psql is not on PATH")
    urls = services.urls
    command = psql_command(urls, urls.admin_database, write_pgpass(urls, tmp_path))
    assert urls.postgres_password not in command
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    result = subprocess.run(
        [shutil.which("bash") or "/bin/bash", "-c", f"{command} -w -At -c 'select 42'"],
        env=environment, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (result.returncode, result.stdout.strip()) == (0, "42"), result.stderr
    assert shlex.split(command)[0].startswith("PGPASSFILE=")
