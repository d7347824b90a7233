"""`nox -s audit_inputs`: the inputs each ci session declares, checked against what it really reads.

`nox -s ci` skips a session whose declared inputs are unchanged, so a file a session reads but
does not declare would let a stale green result stand. Two checks keep the declarations honest:

- every tracked file is some ci session's input (cheap: git alone), so a new kind of file cannot
  slip past every session unnoticed;
- each ci session, run once under `strace -f` (every process it starts, ruff and node included,
  which an in-Python audit hook would miss), opens no tracked file outside its inputs. One
  audited run per session is enough: a session that starts reading a new file fails the next
  audit, and `--no-trace` keeps the cheap check for every run of the suite's tests.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from noxlib.ci.arguments import arguments
from noxlib.ci.cache import declaration, input_files, tracked_files
from noxlib.ci.listing import ci_sessions, nested_nox_env
from noxlib.ci.runner import local_plan
from noxlib.core.errors import UserError
from noxlib.core.paths import REPO_ROOT

if TYPE_CHECKING:
    import nox

# `strace -y` decorates a returned descriptor with the file it opened, resolved and absolute:
# `openat(AT_FDCWD</repo>, "noxlib/x.py", O_RDONLY|O_CLOEXEC) = 3</repo/noxlib/x.py>`.
_OPENED = re.compile(r"^\d+\s+open(?:at)?\(.*?, (?P<flags>O_[A-Z_|]+)[^)]*\)\s+=\s+\d+<(?P<path>.+)>$")


def unclaimed_files(sessions: Iterable[str], root: Path) -> list[str]:
    """Tracked files that are no listed session's input."""
    claimed: set[str] = set()
    for name in sessions:
        claimed.update(input_files(name, root))
    return [name for name in tracked_files(root) if name not in claimed]


def opened_files(trace: Path, root: Path) -> set[str]:
    """Files under `root` that the traced processes opened for reading, relative to `root`."""
    base = str(root.resolve()) + os.sep
    opened: set[str] = set()
    for line in trace.read_text(errors="replace").splitlines():
        match = _OPENED.match(line)
        if match and "O_WRONLY" not in match["flags"] and match["path"].startswith(base):
            opened.add(match["path"][len(base) :])
    return opened


def undeclared_reads(name: str, opened: set[str], root: Path) -> list[str]:
    """Tracked files the session opened that it does not declare."""
    return sorted((opened & set(tracked_files(root))) - set(input_files(name, root)))


class SessionFailed(Exception):
    """The traced session did not pass: what it read is no evidence either way."""


def trace_session(name: str, root: Path, env: dict[str, str], log: Callable[[str], Any]) -> set[str]:
    """Run `nox -s NAME` once under strace; the repository files it opened."""
    strace = shutil.which("strace")
    if strace is None:
        raise UserError("audit_inputs needs strace (`apt-get install strace`); `-- --no-trace` runs the cheap check")
    with tempfile.TemporaryDirectory(prefix="audit-") as scratch:
        trace = Path(scratch) / "trace"
        command = [
            strace, "-f", "--seccomp-bpf", "-qq", "-y", "-s", "4096", "-e", "trace=open,openat",
            "-e", "status=successful", "-o", str(trace),
            sys.executable, "-m", "nox", "--noxfile", str(root / "noxfile.py"), "--non-interactive",
            "--no-dependencies", "-s", name,
        ]  # fmt: skip
        log(f"audit: nox -s {name} under strace")
        result = subprocess.run(
            command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False
        )
        if result.returncode != 0:
            tail = result.stdout.decode(errors="replace").strip().splitlines()[-15:]
            raise SessionFailed(
                f"{name} failed under the audit, so its reads prove nothing:\n    " + "\n    ".join(tail)
            )
        return opened_files(trace, root)


def audit(
    names: list[str],
    *,
    all_ci: list[str],
    root: Path,
    env: dict[str, str],
    trace: bool,
    log: Callable[[str], Any],
    unread: set[str] = frozenset(),  # type: ignore[assignment]
) -> list[str]:
    """The audit's findings, one line each (none: the declarations hold); `unread` files need no session."""
    unclaimed = [path for path in unclaimed_files(all_ci, root) if path not in unread]
    findings = [f"{path}: no ci session declares it as an input" for path in unclaimed]
    for name in names if trace else []:
        try:
            opened = trace_session(name, root, env, log)
        except SessionFailed as failed:
            findings.append(str(failed))
            continue
        undeclared = undeclared_reads(name, opened, root)
        findings += [f"{name} reads {path}, which is not among its inputs" for path in undeclared]
        log(f"audit: {name}: {len(undeclared)} undeclared read(s)")
    return findings


def add_options(parser: argparse.ArgumentParser) -> None:
    """`nox -s audit_inputs -- [SESSION ...] [--no-trace]`."""
    parser.add_argument("sessions", nargs="*", help="ci sessions to trace (default: every one ci runs here)")
    parser.add_argument("--no-trace", action="store_true", help="only check that every tracked file is an input")


def run(session: nox.Session, noxfile: Path = REPO_ROOT / "noxfile.py", unread: dict[str, str] | None = None) -> None:
    """Entry point of `audit_inputs`: the declared inputs against git, and (unless --no-trace) strace."""
    options = arguments(session)
    sessions = ci_sessions(noxfile)
    plan, _ = local_plan(sessions, full=False)
    every = sorted({*plan, *(entry["session"] for entry in sessions)})
    traced = options.sessions or [name for name in plan if declaration(name).cacheable]
    unknown = sorted(set(traced) - set(every))
    if unknown:
        raise UserError(f"nox -s audit_inputs: {', '.join(unknown)} is no ci session; choose from {', '.join(plan)}")
    findings = audit(
        traced, all_ci=every, root=noxfile.parent, env=nested_nox_env(), trace=not options.no_trace, log=session.log,
        unread=set(unread or ()),
    )  # fmt: skip
    if findings:
        raise UserError(f"{len(findings)} input declaration(s) to fix in noxfile.py:\n  " + "\n  ".join(findings))
    traced_count = 0 if options.no_trace else len(traced)
    session.log(f"inputs: every tracked file is a ci session's input; {traced_count} session(s) traced clean")
