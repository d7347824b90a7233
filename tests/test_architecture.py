"""The layout rules docs/architecture.md is built with: they catch what they name, and noxlib keeps them.

The docs build fails on a break (docs/hooks/architecture.py); these tests show it would, on a
package made to break each rule, so a rule that silently stopped checking is noticed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.docs  # reads docs/: docs_check runs it when the docs or noxlib change

REPO = Path(__file__).resolve().parent.parent


def load_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("architecture_hook", REPO / "docs" / "hooks" / "architecture.py")
    assert spec is not None
    assert spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    return hook


def package(root: Path, files: dict[str, str]) -> Path:
    """A package named noxlib under `root` with every room's `__init__.py` and `files`."""
    hook = load_hook()
    noxlib = root / "noxlib"
    for room in hook.ROOMS:
        (noxlib / room).mkdir(parents=True)
        (noxlib / room / "__init__.py").write_text(f'"""The {room} room."""\n')
    (noxlib / "__init__.py").write_text("")
    for name, text in files.items():
        (noxlib / name).write_text(text)
    return noxlib


def test_a_downward_import_is_drawn_as_an_arrow(tmp_path: Path) -> None:
    root = package(tmp_path, {"core/paths.py": '"""Paths."""\n', "run/leases.py": "from noxlib.core import paths\n"})
    assert "    run --> core" in load_hook().render(root)


def test_a_circle_and_an_upward_import_fail_the_build(tmp_path: Path) -> None:
    root = package(tmp_path, {
        "core/paths.py": "def late():\n    from noxlib.run import leases\n",
        "run/leases.py": "import noxlib.core.paths\n",
    })  # fmt: skip
    hook = load_hook()
    with pytest.raises(hook.LayoutError) as raised:
        hook.render(root)
    assert "import circle: noxlib.core.paths ↔ noxlib.run.leases" in str(raised.value)
    assert "an arrow upward, from core/ into run/" in str(raised.value)


def test_a_module_over_400_lines_fails_the_build(tmp_path: Path) -> None:
    root = package(tmp_path, {"core/paths.py": "x = 1\n" * 401, "core/signals.py": "x = 1\n" * 400})
    hook = load_hook()
    with pytest.raises(hook.LayoutError) as raised:
        hook.render(root)
    assert str(raised.value).splitlines()[1:] == ["  noxlib.core.paths: 401 lines, over 400"]


def test_noxlib_keeps_the_rules() -> None:
    """The real package: no circle, no upward arrow, no module over 400 lines, none outside a room."""
    hook = load_hook()
    drawn = hook.render()
    assert all(f"### `{room}/`" in drawn for room in hook.ROOMS)
