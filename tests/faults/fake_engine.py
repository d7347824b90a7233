"""A stand-in `docker`/`podman` CLI: no container engine can run on the test machine.

tests/test_compose.py puts it on PATH under the engine's name: a shell wrapper that runs
`python fake_engine.py "$0" "$@"`, so the first argument says which engine was called. It appends
every argv it gets to $FAKE_ENGINE_LOG as one JSON line and answers like the real CLI would:

- `info` exits with $FAKE_ENGINE_INFO_EXIT (default 0: the engine answers);
- `compose ... port SERVICE PORT` prints $FAKE_ENGINE_PORT_<SERVICE> or a default host address;
- `compose ... ps ...` prints the services named in $FAKE_ENGINE_RUNNING, one a line;
- `compose ... up ...` exits with $FAKE_ENGINE_UP_EXIT, printing an error line when it fails.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

DEFAULT_PORTS = {"postgres": "127.0.0.1:49153", "redis": "0.0.0.0:49154", "minio": "[::1]:49155"}


def main(argv: list[str]) -> int:
    """`argv` is the wrapper's path (the engine's name) followed by the arguments the caller gave."""
    program, args = Path(argv[0]).name, argv[1:]
    with open(os.environ["FAKE_ENGINE_LOG"], "a") as log:
        log.write(json.dumps([program, *args]) + "\n")
    if args[:1] == ["info"]:
        return int(os.environ.get("FAKE_ENGINE_INFO_EXIT", "0"))
    if "port" in args:
        service = args[args.index("port") + 1]
        print(os.environ.get(f"FAKE_ENGINE_PORT_{service.upper()}", DEFAULT_PORTS.get(service, "")))
        return 0
    if "ps" in args:
        print("\n".join(os.environ.get("FAKE_ENGINE_RUNNING", "").split()))
        return 0
    if "up" in args:
        code = int(os.environ.get("FAKE_ENGINE_UP_EXIT", "0"))
        if code:
            print("Error response from daemon: port is already allocated", file=sys.stderr)
        return code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
