"""Signals as a terminal sends them: Ctrl+C once or twice, a closed terminal, SIGKILL mid-start.

Every run here is started the way a shell starts a foreground job: its own process group, SIGINT
not ignored. The interrupt comes at a known moment (the gated probe is inside pytest, or a
service process has just been recorded), and each test ends by showing that nothing of the run
is left: no database, bucket, lease or process, and no service running unrecorded.
"""

# The private-state fixtures are shared with test_faults.py by import; pytest injects them by name.
# ruff: noqa: F811

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from noxlib.core import processes
from noxlib.names.namespace import sanitize_namespace
from tests.runs import (
    GATED_PROBE,
    REPO,
    _terminal_signals,
    leftovers,
    nox_command,
    nox_env,
    output,
    probe_args,
    release_gate,
    run_processes,
    start_run,
    wait_ready,
)
from tests.test_faults import PRIVATE, PrivateState, assert_stopped, private, private_state  # noqa: F401

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def assert_nothing_left(namespace: str, urls, pgid: int, registry=None) -> None:
    """Checked the moment nox has exited: no grace period in which pytest may still be dying."""
    assert leftovers(namespace, urls, registry) == []
    assert processes.group_members(pgid) == []


# ----- Ctrl+C during `nox -s test`, as one keypress under uvx arrives (twice) ----------------------
@pytest.mark.parametrize(
    ("signals", "code"),
    [
        ((signal.SIGINT,), 130),
        ((signal.SIGINT, "twice"), 130),  # the group's copy and uv's forwarded copy
        ((signal.SIGHUP,), 129),  # the terminal was closed
    ],
    ids=["ctrl-c", "ctrl-c-under-uvx", "sighup"],
)
def test_signal_inside_pytest_leaves_nothing(services, tmp_path, signals, code):
    branch = unique("sig")
    namespace = sanitize_namespace(branch)
    run = start_run(branch, tmp_path, workers=2, probes=[GATED_PROBE])
    try:
        wait_ready(branch, tmp_path, 1, run)
        os.killpg(run.pid, signals[0])
        if "twice" in signals:
            os.kill(run.pid, signals[0])
        assert run.wait(timeout=180) == code, output(branch, tmp_path)
    finally:
        release_gate(branch, tmp_path)
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert "Traceback" not in output(branch, tmp_path)
    assert_nothing_left(namespace, services.urls, run.pid)


# ----- Ctrl+C during `nox -s ci` while its test session is inside pytest -------------------------
CI_NOXFILE = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import nox

    sys.path.insert(0, {repo!r})
    import noxlib.ci.runner as local_ci
    from noxlib.core.errors import reported


    @nox.session(python=False)
    @reported
    def ci(session):
        local_ci.run(session, Path(__file__))


    @nox.session(python=False, tags=["ci"])
    def test(session):
        # The repository's real `nox -s test` on the gated probe. This stand-in layer waits for
        # it however long its cleanup takes (nox's default would kill it 0.5 s after Ctrl+C).
        session.run(*{command!r}, external=True, interrupt_timeout=None)


    @nox.session(python=False, tags=["ci"])
    def lint(session):
        pass
    """
)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_ci_waits_for_its_test_session_to_clean_up(services, tmp_path, sig, code):
    branch = unique("ci")
    namespace = sanitize_namespace(branch)
    inner = nox_command(
        "-f", str(REPO / "noxfile.py"), "-s", "test", "--",
        *probe_args(GATED_PROBE, workers=2),
    )  # fmt: skip
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "noxfile.py").write_text(CI_NOXFILE.format(repo=str(REPO), command=inner))
    ready = tmp_path / f"ready-{branch}"
    ready.mkdir()
    log = tmp_path / f"{branch}.log"
    with open(log, "wb") as sink:
        ci = subprocess.Popen(
            [sys.executable, "-m", "nox", "-f", str(repo / "noxfile.py"), "-s", "ci", "--", "--no-cache", "-j", "2"],
            cwd=repo,
            env=nox_env(BRANCH_NAME=branch, PROBE_READY_DIR=str(ready)),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_terminal_signals,
        )
    try:
        wait_ready(branch, tmp_path, 1, ci)
        if sig == signal.SIGINT:
            os.killpg(ci.pid, sig)  # Ctrl+C: the terminal's foreground group
            os.kill(ci.pid, sig)  # and uv's forwarded copy
        else:
            os.kill(ci.pid, sig)  # a supervisor stops ci alone
        assert ci.wait(timeout=180) == code, log.read_text()
    finally:
        release_gate(branch, tmp_path)
        if ci.poll() is None:
            os.killpg(ci.pid, signal.SIGKILL)
    text = log.read_text()
    assert "Traceback" not in text
    assert "test      stopped" in text or "stopped" in text.split("session")[-1], text
    assert_nothing_left(namespace, services.urls, ci.pid)
    # The child's own log shows its cleanup ran to the end.
    # (The run's own log directory, `.nox/artefacts/ci/<run>/`: the only run in this repository.)
    (child_log_path,) = (repo / ".nox" / "artefacts" / "ci").glob("*/test.log")
    child_log = child_log_path.read_text()
    assert "cleanup" in child_log, child_log


# ----- interrupted and killed service starts (a state directory of their own) ------------------
def start_private_run(private: PrivateState, branch: str, tmp_path: Path) -> subprocess.Popen:
    return start_run(branch, tmp_path, workers=1, **private.env)


def wait_for_recorded(private: PrivateState, name: str, run: subprocess.Popen, tmp_path: Path, branch: str) -> None:
    """Until the service `name` has a process record (its start is under way, or just done)."""
    deadline = time.monotonic() + 240
    while private.native._load()[name].process is None:
        assert run.poll() is None, output(branch, tmp_path)
        assert time.monotonic() < deadline, output(branch, tmp_path)
        time.sleep(0.01)


@PRIVATE
@pytest.mark.parametrize("service", ["postgres", "s3"])
def test_ctrl_c_during_service_start_stops_what_it_started(private, tmp_path, service):
    branch = unique("startint")
    run = start_private_run(private, branch, tmp_path)
    try:
        wait_for_recorded(private, service, run, tmp_path, branch)
        os.killpg(run.pid, signal.SIGINT)
        os.kill(run.pid, signal.SIGINT)
        code = run.wait(timeout=180)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    text = output(branch, tmp_path)
    assert "Traceback" not in text
    # Whether the signal lands mid-start or just after, the run ends 130 and stops what it started.
    assert code == 130, text
    # Nothing runs that nobody would stop: the services it started are stopped, the record is empty.
    assert not private.native.running(), private.processes()
    assert private.recorded()["services"] is None
    assert private.recorded()["leases"] == []
    assert processes.group_members(run.pid) == []


@PRIVATE
def test_sigkill_during_postgres_start_is_recovered_by_the_next_run(private, tmp_path):
    branch = unique("startkill")
    namespace = sanitize_namespace(branch)
    run = start_private_run(private, branch, tmp_path)
    try:
        wait_for_recorded(private, "postgres", run, tmp_path, branch)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=60)
    # What it started is on record as a test run's: not "unknown", not kept.
    assert private.recorded()["services"] == {"backend": "native", "kept": False, "started_by": "test"}

    again = start_private_run(private, branch, tmp_path)
    assert again.wait(timeout=300) == 0, output(branch, tmp_path)
    text = output(branch, tmp_path)
    assert "we did not start" not in text
    # The last lease out stops the services a test run started.
    assert "services   stopped (last lease out)" in text, text
    assert not private.native.running()
    assert private.recorded() == {"leases": [], "services": None}
    assert run_processes(namespace) == []


# ----- the gate itself: one exception per run, cleanup never cut short --------------------------
GATE_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    sys.path.insert(0, {repo!r})
    from noxlib.core.signals import interrupt_once, signals_deferred

    first, second = int(sys.argv[1]), int(sys.argv[2])
    with interrupt_once():
        try:
            os.kill(os.getpid(), first)
            time.sleep(30)
            print("not interrupted", flush=True)
        finally:
            with signals_deferred():
                os.kill(os.getpid(), second)  # uv's forwarded copy, or a second Ctrl+C
                time.sleep(0.2)
                print("cleanup done", flush=True)
    """
)


@pytest.mark.parametrize(
    ("first", "second", "code"),
    [
        (signal.SIGINT, signal.SIGINT, -signal.SIGINT),  # Python ends on KeyboardInterrupt by SIGINT: 130
        (signal.SIGTERM, signal.SIGINT, 143),
        (signal.SIGHUP, signal.SIGHUP, 129),
    ],
)
def test_the_first_signal_interrupts_and_a_second_waits_for_cleanup(tmp_path, first, second, code):
    script = tmp_path / "gate.py"
    script.write_text(GATE_SCRIPT.format(repo=str(REPO)))
    result = subprocess.run(
        [sys.executable, str(script), str(int(first)), str(int(second))],
        capture_output=True, text=True, timeout=60, preexec_fn=_terminal_signals, check=False,
    )  # fmt: skip
    assert result.returncode == code, result.stderr
    assert result.stdout.splitlines() == ["cleanup done"], result.stdout + result.stderr


def test_a_signal_inherited_as_ignored_stays_ignored(tmp_path):
    """`nohup` and background jobs ignore signals on purpose: the gate does not undo that."""
    script = tmp_path / "gate.py"
    script.write_text(GATE_SCRIPT.format(repo=str(REPO)).replace("time.sleep(30)", "time.sleep(0.5)"))
    result = subprocess.run(
        [sys.executable, str(script), str(int(signal.SIGHUP)), str(int(signal.SIGHUP))],
        capture_output=True, text=True, timeout=60, check=False,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["not interrupted", "cleanup done"]


SWALLOWING_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    sys.path.insert(0, {repo!r})
    from noxlib.core.signals import interrupt_once

    with interrupt_once():
        try:
            os.kill(os.getpid(), int(sys.argv[1]))
            time.sleep(30)
        except KeyboardInterrupt:
            pass  # what nox's popen does when the command it waited for still exits 0
        print("swallowed", flush=True)
    print("not interrupted", flush=True)
    """
)


def run_script(tmp_path: Path, script: str, sig: int) -> subprocess.CompletedProcess[str]:
    """Run one of the gate's scripts with `sig` as its argument, the way a terminal starts it."""
    path = tmp_path / "gate_script.py"
    path.write_text(script.format(repo=str(REPO)))
    return subprocess.run(
        [sys.executable, str(path), str(int(sig))],
        capture_output=True, text=True, timeout=60, preexec_fn=_terminal_signals, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("sig", "code"),
    [(signal.SIGINT, -signal.SIGINT), (signal.SIGTERM, 143), (signal.SIGHUP, 129)],
)
def test_an_interrupt_swallowed_inside_the_gate_still_ends_the_run(tmp_path, sig, code):
    """A SIGHUP during `nox -s test` once ended "successful": nox dropped the interrupt because pytest exited 0."""
    result = run_script(tmp_path, SWALLOWING_SCRIPT, sig)
    assert result.returncode == code, result.stderr
    assert result.stdout.splitlines() == ["swallowed"], result.stdout + result.stderr


LOST_IN_A_FINALISER_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    sys.path.insert(0, {repo!r})
    from noxlib.core.signals import interrupt_once, raise_if_lost

    class Finaliser:
        def __del__(self):
            os.kill(os.getpid(), int(sys.argv[1]))
            time.sleep(0.5)  # the handler runs here, where Python only prints what it raises

    with interrupt_once():
        try:
            Finaliser()  # dropped at once: the interrupt is raised inside __del__ and lost
            print("lost", flush=True)
            for _ in range(300):  # a scheduler's wait loop (ci's), 30 s
                raise_if_lost()
                time.sleep(0.1)
            print("waited to the end", flush=True)
        finally:
            print("cleanup done", flush=True)
    """
)


@pytest.mark.parametrize(
    ("sig", "code"),
    [(signal.SIGINT, -signal.SIGINT), (signal.SIGTERM, 143)],
)
def test_an_interrupt_lost_in_a_finaliser_ends_the_loop_that_outlives_it(tmp_path, sig, code):
    """Ctrl+C in `ci`'s live view was once raised in a WeakSet callback, printed, and dropped: ci ran on."""
    result = run_script(tmp_path, LOST_IN_A_FINALISER_SCRIPT, sig)
    assert "Exception ignored" in result.stderr, result.stderr  # the way it was lost
    assert result.returncode == code, result.stderr
    assert result.stdout.splitlines() == ["lost", "cleanup done"], result.stdout + result.stderr
