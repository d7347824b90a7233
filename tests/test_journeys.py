"""Journeys, walked the way a person walks them: real commands, real signals, a real browser.

Each test starts a whole `nox` run as a terminal would (SIGINT not ignored, its own process
group, so a signal to the group is a Ctrl+C), reads what it prints and follows it: the URL it
prints is opened in headless Chromium, the example commands the docs show are run as written.
The ones that build or serve the frontend of this checkout (`next dev`, the smoke session's
production build, vitest) share one xdist group: two of them at once would write one `.next`.
The others need nothing of each other and spread over the workers.
"""

from __future__ import annotations

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

from noxlib import service_leases, smoke
from noxlib.backend_tests import COVERAGE_DIR_NAME, INHERITED_PYTEST_VARIABLES
from noxlib.bytecode import BYTECODE_DIR
from noxlib.namespace import get_dev_db_name, sanitize_namespace
from noxlib.paths import ARTEFACTS_DIR, NOX_DIR
from noxlib.processes import free_port
from tests.runs import ENVDIR, REPO, nox_command, nox_env, run_nox, start_in_terminal

pytestmark = [pytest.mark.slow, pytest.mark.journey]
FRONTEND_CHECKOUT = pytest.mark.xdist_group(name="journeys")
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
    """Live uvicorn/next/npm/nox processes of the run started with BRANCH_NAME=`branch`."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.status() == psutil.STATUS_ZOMBIE or process.environ().get("BRANCH_NAME") != branch:
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
                body = tab.inner_text("body")
                assert LOADING_PLACEHOLDER not in body, f"{spec.path} still shows a placeholder:\n{body}"
                # The bug this walks: a blocked /_next/hmr socket is a console error on every page.
                assert errors == [], f"{spec.path}: console errors {errors}"
                shown[spec.name] = data.inner_text().strip()
                tab.close()
        finally:
            context.close()
    return shown


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
@FRONTEND_CHECKOUT
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
    assert get_dev_db_name(sanitize_namespace(branch)) in names


# ----- nox -s test -- <a subset> -----------------------------------------------------------------
def docs_test_example() -> list[str]:
    """The pytest arguments of the docs' `nox -s test -- -k …` example, as written there."""
    text = (REPO / "docs" / "development.md").read_text()
    example = re.search(r"`nox -s test -- (-k [^`]+)`", text)
    assert example, "docs/development.md shows no `nox -s test -- -k …` example"
    return example[1].split()


@pytest.mark.usefixtures("services")
def test_the_docs_subset_example_passes_and_an_empty_selection_fails_in_one_line():
    example = docs_test_example()
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
    from noxlib.backend_tests import narrowed_selection

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


@FRONTEND_CHECKOUT
@pytest.mark.usefixtures("services")
def test_smoke_and_docs_pass_after_the_suite_test_that_takes_screenshots(tmp_path):
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
    # runs beside this suite (noxlib/session_venvs.py) are files.
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

    docs_run = run_nox("-s", "docs", "--", "build", timeout=900)
    assert docs_run.returncode == 0, docs_run.stdout


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


def test_an_older_default_python_gets_a_line_and_a_documented_fix(tmp_path):
    """`uvx nox` with only 3.11 around: nox stops before the noxfile runs, so its line must be in the docs."""
    # A cache of its own: uvx would otherwise reuse a nox environment it built earlier with 3.12
    # (as `.ci/run` does), which a machine with only 3.11 never has.
    env = nox_env(PYENV_VERSION=older_pyenv_python(), UV_PYTHON_DOWNLOADS="never", UV_CACHE_DIR=str(tmp_path / "uv"))
    env.pop("NOX_SCRIPT_MODE")  # the script mode is the journey: `uvx nox` reads the noxfile's PEP 723 block
    # A person's shell: the system directories and pyenv's shims, nothing else. Whatever ran this
    # test put its own Python 3.12 environments first on PATH (uvx's nox, the session venvs), and
    # uv would find 3.12 there; a machine with only 3.11 has none of them.
    uvx = shutil.which("uvx") or "uvx"
    shims = str(Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "shims")
    env["PATH"] = os.pathsep.join(dict.fromkeys([str(Path(uvx).parent), shims, "/usr/local/bin", "/usr/bin", "/bin"]))
    # A fresh clone's envdir: a script environment built earlier with 3.12 would be reused.
    result = subprocess.run(
        ["uvx", "nox", "--envdir", str(tmp_path / "nox"), "-l"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    last = output.strip().splitlines()[-1]
    assert last == """No Python satisfies "requires-python": '>=3.12'""", output
    troubleshooting = next(
        row for row in (REPO / "docs" / "development.md").read_text().splitlines() if row.startswith(f"| `{last}`")
    )
    assert "`uv python install 3.12`" in troubleshooting
    assert "`uv python install 3.12`" in (REPO / "README.md").read_text()


# ----- frontend output in a log ------------------------------------------------------------------------
@FRONTEND_CHECKOUT
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
