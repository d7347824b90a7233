"""A stand-in `docker`/`podman` CLI, for what a real engine cannot show: one that does not answer.

tests/test_compose.py puts it on PATH under the engine's name (a shell wrapper that runs
`python fake_engine.py "$0" "$@"`, so the first argument says which engine was called) to test
engine detection: which CLI is asked, CONTAINER_RUNTIME, a podman whose API socket is gone.
Everything else about compose is tested against a real engine. It appends every argv it gets to
$FAKE_ENGINE_LOG as one JSON line; `info` prints $FAKE_ENGINE_SOCKET (where podman says its API
answers) and exits with $FAKE_ENGINE_INFO_EXIT (default 0); any other command fails, so a test
that reaches one notices.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """`argv` is the wrapper's path (the engine's name) followed by the arguments the caller gave."""
    program, args = Path(argv[0]).name, argv[1:]
    with open(os.environ["FAKE_ENGINE_LOG"], "a") as log:
        log.write(json.dumps([program, *args]) + "\n")
    if args[:1] == ["info"]:
        print(os.environ.get("FAKE_ENGINE_SOCKET", ""))
        return int(os.environ.get("FAKE_ENGINE_INFO_EXIT", "0"))
    print(f"fake {program}: {' '.join(args[:2])} is not imitated; use a real engine", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
