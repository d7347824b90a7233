"""With PYTHONDONTWRITEBYTECODE set, bytecode is still kept: under .nox/pycache, never in sources.

Real interpreters: the noxfile's `keep_bytecode()` runs in a fresh Python.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from noxlib.ci.bytecode import BYTECODE_DIR
from tests.runs import REPO

# Runs keep_bytecode(), then imports a module of its own and reports what Python did.
AFTER_KEEP = """
import importlib, json, os, sys
sys.path.insert(0, sys.argv[1])
from noxlib.ci.bytecode import as_the_person_set_it, keep_bytecode
keep_bytecode()
restored = as_the_person_set_it(dict(os.environ))
sys.path.insert(0, sys.argv[2])
importlib.import_module("fresh_module")
print(json.dumps({
    "prefix": sys.pycache_prefix,
    "dont_write": sys.dont_write_bytecode,
    "env_prefix": os.environ.get("PYTHONPYCACHEPREFIX"),
    "env_dont_write": os.environ.get("PYTHONDONTWRITEBYTECODE"),
    "restored": [restored.get("PYTHONDONTWRITEBYTECODE"), restored.get("PYTHONPYCACHEPREFIX")],
}))
"""


def without_bytecode_settings(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPYCACHEPREFIX", "PYTHONDONTWRITEBYTECODE")}
    return env | extra


def keep_in_fresh_python(tmp_path: Path, **env: str) -> dict[str, object]:
    source = tmp_path / "src"
    source.mkdir(exist_ok=True)
    (source / "fresh_module.py").write_text("VALUE = 1\n")
    result = subprocess.run(
        [sys.executable, "-c", AFTER_KEEP, str(REPO), str(source)],
        env=without_bytecode_settings(**env),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def compiled_copies(prefix: Path, source: Path) -> list[Path]:
    """The bytecode of `source` under a pycache prefix (which mirrors absolute source paths)."""
    mirrored = prefix / source.parent.relative_to(source.anchor)
    return sorted(mirrored.glob(f"{source.stem}.*.pyc"))


def test_bytecode_goes_under_nox_not_beside_the_sources(tmp_path: Path) -> None:
    state = keep_in_fresh_python(tmp_path, PYTHONDONTWRITEBYTECODE="1")
    assert state == {
        "prefix": str(BYTECODE_DIR),
        "dont_write": False,
        "env_prefix": str(BYTECODE_DIR),  # what the sessions' processes inherit
        "env_dont_write": None,
        # A command run as from the person's terminal (the benchmark's) gets their setting back.
        "restored": ["1", None],
    }
    assert not (tmp_path / "src" / "__pycache__").exists()
    assert compiled_copies(BYTECODE_DIR, tmp_path / "src" / "fresh_module.py")


def test_a_prefix_the_person_chose_is_kept(tmp_path: Path) -> None:
    chosen = tmp_path / "my-pycache"
    state = keep_in_fresh_python(tmp_path, PYTHONDONTWRITEBYTECODE="1", PYTHONPYCACHEPREFIX=str(chosen))
    assert state["prefix"] == state["env_prefix"] == str(chosen)
    assert state["restored"] == ["1", str(chosen)]
    assert compiled_copies(chosen, tmp_path / "src" / "fresh_module.py")


def test_without_the_variable_nothing_changes(tmp_path: Path) -> None:
    state = keep_in_fresh_python(tmp_path)
    assert state == {
        "prefix": None, "dont_write": False, "env_prefix": None, "env_dont_write": None, "restored": [None, None],
    }  # fmt: skip
    assert list((tmp_path / "src" / "__pycache__").glob("fresh_module.*.pyc"))


def test_the_noxfile_keeps_bytecode_before_it_imports_noxlib() -> None:
    """Every nox command imports the noxfile: that is where the setting has to take effect."""
    code = (
        "import importlib.util, json, os, sys\n"
        "spec = importlib.util.spec_from_file_location('noxfile', 'noxfile.py')\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "noxlib_files = [m.__cached__ for n, m in sys.modules.items() if n.startswith('noxlib.')]\n"
        "print(json.dumps([os.environ.get('PYTHONPYCACHEPREFIX'), sorted(set(noxlib_files))]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=without_bytecode_settings(PYTHONDONTWRITEBYTECODE="1"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    prefix, cached = json.loads(result.stdout.splitlines()[-1])
    assert prefix == str(BYTECODE_DIR)
    # Only the module that sets the prefix (and what it needs, with their packages) was imported before it.
    beside_sources = [path for path in cached if not path.startswith(str(BYTECODE_DIR))]
    assert all(Path(path).is_relative_to(REPO / "noxlib") for path in beside_sources), beside_sources
    assert len(beside_sources) <= 5, beside_sources
    assert len(cached) > len(beside_sources)
