"""Journeys, walked the way a person walks them: real commands, real signals, a real browser.

Each test starts a whole `nox` run as a terminal would (SIGINT not ignored, its own process
group, so a signal to the group is a Ctrl+C), reads what it prints and follows it: the URL it
prints is opened in headless Chromium, the example commands the docs show are run as written.
The ones that build or serve the frontend of this checkout (`next dev`, the smoke session's
production build, vitest) share one xdist group: two of them at once would write one `.next`.
The others need nothing of each other and spread over the workers.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from noxlib.ci.bytecode import BYTECODE_DIR
from noxlib.core.paths import ARTEFACTS_DIR, NOX_DIR
from noxlib.core.processes import free_port
from noxlib.names.namespace import get_dev_db_name, get_s3_bucket, sanitize_namespace
from noxlib.run import service_leases
from noxlib.sessions.backend_tests import COVERAGE_DIR_NAME, INHERITED_PYTEST_VARIABLES
from noxlib.smoke import cli as smoke
from tests.runs import (
    DOCS_SUBSET_EXAMPLE,
    ENVDIR,
    NO_PYTHON_312,
    REPO,
    fresh_clone,
    nox_command,
    nox_env,
    run_nox,
    start_in_terminal,
)

pytestmark = [pytest.mark.slow, pytest.mark.journey]
# The journeys share the checkout's frontend and run side by side: its node_modules are installed
# before they start (noxlib/sessions/suite_tests.py), and `next dev` keeps its output in .next/dev apart
# from `next build`'s (Next.js 16's isolatedDevBuild, on by default), so a dev run and smoke's
# build never meet.
# Journeys that start services hold the worker's lease (tests/conftest.py) as every other
# suite test does: their runs join the services instead of starting and stopping a set each.

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
# Generous: `next dev` compiles each page on its first visit, on a machine other runs share.
START_BOUND = 600.0
PAGE_BOUND_MS = 180_000
STOP_BOUND = 120.0
# What a page shows until its API data arrived (components/status-messages.tsx).
LOADING_PLACEHOLDER = "Loading "
# Programs of an app run; the services (postgres, redis, weed) are meant to outlive it.
APP_PROGRAMS = ("uvicorn", "next", "npm", "node", "nox")
SCREENSHOTS_FOR_THE_LEAD = ARTEFACTS_DIR / "journeys"


def chromium_or_skip() -> str:
    pytest.importorskip("playwright", reason="the smoke dependency group (playwright) is not installed here")
    chromium, why = smoke.find_chromium()
    if chromium is None:
        pytest.skip(why)
    return chromium


@contextlib.contextmanager
def terminal_run(args: list[str], log: Path, **env: str) -> Iterator[subprocess.Popen]:
    """`nox ARGS` in its own process group, as a terminal starts it; killed if the test leaves it running."""
    process = start_in_terminal(args, log, **env)
    try:
        yield process
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_for_output(process: subprocess.Popen, log: Path, pattern: str) -> re.Match[str]:
    """The first match of `pattern` in the run's output; fails with the output if the run ends first."""
    deadline = time.monotonic() + START_BOUND
    while True:
        text = log.read_text(errors="replace")
        if match := re.search(pattern, text, re.MULTILINE):
            return match
        assert process.poll() is None, f"the run ended (exit {process.returncode}) before {pattern!r}:\n{text}"
        assert time.monotonic() < deadline, f"no {pattern!r} in the run's output:\n{text}"
        time.sleep(0.5)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - a loopback URL we printed
        return json.loads(response.read())


def app_processes(branch: str) -> list[str]:
    """Live uvicorn/next/npm/nox processes of the run started with BRANCH_NAME=`branch` by this worker.

    The worker's state directory (FR_CACHE_DIR, tests/conftest.py) tells them apart from the same
    journey of a suite run in another checkout: its worker has the same id, so the same branch.
    """
    ours = {"BRANCH_NAME": branch, "FR_CACHE_DIR": os.environ["FR_CACHE_DIR"]}
    found = []
    for process in psutil.process_iter():
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            environ = process.environ()
            if any(environ.get(key) != value for key, value in ours.items()):
                continue
            command = " ".join(process.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if any(program in command for program in APP_PROGRAMS):
            found.append(f"{process.pid} {command[:120]}")
    return found


def open_pages(chromium: str, base_url: str, screenshots: Path) -> dict[str, str]:
    """Each page of smoke.BROWSER_PAGES in headless Chromium: {page: the text its data element shows}."""
    from playwright.sync_api import expect, sync_playwright

    shown: dict[str, str] = {}
    screenshots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright, tempfile.TemporaryDirectory(prefix="journey-chromium-") as profile:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=chromium,
            headless=True,
            args=[*smoke.CHROMIUM_FLAGS, *smoke.isolation_flags(base_url)],
        )
        try:
            for spec in smoke.BROWSER_PAGES:
                errors: list[str] = []
                tab = context.new_page()
                tab.on(
                    "console", lambda message, errors=errors: message.type == "error" and errors.append(message.text)
                )
                tab.goto(base_url + spec.path, wait_until="load", timeout=PAGE_BOUND_MS)
                data = tab.get_by_test_id(spec.testid)
                expect(data).to_be_visible(timeout=PAGE_BOUND_MS)
                tab.screenshot(path=str(screenshots / f"{spec.name}.png"), full_page=True)
                if spec.name == "reconciliation" and tab.get_by_test_id("pending-line").count() == 0:
                    assert_empty_state_spans_the_list(tab, expect)
                body = tab.inner_text("body")
                assert LOADING_PLACEHOLDER not in body, f"{spec.path} still shows a placeholder:\n{body}"
                # The bug this walks: a blocked /_next/hmr socket is a console error on every page.
                assert errors == [], f"{spec.path}: console errors {errors}"
                shown[spec.name] = data.inner_text().strip()
                tab.close()
        finally:
            context.close()
    return shown


def assert_empty_state_spans_the_list(tab, expect) -> None:
    """Nothing pending: the sentence runs across the list, not down a 7rem column a word a line."""
    sentence = tab.get_by_test_id("pending-empty")
    expect(sentence).to_be_visible()
    sentence_box, list_box = sentence.bounding_box(), tab.get_by_test_id("pending-list").bounding_box()
    assert sentence_box["width"] >= 0.9 * list_box["width"], (sentence_box, list_box)


def keep_for_the_lead(screenshots: Path) -> None:
    """The screenshots live in the test's tmp dir; a copy goes to the artefacts dir to be cited."""
    SCREENSHOTS_FOR_THE_LEAD.mkdir(parents=True, exist_ok=True)
    for picture in screenshots.glob("*.png"):
        shutil.copy2(picture, SCREENSHOTS_FOR_THE_LEAD / f"dev-{picture.name}")


def bare_python_path(tmp_path: Path) -> str:
    """A PATH with python3 alone (the base interpreter: no playwright), as a deploy runner has."""
    directory = tmp_path / "bare-bin"
    directory.mkdir()
    (directory / "python3").symlink_to(Path(sys.executable).resolve())
    return str(directory)


# ----- nox -s dev -- --frontend ----------------------------------------------------------------
@pytest.mark.usefixtures("services")
def test_dev_frontend_url_shows_real_data_smoke_script_is_read_only_and_ctrl_c_stops_the_apps(tmp_path):
    chromium = chromium_or_skip()
    branch = f"journey_dev_{WORKER}"
    backend_port = free_port()
    frontend_port = free_port()
    while frontend_port == backend_port:
        frontend_port = free_port()
    log = tmp_path / "dev.log"
    environment = {"BRANCH_NAME": branch, "BACKEND_PORT": str(backend_port), "FRONTEND_PORT": str(frontend_port)}

    with terminal_run(nox_command("-s", "dev", "--", "--frontend"), log, **environment) as dev:
        frontend_url = wait_for_output(dev, log, r"^nox > frontend\s+(http://\S+)\s*$")[1]
        backend_url = wait_for_output(dev, log, r"^nox > backend\s+(http://\S+)\s")[1]
        wait_for_output(dev, log, r"^nox > Ctrl\+C stops the app")
        assert frontend_url == f"http://127.0.0.1:{frontend_port}"
        # Issue 24: the services block first, the URL to open as the last line nox prints.
        assert wait_for_output(dev, log, r"^nox > open\s+(http://\S+)\s*$")[1] == frontend_url
        printed = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("nox > ")]
        assert printed[-1].startswith("nox > open"), printed
        assert any(re.match(r"nox > services\s+\w+ \((started|joined)\)", line) for line in printed), printed
        # The psql command it printed works as pasted (its password comes from a 0600 PGPASSFILE).
        psql = wait_for_output(dev, log, r"^nox > psql\s+(.+)$")[1]
        pasted = subprocess.run(
            [shutil.which("bash") or "/bin/bash", "-c", f"{psql} -w -At -c 'select current_database()'"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert pasted.stdout.strip() == get_dev_db_name(sanitize_namespace(branch)), pasted.stderr
        # The backend's bare address, opened in a browser, leads to the API docs.
        with urllib.request.urlopen(backend_url + "/", timeout=30) as response:  # noqa: S310 - printed loopback URL
            assert (response.status, response.url) == (200, f"{backend_url}/api/docs")

        # The URL it printed, in a browser: every page shows what the backend says.
        screenshots = tmp_path / "screenshots"
        shown = open_pages(chromium, frontend_url, screenshots)
        keep_for_the_lead(screenshots)
        assert shown["dashboard"] == get_json(f"{backend_url}/api/health")["status"] == "healthy"
        ping = get_json(f"{backend_url}/api/ping")
        assert shown["ping-pong"].lower() == ping["state"]
        matched = get_json(f"{backend_url}/api/reconciliation/stats")["matched"]
        assert shown["reconciliation"].replace(",", "") == str(matched)

        # scripts/smoke_test.sh against this stack with nothing but BASE_URL: it checks, never writes.
        script = subprocess.run(
            [shutil.which("bash") or "/bin/bash", str(REPO / "scripts" / "smoke_test.sh")],
            env={"PATH": bare_python_path(tmp_path), "HOME": os.environ.get("HOME", "/"), "BASE_URL": frontend_url},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert script.returncode == 0, script.stdout + script.stderr
        assert f"smoke {frontend_url} (mode prod" in script.stdout
        assert re.search(r"skip\s+toggle .*prod mode never writes", script.stdout), script.stdout
        assert get_json(f"{backend_url}/api/ping")["toggle_count"] == ping["toggle_count"]

        # Ctrl+C at the terminal: the whole foreground group gets SIGINT.
        os.killpg(dev.pid, signal.SIGINT)
        code = dev.wait(timeout=STOP_BOUND)

    output = log.read_text(errors="replace")
    assert code == 130, output
    assert "Traceback" not in output
    # The apps' relayed output carries no terminal escape (`frontend | [?25h` on Ctrl+C).
    assert "\x1b" not in output
    assert "[?25h" not in output
    # On exit `next dev` spawns a detached telemetry flusher that exits by itself (telemetry is
    # off): give what the run left a short bound to be gone on its own, then nothing may remain.
    deadline = time.monotonic() + 15
    while app_processes(branch) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert app_processes(branch) == []
    assert smoke.Target(frontend_url, frontend_url).request("GET", "/").status is None
    # The services and the dev database stay for the next run; only `nox -s down` stops them.
    state = service_leases.registry().snapshot()
    assert state.services is not None
    assert state.services["kept"], state
    assert not [lease for lease in state.leases if lease.namespace == sanitize_namespace(branch)]
    with service_leases.leased_services("suite", f"journey_check_{WORKER}", log=lambda line: None) as lease:
        import psycopg

        with psycopg.connect(lease.urls.database_url(), autocommit=True) as connection:
            names = {name for (name,) in connection.execute("SELECT datname FROM pg_database").fetchall()}
        assert lease.urls.postgres_password not in output
    assert get_dev_db_name(sanitize_namespace(branch)) in names


# ----- nox -s test -- <a subset> -----------------------------------------------------------------
@pytest.mark.journey_selection
@pytest.mark.usefixtures("services")
def test_the_docs_subset_example_passes_and_reports_coverage_without_enforcing_it():
    """docs/development.md shows this example (tests/test_readme.py checks that it does)."""
    example = DOCS_SUBSET_EXAMPLE
    started = time.time()
    subset = run_nox("-s", "test", "--", *example, timeout=1200, BRANCH_NAME=f"journey_subset_{WORKER}")
    assert subset.returncode == 0, subset.stdout
    # Its coverage data (one COVERAGE_FILE per run) is in its own envdir, so the checkout's
    # `test`, which `nox -s ci` runs beside this suite, keeps its data for `coverage`. (The
    # checkout's file itself may change meanwhile: that `test` writes it.)
    assert (Path(ENVDIR) / COVERAGE_DIR_NAME / ".coverage.test").stat().st_mtime >= started
    counts = re.search(r"collected (\d+) items / (\d+) deselected / (\d+) selected", subset.stdout)
    assert counts, subset.stdout
    assert 0 < int(counts[3]) < int(counts[1])
    assert re.search(rf"\b{counts[3]} passed\b", subset.stdout)
    assert "Required test coverage" not in subset.stdout
    assert "coverage   reported, not enforced: the run is narrowed to -k " in subset.stdout


@pytest.mark.journey_selection
@pytest.mark.usefixtures("services")
def test_a_selection_that_matches_no_test_fails_in_one_line():
    nothing = run_nox(
        "-s", "test", "--", "-k", "no_test_is_called_this", "-n", "0",
        timeout=1200, BRANCH_NAME=f"journey_nothing_{WORKER}",
    )  # fmt: skip
    assert nothing.returncode == 1
    said = [line for line in nothing.stdout.splitlines() if "no test matched" in line]
    assert len(said) == 1, nothing.stdout
    assert said[0].startswith(
        "nox > Session test aborted: no test matched -k no_test_is_called_this; list the test names with "
        "`nox -s test -- --collect-only -q`"
    ), said
    assert "Traceback" not in nothing.stdout


@pytest.mark.journey_selection
@pytest.mark.parametrize(
    ("args", "narrowing"),
    [
        (["-k", "reconciliation", "-n", "0"], ["-k reconciliation"]),
        (["-kreconciliation"], ["-k reconciliation"]),
        (["tests/test_api_ping.py::test_toggle", "-x"], ["tests/test_api_ping.py::test_toggle"]),
        (["--lf"], ["--lf"]),
        (["--last-failed", "-q"], ["--last-failed"]),
        (["-m", "not slow"], ["-m not slow"]),
        (["--deselect=tests/test_a.py::test_b"], ["--deselect=tests/test_a.py::test_b"]),
        # Whole-suite runs: options and their values are not a selection.
        ([], []),
        (["-n", "auto", "--dist", "loadgroup", "-p", "no:cacheprovider"], []),
        (["--no-cov", "-q", "--tb", "short", "--maxfail", "3"], []),
    ],
)
def test_which_runs_are_subsets_whose_coverage_is_reported_not_enforced(args, narrowing):
    from noxlib.sessions.backend_tests import narrowed_selection

    assert narrowed_selection(args) == narrowing


# ----- a suite test with screenshots, then nox -s smoke, then the docs -----------------------------
def is_venv_or_absent(directory: Path) -> bool:
    return not directory.exists() or (directory / "pyvenv.cfg").is_file()


def own_pytest_env() -> dict[str, str]:
    """A pytest of its own: its own state dir (the suite's would be torn down when it ends), no worker identity."""
    env = nox_env()
    for variable in (*INHERITED_PYTEST_VARIABLES, "FR_CACHE_DIR"):
        env.pop(variable, None)
    return env


@pytest.mark.usefixtures("services")
def test_smoke_and_the_next_session_pass_after_the_suite_test_that_takes_screenshots(tmp_path):
    chromium_or_skip()
    before = {path.name for path in NOX_DIR.iterdir()} if NOX_DIR.exists() else set()
    screenshots_test = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "-q",
         "tests/test_smoke.py::test_the_browser_reaches_nothing_but_the_app",
         "tests/test_smoke.py::test_the_browser_opens_every_page_and_clicks_toggle_only_when_allowed"],
        cwd=REPO, env=own_pytest_env(), capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert screenshots_test.returncode == 0, screenshots_test.stdout + screenshots_test.stderr
    # Whatever the suite test wrote, nothing landed in a session's venv directory. Only new
    # directories can be in a venv's way: the `<session>.lock` files of sessions that `nox -s ci`
    # runs beside this suite (noxlib/ci/venvs.py) are files.
    for name in {path.name for path in NOX_DIR.iterdir() if path.is_dir()} - before:
        assert name in (ARTEFACTS_DIR.name, BYTECODE_DIR.name) or is_venv_or_absent(NOX_DIR / name), name
    assert is_venv_or_absent(NOX_DIR / "smoke")

    # The checkout's own .nox, as `uvx nox -s smoke` uses it (not the suite's envdir).
    smoke_run = subprocess.run(
        [sys.executable, "-m", "nox", "-R", "-s", "smoke"],
        cwd=REPO, env=nox_env(BRANCH_NAME=f"journey_smoke_{WORKER}"), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=1800, check=False,
    )  # fmt: skip
    assert smoke_run.returncode == 0, smoke_run.stdout
    assert re.search(r"smoke: \d+ passed, 0 failed", smoke_run.stdout), smoke_run.stdout
    assert f"screenshots in {smoke.SCREENSHOT_DIR}" in smoke_run.stdout

    # Another session after it in the same checkout (one that reads no docs page: a docs edit
    # re-runs docs_check, not the journeys; `docs` itself builds them strictly in ci).
    after = run_nox("-s", "env_keys", timeout=900)
    assert after.returncode == 0, after.stdout


# ----- a default Python older than 3.12 --------------------------------------------------------------
def older_pyenv_python() -> str:
    """A pyenv Python older than 3.12 (Debian 12's is 3.11), or skip: the journey needs pyenv to hide 3.12+."""
    pyenv, uvx = shutil.which("pyenv"), shutil.which("uvx")
    if pyenv is None or uvx is None:
        pytest.skip("needs pyenv (to make an older Python the only one) and uvx")
    versions = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True, check=False).stdout
    older = [version for version in versions.split() if re.fullmatch(r"3\.(9|10|11)\.\d+", version)]
    if not older:
        pytest.skip("pyenv has no Python 3.9-3.11 to play an old default Python")
    return older[-1]


@pytest.mark.journey_backend
def test_an_older_default_python_gets_a_line_and_a_documented_fix(tmp_path):
    """`uvx nox` with only 3.11 around: one line before any session, which docs_check finds in the docs."""
    # A cache of its own: uvx would otherwise reuse a nox environment it built earlier with 3.12
    # (as `.ci/run` does), which a machine with only 3.11 never has. Kept in the suite's envdir
    # between runs (it only ever holds what uvx made with the older Python), so a warm run does
    # not fetch nox again.
    older = older_pyenv_python()
    cache = Path(ENVDIR) / f"uv-cache-python-{older}"
    env = nox_env(PYENV_VERSION=older, UV_PYTHON_DOWNLOADS="never", UV_CACHE_DIR=str(cache))
    # A person's shell: the system directories and pyenv's shims, nothing else. Whatever ran this
    # test put its own Python 3.12 environments first on PATH (uvx's nox, the session venvs), and
    # uv would find 3.12 there; a machine with only 3.11 has none of them.
    # uv and uvx alone, not the directory they sit in: installed by pip into a Python 3.12 (as
    # `.ci/run` does), that directory holds python3.12, and uv would find it there.
    tools = tmp_path / "uv-only"
    tools.mkdir()
    for program in ("uv", "uvx"):
        (tools / program).symlink_to(shutil.which(program) or program)
    shims = str(Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "shims")
    env["PATH"] = os.pathsep.join(dict.fromkeys([str(tools), shims, "/usr/local/bin", "/usr/bin", "/bin"]))
    # A fresh clone: nox's environment (.nox/_noxlib) built earlier with 3.12 would be reused.
    clone = fresh_clone(tmp_path / "clone")
    result = subprocess.run(
        ["uvx", "nox", "-l"], cwd=clone, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    # The docs' fix for this line: tests/test_readme.py.
    assert output.strip().splitlines()[-1] == NO_PYTHON_312, output


# ----- frontend output in a log ------------------------------------------------------------------------
def test_frontend_test_output_in_a_log_has_no_colour_escapes(tmp_path):
    """`CI=true` makes vitest colour its output even into a file; a log must read as text."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not on PATH")
    log = tmp_path / "frontend_test.log"
    with open(log, "wb") as output:
        result = subprocess.run(
            nox_command("-s", "frontend_test"), cwd=REPO, env=nox_env(CI="true"), stdout=output,
            stderr=subprocess.STDOUT, timeout=900, check=False,
        )  # fmt: skip
    text = log.read_text(errors="replace")
    assert result.returncode == 0, text
    assert re.search(r"Tests\s+\d+ passed", text), text
    assert "\x1b[" not in text


# ----- nox -s boot -- dry-run ---------------------------------------------------------------------------
def boot_mode_checks() -> dict[str, tuple[str, ...]]:
    """boot.py's MODE_CHECKS literal: what development.md's boot-gate table is generated from."""
    tree = ast.parse((REPO / "apps" / "backend" / "src" / "boot.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "MODE_CHECKS":
            assert node.value is not None
            return ast.literal_eval(node.value)
    raise AssertionError("boot.py assigns no MODE_CHECKS")


@pytest.mark.journey_backend
@pytest.mark.usefixtures("services")
def test_boot_dry_run_prints_its_namespace_ports_bucket_and_the_checks_of_its_gate():
    """What a newcomer's first `nox -s boot -- dry-run` shows (the docs' side: tests/test_first_hour.py)."""
    run = run_nox("-s", "boot", "--", "dry-run", timeout=900, BRANCH_NAME=f"first_hour_{WORKER}")
    assert run.returncode == 0, run.stdout
    namespace = re.search(r"^nox > namespace\s+(\S+)$", run.stdout, re.MULTILINE)
    assert namespace, run.stdout
    assert namespace[1] == f"first_hour_{WORKER.lower()}_boot"
    assert re.search(r"^nox > ports\s+postgres=\d+ redis=\d+ s3=\d+$", run.stdout, re.MULTILINE), run.stdout
    assert re.search(rf"^nox > bucket\s+{re.escape(get_s3_bucket(namespace[1]))} ", run.stdout, re.MULTILINE)
    ran = re.findall(r"^(\w+)\s+(?:ok|warning|error)\s", run.stdout, re.MULTILINE)
    assert tuple(ran) == boot_mode_checks()["dry-run"], run.stdout
