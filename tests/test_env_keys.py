"""The env-key contract: a consistent fixture repo passes, and each kind of drift fails its rule.

Every test copies tests/data/env_keys/repo into a tmp dir, drifts one file the way a real
change would, and asserts on the report a person reads: which rule failed and which key must
go into which file.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from noxlib import env_keys

DATA = Path(__file__).parent / "data" / "env_keys"
SETTINGS_JSON = DATA / "settings.json"
CTMPL = Path("repo/finance_report/finance_report/10.app/secrets.ctmpl")
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_env_keys.py"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A private copy of the consistent fixture repository."""
    root = tmp_path / "repo"
    shutil.copytree(DATA / "repo", root)
    return root


def run(root: Path, capsys: pytest.CaptureFixture[str], *extra: str, settings: Path = SETTINGS_JSON) -> tuple[int, str]:
    """Run the checker in-process; return its exit code and everything it printed."""
    code = env_keys.main(["--root", str(root), "--settings-json", str(settings), *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def rule_line(output: str, rule: str) -> str:
    """The status line of one rule, e.g. `[FAIL] vault-template: ...`."""
    return next(line for line in output.splitlines() if f"] {rule}:" in line)


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def remove_line(path: Path, startswith: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    kept = [line for line in lines if not line.lstrip().startswith(startswith)]
    assert len(kept) == len(lines) - 1, f"expected exactly one {startswith!r} line in {path}"
    path.write_text("".join(kept))


# --- the consistent repository passes -----------------------------------------------------------


def test_consistent_fixture_passes_every_rule(repo, capsys):
    code, output = run(repo, capsys)
    assert code == 0, output
    for rule in ("vault-template", "settings-defaults", "settings-in-env-example"):
        assert rule_line(output, rule).startswith("[PASS]")
    assert rule_line(output, "frontend-public-keys").startswith("[PASS]")
    assert "warning:" not in output
    assert output.strip().splitlines()[-1].startswith("env_keys: OK")


def test_reads_mentioned_in_comments_are_not_reads(repo, capsys):
    """api.ts names NEXT_PUBLIC_NAME and NEXT_PUBLIC_LEGACY_API only in comments."""
    code, output = run(repo, capsys, "--fix")
    assert code == 0, output
    assert "NEXT_PUBLIC_NAME" not in output
    assert "NEXT_PUBLIC_LEGACY_API" not in output


def test_keys_read_by_dependencies_and_build_output_are_not_the_apps(repo, capsys):
    for skipped in ("node_modules/some-lib/index.js", ".next/server/page.js"):
        path = repo / "apps/frontend" / skipped
        path.parent.mkdir(parents=True)
        path.write_text("module.exports = process.env.NEXT_PUBLIC_VENDOR_TELEMETRY;\n")
    code, output = run(repo, capsys)
    assert code == 0, output
    assert "NEXT_PUBLIC_VENDOR_TELEMETRY" not in output


# --- rule: vault template -----------------------------------------------------------------------


def test_absent_template_is_reported_as_skipped_with_the_reason(repo, capsys):
    shutil.rmtree(repo / "repo")
    code, output = run(repo, capsys)
    assert code == 0, output
    line = rule_line(output, "vault-template")
    assert line.startswith("[SKIPPED]")
    assert "not found (no clone of the separate infra repository at repo/)" in output
    assert "1 skipped (vault-template)" in output


def test_template_key_unknown_to_settings_fails_naming_key_and_file(repo, capsys):
    append(
        repo / CTMPL,
        'STRIPE_API_KEY="{{ with secret "secret/data/stripe" }}{{ .Data.data.key }}{{ end }}"\n',
    )
    code, output = run(repo, capsys)
    assert code == 1
    assert rule_line(output, "vault-template").startswith("[FAIL]")
    assert "missing STRIPE_API_KEY -> add to apps/backend/src/config.py" in output
    assert f"rendered by {CTMPL}:13" in output


def test_template_inside_a_block_is_parsed_too(repo, capsys):
    block = (
        '{{ with secret "secret/data/finance_report/prod/mail" }}\nSMTP_PASSWORD={{ .Data.data.password }}\n{{ end }}\n'
    )
    append(repo / CTMPL, block)
    code, output = run(repo, capsys)
    assert code == 1
    assert "missing SMTP_PASSWORD -> add to apps/backend/src/config.py" in output


def test_explicit_ctmpl_path_is_checked(repo, tmp_path, capsys):
    shutil.rmtree(repo / "repo")
    template = tmp_path / "elsewhere.ctmpl"
    template.write_text(
        '{{ with secret "secret/data/app" }}\n'
        "DATABASE_URL={{ .Data.data.url }}\n"
        "GHOST_KEY={{ .Data.data.ghost }}\n"
        "{{ end }}\n"
    )
    code, output = run(repo, capsys, "--ctmpl", str(template))
    assert code == 1
    assert "missing GHOST_KEY" in output
    assert "DATABASE_URL" not in output.split("missing GHOST_KEY")[0].split("vault-template")[1]


def test_explicit_ctmpl_that_does_not_exist_fails_rather_than_skips(repo, tmp_path, capsys):
    code, output = run(repo, capsys, "--ctmpl", str(tmp_path / "typo.ctmpl"))
    assert code == 1
    assert rule_line(output, "vault-template").startswith("[FAIL]")
    assert "--ctmpl file not found" in output


def test_alias_choices_any_alias_satisfies_the_template(repo, capsys):
    append(repo / CTMPL, 'LLM_API_KEY={{ env "LLM_API_KEY" }}\n')
    code, output = run(repo, capsys)
    assert code == 0, output


# --- rule: every Settings env name in .env.example ----------------------------------------------


def test_settings_key_missing_from_env_example_fails_naming_key_and_file(repo, capsys):
    remove_line(repo / ".env.example", "REDIS_URL=")
    code, output = run(repo, capsys)
    assert code == 1
    assert rule_line(output, "settings-in-env-example").startswith("[FAIL]")
    assert "missing REDIS_URL -> add to .env.example  (read by Settings.redis_url)" in output


def test_field_with_aliases_is_satisfied_by_any_and_suggests_the_first(repo, capsys):
    remove_line(repo / ".env.example", "LLM_API_KEY=")
    code, output = run(repo, capsys)
    assert code == 1
    assert "missing OPENROUTER_API_KEY -> add to .env.example" in output
    append(repo / ".env.example", "OPENROUTER_API_KEY=\n")
    code, output = run(repo, capsys)
    assert code == 0, output


def test_settings_loaded_from_the_backend_subprocess(repo, capsys):
    """Without --settings-json the backend is asked: `python -m src.config --fields-json`."""
    fields = json.loads(SETTINGS_JSON.read_text())
    fields.append(
        {
            "field": "sentry_dsn",
            "env": ["SENTRY_DSN"],
            "type": "str",
            "default": "",
            "secret": False,
            "description": "Error reporting.",
        }
    )
    source = repo / "apps/backend/src"
    source.mkdir(parents=True)
    (source / "__init__.py").write_text("")
    (source / "config.py").write_text(
        textwrap.dedent(f"""\
            import json, sys
            if sys.argv[1:] == ["--fields-json"]:
                print(json.dumps({fields!r}))
            """)
    )
    code = env_keys.main(["--root", str(repo)])
    output = capsys.readouterr().out
    assert code == 1
    assert "missing SENTRY_DSN -> add to .env.example" in output


def test_backend_that_cannot_describe_settings_is_one_clear_line(repo, capsys):
    source = repo / "apps/backend/src"
    source.mkdir(parents=True)
    (source / "__init__.py").write_text("")
    (source / "config.py").write_text("raise ModuleNotFoundError(\"No module named 'pydantic_settings'\")\n")
    code = env_keys.main(["--root", str(repo)])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.count("\n") == 1
    assert "cannot load Settings" in captured.err
    assert "No module named 'pydantic_settings'" in captured.err
    assert "Traceback" not in captured.err


# --- rule: every field has a type and a default -------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"default": None, "required": True}, id="required-flag"),
        pytest.param({"default": "PydanticUndefined"}, id="sentinel-default"),
        pytest.param({"type": "Any"}, id="untyped"),
    ],
)
def test_field_without_default_or_type_fails_naming_the_field(repo, tmp_path, capsys, change):
    fields = json.loads(SETTINGS_JSON.read_text())
    redis = next(entry for entry in fields if entry["field"] == "redis_url")
    redis.update(change)
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps(fields))
    code, output = run(repo, capsys, settings=settings)
    assert code == 1
    assert rule_line(output, "settings-defaults").startswith("[FAIL]")
    assert "missing redis_url -> add to apps/backend/src/config.py" in output


def test_field_without_default_key_fails(repo, tmp_path, capsys):
    fields = json.loads(SETTINGS_JSON.read_text())
    del next(entry for entry in fields if entry["field"] == "s3_bucket")["default"]
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps(fields))
    code, output = run(repo, capsys, settings=settings)
    assert code == 1
    assert "Settings.s3_bucket has no default" in output
    assert "missing s3_bucket -> add to apps/backend/src/config.py" in output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"field": "x"}', "expected a JSON list"),
        ('[{"field": "x", "env": []}]', 'has no "env" list'),
    ],
)
def test_malformed_settings_json_is_one_clear_line(repo, tmp_path, capsys, content, message):
    settings = tmp_path / "settings.json"
    settings.write_text(content)
    code, output = run(repo, capsys, settings=settings)
    assert code == 1
    assert message in output
    assert "Traceback" not in output


# --- rule: frontend build-time keys -------------------------------------------------------------


def test_new_public_key_read_by_frontend_fails_in_all_three_places(repo, capsys):
    page = repo / "apps/frontend/src/app/page.tsx"
    page.write_text("export const dsn = process.env.NEXT_PUBLIC_SENTRY_DSN;\n")
    code, output = run(repo, capsys)
    assert code == 1
    assert rule_line(output, "frontend-public-keys").startswith("[FAIL]")
    where = "read at apps/frontend/src/app/page.tsx:1"
    assert f"missing NEXT_PUBLIC_SENTRY_DSN -> add to .env.example  ({where})" in output
    assert "missing NEXT_PUBLIC_SENTRY_DSN -> add to apps/frontend/Dockerfile" in output
    assert "missing NEXT_PUBLIC_SENTRY_DSN -> add to docker-compose.yml (services.web.build.args)" in output


def test_public_key_missing_only_from_dockerfile_names_the_dockerfile(repo, capsys):
    dockerfile = repo / "apps/frontend/Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("ARG NEXT_PUBLIC_API_URL=http://localhost:8000\n", ""))
    code, output = run(repo, capsys)
    assert code == 1
    assert "missing NEXT_PUBLIC_API_URL -> add to apps/frontend/Dockerfile" in output
    assert "NEXT_PUBLIC_API_URL -> add to .env.example" not in output
    assert "NEXT_PUBLIC_APP_URL" not in output.split("[FAIL]")[1]


def test_public_key_missing_only_from_compose_names_compose(repo, capsys):
    remove_line(repo / "docker-compose.yml", "NEXT_PUBLIC_APP_URL:")
    code, output = run(repo, capsys)
    assert code == 1
    assert "missing NEXT_PUBLIC_APP_URL -> add to docker-compose.yml (services.web.build.args)" in output
    assert "-> add to apps/frontend/Dockerfile" not in output


def test_compose_args_as_a_list_are_understood(repo, capsys):
    compose = repo / "docker-compose.yml"
    compose.write_text(
        compose.read_text()
        .replace(
            "NEXT_PUBLIC_API_URL: ${NEXT_PUBLIC_API_URL:-http://localhost:8000}",
            "- NEXT_PUBLIC_API_URL",
        )
        .replace(
            "NEXT_PUBLIC_APP_URL: ${NEXT_PUBLIC_APP_URL:-http://localhost:3000}",
            "- NEXT_PUBLIC_APP_URL=http://localhost:3000",
        )
    )
    code, output = run(repo, capsys)
    assert code == 0, output


def test_public_key_missing_from_env_example_names_env_example(repo, capsys):
    remove_line(repo / ".env.example", "NEXT_PUBLIC_API_URL=")
    code, output = run(repo, capsys)
    assert code == 1
    where = "read at apps/frontend/src/lib/api.ts:6"
    assert f"missing NEXT_PUBLIC_API_URL -> add to .env.example  ({where})" in output


# --- warnings: unused .env.example keys ---------------------------------------------------------


def test_unused_env_example_key_is_a_warning_not_a_failure(repo, capsys):
    append(repo / ".env.example", "LEGACY_FEATURE_FLAG=1\n")
    code, output = run(repo, capsys)
    assert code == 0, output
    assert "warning: .env.example:23: LEGACY_FEATURE_FLAG is not read by Settings" in output
    assert "POSTGRES_PASSWORD" not in output, "keys compose interpolates are used"
    assert "BACKEND_URL" not in output, "keys the frontend's server code reads are used"


@pytest.mark.parametrize("read", ["env.BACKEND_URL", 'env["BACKEND_URL"]'])
def test_a_key_read_through_an_env_parameter_is_used(repo, capsys, read):
    """As apps/frontend/lib/backend-proxy.ts does: `env` defaults to process.env so tests pass their own."""
    (repo / "apps/frontend/src/app/api/health/route.ts").write_text(
        "export function backendUrl(env: Record<string, string | undefined> = process.env): string {\n"
        f'  return {read} ?? "http://127.0.0.1:8000";\n'
        "}\n"
        "export const vite = import.meta.env.LEGACY_FEATURE_FLAG;\n"
    )
    append(repo / ".env.example", "LEGACY_FEATURE_FLAG=1\n")
    code, output = run(repo, capsys)
    assert code == 0, output
    assert "BACKEND_URL" not in output
    assert "LEGACY_FEATURE_FLAG is not read" in output, "another object's `.env` is not process.env"


def test_server_side_frontend_keys_are_not_build_args(repo, capsys):
    """BACKEND_URL is read by a route handler: used, but not a NEXT_PUBLIC_* build arg."""
    code, output = run(repo, capsys, "--fix")
    assert code == 0, output
    assert "ARG BACKEND_URL" not in output


# --- malformed inputs are reported with file:line -----------------------------------------------


@pytest.mark.parametrize(
    ("corrupt", "expected"),
    [
        pytest.param(
            lambda b: b"\xef\xbb\xbf" + b,
            ".env.example:1: starts with a UTF-8 byte-order mark",
            id="bom",
        ),
        pytest.param(
            lambda b: b.replace(b"\n", b"\r\n"),
            ".env.example:1: has CRLF line endings (and 21 more lines)",
            id="crlf",
        ),
        pytest.param(
            lambda b: b + b"DEBUG=true\n",
            ".env.example:23: duplicate key DEBUG (first on line 4)",
            id="duplicate",
        ),
        pytest.param(
            lambda b: b + b"export EXTRA=1\n",
            ".env.example:23: cannot parse 'export EXTRA=1'; drop `export`",
            id="export",
        ),
        pytest.param(
            lambda b: b + b"EXTRA = 1\n",
            ".env.example:23: cannot parse 'EXTRA = 1'; no spaces around `=`",
            id="spaces",
        ),
        pytest.param(
            lambda b: b + b"just words\n",
            ".env.example:23: cannot parse 'just words'; expected KEY=value",
            id="bad-line",
        ),
        pytest.param(
            lambda b: b + b'EXTRA="unterminated\n',
            '.env.example:23: EXTRA: value opens a " quote',
            id="quote",
        ),
        pytest.param(lambda b: b + b"EXTRA=\xff\n", ".env.example:23: is not valid UTF-8", id="not-utf8"),
    ],
)
def test_malformed_env_example_is_reported_with_file_and_line(repo, capsys, corrupt, expected):
    path = repo / ".env.example"
    path.write_bytes(corrupt(path.read_bytes()))
    code, output = run(repo, capsys)
    assert code == 1
    assert expected in output
    assert "Traceback" not in output


def test_malformed_template_is_reported_with_file_and_line(repo, capsys):
    append(repo / CTMPL, "REDIS_URL={{ .Data.data.other }}\nnot a key line\n")
    code, output = run(repo, capsys)
    assert code == 1
    assert f"{CTMPL}:13: duplicate key REDIS_URL (first on line 4)" in output
    assert f"{CTMPL}:14: cannot parse 'not a key line'" in output


def test_unclosed_template_action_is_reported(repo, capsys):
    append(repo / CTMPL, "EXTRA={{ .Data.data.extra\n")
    code, output = run(repo, capsys)
    assert code == 1
    assert f"{CTMPL}:13: has an unclosed `{{{{` template action" in output


@pytest.mark.parametrize(
    ("corrupt", "expected"),
    [
        pytest.param(
            lambda t: t + "  web:\n    image: nginx\n",
            "docker-compose.yml:28: invalid YAML: duplicate key 'web' (first on line 20)",
            id="duplicate-service",
        ),
        pytest.param(
            lambda t: t.replace('    ports:\n      - "127.0.0.1:3000', '   ports:\n      - "127.0.0.1:3000'),
            "docker-compose.yml:",
            id="bad-indent",
        ),
    ],
)
def test_malformed_compose_is_reported_with_file_and_line(repo, capsys, corrupt, expected):
    path = repo / "docker-compose.yml"
    path.write_text(corrupt(path.read_text()))
    code, output = run(repo, capsys)
    assert code == 1
    assert expected in output
    assert "invalid YAML" in output
    assert "Traceback" not in output


# --- --diff and --fix ---------------------------------------------------------------------------


def test_fix_prints_the_snippets_grouped_by_file(repo, capsys):
    remove_line(repo / ".env.example", "S3_REGION=")
    (repo / "apps/frontend/src/app/page.tsx").write_text("process.env.NEXT_PUBLIC_SENTRY_DSN\n")
    code, output = run(repo, capsys, "--fix")
    assert code == 1
    snippets = output.split("Snippets to add (--fix):")[1]
    env_block = snippets.split("--- .env.example\n")[1].split("---")[0]
    assert "# Region passed to the S3 client.\nS3_REGION=us-east-1\n" in env_block
    assert "NEXT_PUBLIC_SENTRY_DSN=\n" in env_block
    assert "--- apps/frontend/Dockerfile\nARG NEXT_PUBLIC_SENTRY_DSN\n" in snippets
    assert "--- docker-compose.yml (services.web.build.args)\n" in snippets
    assert "NEXT_PUBLIC_SENTRY_DSN: ${NEXT_PUBLIC_SENTRY_DSN:-}" in snippets


def test_fix_leaves_secret_values_blank(repo, capsys):
    remove_line(repo / ".env.example", "DATABASE_URL=")
    code, output = run(repo, capsys, "--fix")
    assert code == 1
    assert "\nDATABASE_URL=\n" in output
    assert "finance:finance@" not in output.split("Snippets to add")[1]


def test_diff_shows_missing_keys_as_removed_lines(repo, capsys):
    remove_line(repo / ".env.example", "S3_BUCKET=")
    code, output = run(repo, capsys, "--diff")
    assert code == 1
    assert "    --- Settings env names" in output
    assert "    +++ .env.example keys" in output
    assert "    -S3_BUCKET" in output
    assert "    -REDIS_URL" not in output


def test_files_are_never_modified(repo, capsys):
    remove_line(repo / ".env.example", "S3_BUCKET=")
    before = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    run(repo, capsys, "--fix", "--diff")
    assert before == {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()}


# --- entry points -------------------------------------------------------------------------------


def test_script_entry_point_reports_and_exits_like_main(repo):
    remove_line(repo / ".env.example", "S3_BUCKET=")
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(repo), "--settings-json", str(SETTINGS_JSON)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 1
    assert "missing S3_BUCKET -> add to .env.example" in completed.stdout
    assert completed.stderr == ""


def test_missing_root_is_one_clear_line(tmp_path, capsys):
    code = env_keys.main(["--root", str(tmp_path / "nowhere"), "--settings-json", str(SETTINGS_JSON)])
    assert code == 1
    assert "is not a directory" in capsys.readouterr().err


@pytest.mark.skipif(
    importlib.util.find_spec("pydantic_settings") is None
    or not (env_keys.REPO_ROOT / "apps/backend/src/config.py").is_file(),
    reason="the backend is not installed in this environment (run via `nox -s env_keys`)",
)
def test_the_repository_itself_keeps_the_contract(capsys):
    code = env_keys.main([])
    output = capsys.readouterr().out
    assert code == 0, output
