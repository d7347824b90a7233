"""The GitHub workflows agree with the nox sessions, and run nothing but nox sessions and scripts.

`nox -t ci -l --json` is the one list of CI sessions: ci.yml gets its matrix from
`nox -s ci -- --matrix`, and the sessions that follow the matrix (tag `report`) have their own
job. These tests read both sides and fail when they drift — a session that CI never runs, a job
for a session that no longer exists, a step that runs a command nobody can run locally.
Also here: the non-Python lint runner (noxlib/sessions/lint.py) and the compose file's contract.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from noxlib.core import node
from noxlib.core.errors import UserError
from noxlib.sessions import lint

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
CI_WORKFLOW = WORKFLOWS / "ci.yml"
REPORT_TAG = "report"  # ci sessions that run after the matrix, in a job of their own

# `uvx nox -s NAME [-- args]` or `uvx nox -s "$VAR"`: the same command a developer runs.
NOX_RUN = re.compile(r'^uvx nox -s (?P<session>"\$\w+"|"[^"]+"|\S+)(?P<rest>(?: .*)?)$')
SCRIPT_RUN = re.compile(r"^scripts/[\w-]+\.(?:sh|py)(?: .*)?$")
# The only other commands ci.yml may run: the matrix written to the job's output, an artifact
# name written to a step output, and the aggregate job's failure.
CI_WIRING = (
    re.compile(r"""^\{ printf 'matrix='; uvx nox -s ci -- --matrix; \} >> "\$GITHUB_OUTPUT"$"""),
    re.compile(r'^echo "name=coverage-\$\{NOX_SESSION//\[\^A-Za-z0-9\._-\]/-\}" >> "\$GITHUB_OUTPUT"$'),
    re.compile(r"^exit 1$"),
)
# Deployment workflows may also build/push images with compose (whose file is the one list of
# images and build args), check an image exists, and comment on the PR.
DEPLOY_WIRING = (
    re.compile(r"^docker compose --profile app build --push$"),
    re.compile(r'^docker manifest inspect "\$IMAGE_PREFIX/finance-report-(backend|frontend):\$\w+"$'),
    re.compile(r'^gh pr comment "\$PR_NUMBER" --repo "\$GITHUB_REPOSITORY" .*--body ".*"$'),
    re.compile(r'^echo "::error::[^"]*"$'),
    re.compile(r"^exit 1$"),
)
PINNED_USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<comment>\s+#.*)?$")


# ---- reading both sides -----------------------------------------------------------------------


def _nox(*args: str) -> subprocess.CompletedProcess[str]:
    # The test runs inside an environment that has noxlib's libraries: nox uses it as it is.
    return subprocess.run(
        [sys.executable, "-m", "nox", "--noxfile", str(ROOT / "noxfile.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@cache
def nox_sessions(*selector: str) -> tuple[dict[str, Any], ...]:
    result = _nox(*selector, "-l", "--json")
    assert result.returncode == 0, f"`nox {' '.join(selector)} -l --json` failed:\n{result.stderr}"
    return tuple(json.loads(result.stdout))


@cache
def github_matrix() -> dict[str, Any]:
    """What the plan job writes to its output: run the same command and read stdout."""
    result = _nox("-s", "ci", "--", "--matrix")
    assert result.returncode == 0, f"`nox -s ci -- --matrix` failed:\n{result.stderr}"
    return json.loads(result.stdout)


def load_workflow(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as True.
    if True in data:
        data["on"] = data.pop(True)
    return data


def workflow_files() -> list[Path]:
    return lint.workflow_files(ROOT)


def run_lines(job: dict[str, Any]) -> list[tuple[str, str]]:
    """(step name, command line) for every line of every `run:` step, continuations joined."""
    lines = []
    for step in job.get("steps", []):
        if "run" not in step:
            continue
        text = re.sub(r"\\\n\s*", " ", step["run"]).strip()
        name = step.get("name", step["run"][:40])
        lines += [(name, line.strip()) for line in text.splitlines() if line.strip()]
    return lines


def nox_calls(workflow: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(job id, session as written, the rest) for every `uvx nox -s` line in the workflow."""
    calls = []
    for job_id, job in workflow["jobs"].items():
        for _, line in run_lines(job):
            match = NOX_RUN.match(line)
            if match:
                calls.append((job_id, match["session"].strip('"'), match["rest"].strip()))
    return calls


def resolve_session(job: dict[str, Any], workflow: dict[str, Any], written: str) -> str:
    """`$NOX_SESSION` → the expression the job's env gives it (e.g. `${{ matrix.session }}`)."""
    if not written.startswith("$"):
        return written
    variable = written[1:]
    value = job.get("env", {}).get(variable) or workflow.get("env", {}).get(variable)
    assert value, f"{variable} is not set in the job's env"
    return value


# ---- ci.yml and the session list --------------------------------------------------------------


def test_matrix_is_every_ci_session_except_the_reports():
    sessions = nox_sessions("-t", "ci")
    expected = [
        {"session": entry["session"], "python": entry["python"] or None}
        for entry in sessions
        if REPORT_TAG not in entry.get("tags", [])
    ]
    assert github_matrix() == {"include": expected}
    assert expected, "no ci-tagged session would run on GitHub"


def test_ci_workflow_and_nox_list_the_same_sessions():
    workflow = load_workflow(CI_WORKFLOW)
    ci_sessions = {entry["session"]: entry for entry in nox_sessions("-t", "ci")}
    reports = {name for name, entry in ci_sessions.items() if REPORT_TAG in entry["tags"]}
    matrix = {entry["session"] for entry in github_matrix()["include"]}

    in_workflow: set[str] = set()
    matrix_jobs = []
    for job_id, written, rest in nox_calls(workflow):
        job = workflow["jobs"][job_id]
        session = resolve_session(job, workflow, written)
        if session == "${{ matrix.session }}":
            matrix_jobs.append(job_id)
            in_workflow |= matrix
        elif session == "ci":
            assert rest == "-- --matrix", f"job {job_id} runs `nox -s ci {rest}`"
        else:
            in_workflow.add(session)

    assert len(matrix_jobs) == 1, f"expected one matrix job, got {matrix_jobs}"
    assert sorted(set(ci_sessions) - in_workflow) == [], "ci sessions GitHub never runs"
    assert sorted(in_workflow - set(ci_sessions)) == [], "jobs for sessions nox does not tag ci"
    # Sessions named literally in ci.yml are exactly the reports (they need the matrix's output).
    literal = {resolve_session(workflow["jobs"][j], workflow, s) for j, s, _ in nox_calls(workflow)}
    assert literal - {"ci", "${{ matrix.session }}"} == reports


def test_ci_jobs_run_only_nox_sessions_and_scripts():
    workflow = load_workflow(CI_WORKFLOW)
    for job_id, job in workflow["jobs"].items():
        for step_name, line in run_lines(job):
            allowed = NOX_RUN.match(line) or SCRIPT_RUN.match(line) or any(pattern.match(line) for pattern in CI_WIRING)
            assert allowed, f"ci.yml job {job_id}, step {step_name!r} runs {line!r}"


def test_matrix_job_wiring():
    workflow = load_workflow(CI_WORKFLOW)
    jobs = workflow["jobs"]
    plan_id = next(j for j, job in jobs.items() if "matrix" in job.get("outputs", {}))
    (session_id, session_job) = next((j, job) for j, job in jobs.items() if "strategy" in job and j != plan_id)
    assert session_job["needs"] == plan_id
    assert session_job["strategy"]["fail-fast"] is False
    assert session_job["strategy"]["matrix"] == f"${{{{ fromJSON(needs.{plan_id}.outputs.matrix) }}}}"
    env = {**workflow.get("env", {}), **session_job["env"]}
    assert env["BRANCH_NAME"] == "${{ github.head_ref || github.ref_name }}"
    assert env["WORKSPACE_ID"] == "${{ github.run_id }}-${{ strategy.job-index }}"
    assert env["FR_SERVICES"] in ("native", "compose")
    uses = [step.get("uses", "").split("@")[0] for step in session_job["steps"]]
    for action in (
        "actions/checkout",
        "astral-sh/setup-uv",
        "actions/setup-python",
        "actions/setup-node",
        "actions/upload-artifact",
    ):
        assert action in uses, f"{session_id} does not use {action}"
    by_action = {step.get("uses", "").split("@")[0]: step.get("with", {}) for step in session_job["steps"]}
    assert by_action["astral-sh/setup-uv"]["enable-cache"] is True
    assert by_action["actions/setup-node"]["cache"] == "npm"
    assert "apps/frontend/package-lock.json" in by_action["actions/setup-node"]["cache-dependency-path"]
    assert set(by_action["actions/setup-python"]["python-version"].split()) >= {"3.12", "3.13"}
    assert by_action["actions/upload-artifact"]["path"] == ".nox/coverage-data/**"
    assert by_action["actions/upload-artifact"]["include-hidden-files"] is True


def test_coverage_job_collects_every_shard():
    jobs = load_workflow(CI_WORKFLOW)["jobs"]
    coverage = jobs["coverage"]
    download = next(s for s in coverage["steps"] if "download-artifact" in s.get("uses", ""))
    assert download["with"] == {
        "pattern": "coverage-*",
        "path": ".nox/coverage-data",
        "merge-multiple": True,
    }
    assert "session" in ([coverage["needs"]] if isinstance(coverage["needs"], str) else coverage["needs"])


def test_aggregate_ci_job_fails_when_any_job_did_not_succeed():
    jobs = load_workflow(CI_WORKFLOW)["jobs"]
    aggregate = jobs["ci"]
    assert aggregate["name"] == "ci"
    assert aggregate["if"] == "always()"
    assert set(aggregate["needs"]) == set(jobs) - {"ci"}
    (gate,) = aggregate["steps"]
    assert gate["run"].strip() == "exit 1"
    for result in ("failure", "cancelled", "skipped"):
        assert f"contains(needs.*.result, '{result}')" in gate["if"]


def test_ci_concurrency_and_permissions():
    workflow = load_workflow(CI_WORKFLOW)
    assert workflow["concurrency"] == {"group": "ci-${{ github.ref }}", "cancel-in-progress": True}
    assert workflow["permissions"] == {"contents": "read"}


# ---- every workflow ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_workflow_runs_only_sessions_scripts_and_wiring(path):
    workflow = load_workflow(path)
    for job_id, job in workflow["jobs"].items():
        for step_name, line in run_lines(job):
            allowed = (
                NOX_RUN.match(line)
                or SCRIPT_RUN.match(line)
                or any(pattern.match(line) for pattern in CI_WIRING + DEPLOY_WIRING)
            )
            assert allowed, f"{path.name} job {job_id}, step {step_name!r} runs {line!r}"


# `nox -l --json` lists only the default selection; a keyword that excludes nothing lists all.
EVERY_SESSION = ("-k", "not __no_such_session__")


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_workflow_sessions_exist(path):
    sessions = nox_sessions(*EVERY_SESSION)
    known = {entry["name"] for entry in sessions} | {entry["session"] for entry in sessions}
    workflow = load_workflow(path)
    for job_id, written, _ in nox_calls(workflow):
        session = resolve_session(workflow["jobs"][job_id], workflow, written)
        if session.startswith("${{"):
            continue
        assert session in known, f"{path.name} job {job_id} runs `nox -s {session}`: no such session"


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_workflow_scripts_exist_and_are_executable(path):
    for job in load_workflow(path)["jobs"].values():
        for _, line in run_lines(job):
            if SCRIPT_RUN.match(line):
                script = ROOT / shlex.split(line)[0]
                assert script.is_file(), f"{path.name} runs {script.name}, which does not exist"
                assert os.access(script, os.X_OK), f"{script} is not executable"


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_actions_are_pinned_to_a_commit_with_its_version(path):
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = PINNED_USES.match(line)
        if not match or match["ref"].startswith("./"):
            continue
        action, _, ref = match["ref"].partition("@")
        assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{path.name}:{number}: {action} is not pinned"
        comment = match["comment"] or ""
        assert re.search(r"#\s*v\d", comment), f"{path.name}:{number}: say which version (# vX.Y.Z)"


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_permissions_are_declared_and_checkouts_keep_no_token(path):
    workflow = load_workflow(path)
    for job_id, job in workflow["jobs"].items():
        assert "permissions" in job or "permissions" in workflow, f"{path.name}:{job_id}"
        for step in job.get("steps", []):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, f"{path.name}:{job_id}"


# ---- the non-Python lint runner ---------------------------------------------------------------


def _fake_tool(bin_dir: Path, name: str, fail_on: str = "") -> None:
    """A stand-in linter: prints its arguments, fails for any file whose name contains fail_on."""
    script = bin_dir / name
    condition = f'case "$*" in *{fail_on}*) exit 1;; esac' if fail_on else ""
    script.write_text(f'#!/bin/sh\necho "{name} $*"\n{condition}\nexit 0\n')
    script.chmod(0o755)


@pytest.fixture
def lint_repo(tmp_path):
    """A tiny repository with one file of each kind the lint checks cover."""
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "good.yml").write_text("on: push\n")
    (tmp_path / ".github" / "workflows" / "broken.yml").write_text("on: push\n")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "deploy.sh").write_text("#!/bin/sh\n")
    (tmp_path / ".ci").mkdir()
    (tmp_path / ".ci" / "run").write_text("#!/bin/sh\n")
    (tmp_path / "apps" / "backend").mkdir(parents=True)
    (tmp_path / "apps" / "backend" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "docker-compose.yml").write_text("services: {}\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    return tmp_path, bin_dir


def test_lint_failure_names_the_tool_and_the_file(lint_repo):
    root, bin_dir = lint_repo
    _fake_tool(bin_dir, "zizmor", fail_on="broken.yml")
    _fake_tool(bin_dir, "shellcheck", fail_on="run")
    _fake_tool(bin_dir, "hadolint")
    _fake_tool(bin_dir, "check-jsonschema")
    failures = lint.run_checks(
        root,
        ["zizmor", "shellcheck", "hadolint", "compose-schema"],
        bin_dirs=[str(bin_dir)],
        log=lambda message: None,
    )
    assert [str(f) for f in failures] == [
        "zizmor: .github/workflows/broken.yml reported problems (see its output above)",
        "shellcheck: .ci/run reported problems (see its output above)",
    ]
    assert "zizmor: .github/workflows/broken.yml" in lint.summary(failures)


def test_lint_reports_a_missing_tool_instead_of_skipping(lint_repo, monkeypatch):
    root, bin_dir = lint_repo
    monkeypatch.setenv("PATH", str(bin_dir))  # nothing else on PATH: hadolint cannot be found
    failures = lint.run_checks(root, ["hadolint"], bin_dirs=[], log=lambda message: None)
    assert [str(f) for f in failures] == ["hadolint: apps/backend/Dockerfile not run: `hadolint` is not installed"]


def test_lint_rejects_unknown_check_names(lint_repo):
    root, _ = lint_repo
    with pytest.raises(UserError, match="unknown lint check"):
        lint.run_checks(root, ["eslint"], log=lambda message: None)


def test_npm_install_is_needed_until_the_stamp_matches_the_lockfile(tmp_path):
    tools = tmp_path / "tools" / "lint"
    (tools / "node_modules").mkdir(parents=True)
    (tools / "package-lock.json").write_text('{"lockfileVersion": 3}')
    assert node.npm_install_needed(tools)
    (tools / "node_modules" / ".package-lock.sha256").write_text(node.lockfile_digest(tools))
    assert not node.npm_install_needed(tools)
    (tools / "package-lock.json").write_text('{"lockfileVersion": 3, "packages": {}}')
    assert node.npm_install_needed(tools)


def test_lint_covers_the_repositorys_files():
    assert {p.name for p in lint.workflow_files(ROOT)} >= {
        "ci.yml",
        "pr-test.yml",
        "staging-deploy.yml",
        "production-release.yml",
        "docs.yml",
    }
    assert {p.name for p in lint.shell_files(ROOT)} >= {"dokploy_deploy.sh", "health_check.sh"}
    assert lint.compose_files(ROOT) == [ROOT / "docker-compose.yml"]


# ---- docker-compose.yml -----------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def test_compose_profiles_and_service_names():
    services = compose()["services"]
    infra = {name for name, s in services.items() if "infra" in s.get("profiles", [])}
    app = {name for name, s in services.items() if "app" in s.get("profiles", [])}
    assert infra == {"postgres", "redis", "minio", "minio-init"}
    assert app == {"migrate", "backend", "frontend"}


@pytest.mark.parametrize("name", ["postgres", "redis", "minio", "minio-init", "backend", "frontend"])
def test_compose_service_contract(name):
    service = compose()["services"][name]
    assert "healthcheck" in service, f"{name}: `up --wait` needs a healthcheck"
    # A fixed name would clash between a hand-run project and nox's, or two stacks on one engine.
    assert "container_name" not in service, f"{name}: the compose project name keeps stacks apart"
    assert service["restart"] == "${RESTART_POLICY:-no}"
    for port in service.get("ports", []):
        # Loopback only. A fixed default a variable moves (a saved client address survives a
        # restart; a second stack moves it), except the backend's, which nothing outside needs.
        pattern = r"127\.0\.0\.1::8000" if name == "backend" else r"127\.0\.0\.1:\$\{[A-Z_]+_PORT:-(\d+)\}:(\d+)"
        matched = re.fullmatch(pattern, port)
        assert matched, f"{name}: {port} is not loopback with a fixed default a variable moves"
        assert name == "backend" or matched.group(1) == matched.group(2), (
            f"{name}: {port}: default differs from the container's"
        )


@pytest.mark.journey  # it reads every frontend source: an input of the journeys session, not of noxlib_test
def test_compose_frontend_build_args_carry_every_next_public_key():
    frontend = ROOT / "apps" / "frontend"
    sources = []
    # Not a glob over the tree: it walked every file of node_modules and .next, four times.
    for directory, subdirectories, files in frontend.walk():
        subdirectories[:] = [name for name in subdirectories if name not in ("node_modules", ".next")]
        sources += [directory / name for name in files if name.endswith((".ts", ".tsx", ".js", ".mjs"))]
    read = {
        key
        for path in sources
        for key in re.findall(r"process\.env\.(NEXT_PUBLIC_\w+)", path.read_text(encoding="utf-8"))
    }
    args = compose()["services"]["frontend"]["build"]["args"]
    assert read <= set(args), f"add to the frontend's build args: {sorted(read - set(args))}"


def test_the_pre_commit_hooks_run_sessions_and_tags_that_exist():
    """A hook naming a renamed session would fail only on someone's next push."""
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    entries = [hook["entry"] for repo in config["repos"] for hook in repo["hooks"] if "nox" in hook["entry"]]
    listed = json.loads(
        subprocess.run(
            [sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"), "-k", "not __none__", "-l", "--json"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    names = {entry["name"] for entry in listed}
    tags = {tag for entry in listed for tag in entry["tags"]}
    assert entries, "no hook runs a nox session"
    for entry in entries:
        words = shlex.split(entry)
        for flag, known in (("-s", names), ("-t", tags)):
            if flag in words:
                assert words[words.index(flag) + 1] in known, entry
