"""What `nox -s ci` shows while it runs: plain lines in a log, a live view at a terminal.

The live view is tested where it is used, on a pseudo-terminal of its own (`pty.fork`: its own
session, so a Ctrl+C typed there reaches the program as from a person's keyboard).
"""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from noxlib.ci import progress as ci_progress
from noxlib.ci import runner as ci

REPO = Path(__file__).resolve().parent.parent
# CSI sequences (colours, cursor moves, erase) and the carriage returns of a redraw.
CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\r")
HIDE_CURSOR, SHOW_CURSOR = "\x1b[?25l", "\x1b[?25h"


# ----- the estimate of what is left ------------------------------------------------------------
def test_time_left_gives_each_pending_session_the_job_that_frees_first():
    # Two jobs busy for 10 s and 2 s; 8 s goes after the 2 s one (ends at 10), 5 s after
    # either (15), 1 s after the other (11): the run ends at 15.
    assert ci_progress.time_left([10.0, 2.0], [8.0, 5.0, 1.0], jobs=2) == 15.0
    assert ci_progress.time_left([], [30.0, 20.0, 10.0], jobs=3) == 30.0
    assert ci_progress.time_left([], [30.0, 20.0, 10.0], jobs=1) == 60.0
    # A free job takes a pending session at once.
    assert ci_progress.time_left([4.0], [3.0], jobs=2) == 4.0
    assert ci_progress.time_left([], [], jobs=4) == 0.0
    assert ci_progress.describe_left(42.4) == "~42 s left"
    assert ci_progress.describe_left(600.0) == "~10 min left"


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_live_view_is_for_a_person_at_a_terminal_only():
    terminal = FakeTerminal()
    assert ci_progress.interactive(terminal, {"TERM": "xterm-256color"})
    assert not ci_progress.interactive(terminal, {"TERM": "xterm-256color", "CI": "true"})
    assert not ci_progress.interactive(terminal, {"TERM": "dumb"})
    assert not ci_progress.interactive(io.StringIO(), {"TERM": "xterm-256color"})


# ----- plain lines ---------------------------------------------------------------------------
def test_plain_mode_prints_the_lines_ci_always_printed(capsys):
    log = Path(".nox/artefacts/ci/lint.log")
    with ci_progress.progress(["lint", "docs", "test"], {"lint": 3.0}, jobs=2, live=False) as view:
        view.started("lint", log)
        view.started("test", None)  # -j 1: the session's own output follows on the terminal
        view.cached("docs")
        view.finished(ci.Outcome("lint", "passed", 12.34), log)
        view.line("    its tail")
    assert capsys.readouterr().out.splitlines() == [
        f"━━━ nox -s lint (log {log})",
        "━━━ nox -s test",
        "━━━ nox -s docs: cached (inputs unchanged since its last green run)",
        f"━━━ nox -s lint: passed (12.3s, log {log})",
        "    its tail",
    ]


# ----- a terminal of its own -----------------------------------------------------------------
class Terminal:
    """A program on its own pseudo-terminal, read as a person's screen would show it."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: nothing of pytest may run here
            try:
                # A terminal's program starts with Ctrl+C and hang-up at their defaults; a suite
                # started as a background job (or under nohup) would hand them on ignored.
                for sig in (signal.SIGINT, signal.SIGHUP):
                    signal.signal(sig, signal.SIG_DFL)
                os.chdir(cwd)
                os.execvpe(argv[0], argv, env)  # noqa: S606 - argv is the program, as a shell would not add
            finally:
                os._exit(127)
        self.raw = ""

    def read(self, timeout: float) -> bool:
        """Take what the program wrote within `timeout`; False once it closed the terminal."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # EIO: the program and its terminal are gone
            return False
        self.raw += chunk.decode(errors="replace")
        return bool(chunk)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            assert time.monotonic() < deadline, f"{text!r} never showed:\n{self.screen}"
            assert self.read(0.2), f"ended before {text!r} showed:\n{self.screen}"

    def press_ctrl_c(self) -> None:
        os.write(self.fd, b"\x03")

    def wait(self, timeout: float = 120) -> int:
        deadline = time.monotonic() + timeout
        while self.read(0.2):
            assert time.monotonic() < deadline, f"still running:\n{self.screen}"
        os.close(self.fd)
        return os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])

    @property
    def screen(self) -> str:
        """Every frame the program drew, without colours and cursor moves."""
        return CONTROL.sub("", self.raw)

    def cursor_shown(self) -> bool:
        """A terminal left sane: the cursor the live view hid is back."""
        return self.raw.rfind(SHOW_CURSOR) > self.raw.rfind(HIDE_CURSOR)


def terminal_env() -> dict[str, str]:
    env = {k: v for k, v in ci.nested_nox_env().items() if k != "CI"}
    return dict(env, TERM="xterm-256color", COLUMNS="120", LINES="40")


LIVE_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path

    sys.path.insert(0, {repo!r})
    from noxlib.ci import runner as ci
    from noxlib.ci import progress as ci_progress

    live = ci_progress.interactive()
    with ci_progress.progress(["slow", "quick", "later"], {{"slow": 30.0, "quick": 4.0}}, jobs=2, live=live) as view:
        view.started("slow", Path("slow.log"))
        view.started("quick", Path("quick.log"))
        time.sleep(1.5)
        view.finished(ci.Outcome("quick", "FAILED", 1.5), Path("quick.log"))
        view.line("    quick's [bold]log[/bold] tail")
        time.sleep(1.0)
    print("the summary")
    """
)


def test_the_live_view_shows_running_sessions_against_their_time_on_record(tmp_path):
    script = tmp_path / "live.py"
    script.write_text(LIVE_SCRIPT.format(repo=str(REPO)))
    terminal = Terminal([sys.executable, str(script)], tmp_path, terminal_env())
    assert terminal.wait() == 0, terminal.screen
    screen = terminal.screen
    assert re.search(r"slow +.*\d s / 30 s", screen), screen
    assert re.search(r"quick +.*\d s / 4 s", screen), screen
    # 30 s for slow; `later` (nothing on record) counts as 0 s.
    assert re.search(r"ci: 0 of 3 done, 2 running, 1 waiting +~(2\d|30) s left", screen), screen
    assert "ci: 1 of 3 done, 1 running, 1 waiting" in screen
    # The result and the tail stay above the view, as printed (no markup read into a log).
    assert "━━━ nox -s quick: FAILED (1.5s, log quick.log)" in screen
    assert "    quick's [bold]log[/bold] tail" in screen
    assert [line for line in screen.splitlines() if line.strip()][-1] == "the summary"
    assert terminal.cursor_shown()


# ----- journeys: `nox -s ci` at a terminal ---------------------------------------------------
NOXFILE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path

    import nox

    sys.path.insert(0, {repo!r})
    import noxlib.ci.runner as local_ci
    from noxlib.core.errors import reported

    HERE = Path(__file__).parent


    @nox.session(python=False)
    @reported
    def ci(session):
        local_ci.run(session, Path(__file__))


    @nox.session(python=False, tags=["ci"])
    def slow(session):
        time.sleep(float((HERE / "slow-seconds").read_text()))


    @nox.session(python=False, tags=["ci"])
    def quick(session):
        pass


    @nox.session(python=False, tags=["ci"])
    def broken(session):
        session.error("docs are broken")
    """
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "noxfile.py").write_text(NOXFILE.format(repo=str(REPO)))
    (tmp_path / ".nox").mkdir()
    (tmp_path / ".nox" / ci.DURATIONS_NAME).write_text(json.dumps({"slow": 40.0, "quick": 1.0, "broken": 1.0}))
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    return tmp_path


def nox_ci(repo: Path) -> Terminal:
    argv = [sys.executable, "-m", "nox", "-f", str(repo / "noxfile.py"), "-s", "ci", "--", "--no-cache", "-j", "3"]
    return Terminal(argv, repo, terminal_env())


def test_ci_at_a_terminal_shows_the_live_view_and_ends_with_the_summary(repo):
    (repo / "slow-seconds").write_text("3")
    terminal = nox_ci(repo)
    assert terminal.wait() != 0, terminal.screen  # broken fails the run
    screen = terminal.screen
    assert re.search(r"slow +.*\d s / 40 s", screen), screen
    assert re.search(r"~\d+ s left", screen), screen
    # A failure's result and log tail are printed above the view.
    assert "━━━ nox -s broken: FAILED" in screen
    assert "docs are broken" in screen
    lines = [line for line in screen.splitlines() if line.strip()]
    summary = lines.index("ci: 2 passed, 1 failed, 0 cached, 0 skipped")
    assert lines[summary + 1] == "2 passed, 1 failed, 0 skipped"
    assert terminal.cursor_shown()


def test_ctrl_c_during_the_live_view_leaves_the_terminal_sane_and_prints_the_summary(repo):
    (repo / "slow-seconds").write_text("120")
    terminal = nox_ci(repo)
    # The view is up, slow still runs and only it: on a loaded machine quick may end after broken.
    terminal.wait_for("━━━ nox -s broken: FAILED")
    terminal.wait_for("━━━ nox -s quick: passed")
    terminal.wait_for("s / 40 s")
    terminal.press_ctrl_c()
    assert terminal.wait() == 130, terminal.screen
    screen = terminal.screen
    assert "SIGINT: waiting for slow to clean up" in screen
    assert re.search(r"^slow +stopped ", screen, re.MULTILINE), screen
    assert "ci: 1 passed, 1 failed, 0 cached, 0 skipped, 1 stopped" in screen
    assert terminal.cursor_shown()
