"""`nox -l` stays cheap: importing the noxfile loads no client library.

Every nox command imports noxfile.py and with it noxlib. boto3, redis, psycopg and friends take
seconds together to import; they belong inside the functions of the sessions that use them. This
checks what is loaded, not how long it takes: a time would depend on the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.runs import REPO

# Each is a top-level package the suite depends on and that takes a noticeable share of a
# second to import (measured with `python -X importtime`; see docs/development.md).
# rich draws `nox -s ci`'s live view and is imported only when that view is shown.
HEAVY = ("boto3", "botocore", "s3transfer", "redis", "psycopg", "psutil", "filelock", "yaml", "rich", "docker")

IMPORT_NOXFILE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("noxfile", "noxfile.py")
spec.loader.exec_module(importlib.util.module_from_spec(spec))
loaded = sorted({name.split(".")[0] for name in sys.modules} & set(sys.argv[1:]))
print(json.dumps(loaded))
"""


def loaded_after(code: str, *watched: str) -> list[str]:
    """Which of `watched` a fresh interpreter has imported after running `code` in the checkout."""
    result = subprocess.run(
        [sys.executable, "-c", code, *watched], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_the_noxfile_loads_no_client_library():
    assert loaded_after(IMPORT_NOXFILE, *HEAVY) == []


@pytest.mark.parametrize("package", HEAVY)
def test_each_watched_library_is_installed_and_would_be_seen(package):
    """Guards the test above: a watched name that never imports could never be reported."""
    code = f"import {package}\n" + IMPORT_NOXFILE
    assert loaded_after(code, package) == [package]
