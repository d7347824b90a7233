"""services.json: which native service runs as which process (PID + start time), on which port.

Written after every start; read back entry by entry, because a file torn by a crash or edited
by hand must cost nothing worse than the services being looked for (see `NativeServices._load`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from noxlib.core.json_store import move_aside, write_atomically
from noxlib.core.processes import TrackedProcess


@dataclass
class RecordedService:
    name: str
    port: int
    process: TrackedProcess | None

    def running(self) -> bool:
        return self.process is not None and self.process.is_running()


def read_record(path: Path, names: Iterable[str]) -> dict[str, Any]:
    """The record's entries for `names`; a corrupt file is moved aside and reads as empty."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except IsADirectoryError:
        move_aside(path, "the native services record", "a directory, not a file")
        return {}
    try:
        data = json.loads(raw) if raw.strip() else {}
        check_record(data, names)
    except (ValueError, TypeError) as error:
        move_aside(path, "the native services record", str(error) or type(error).__name__)
        return {}
    return data


def check_record(data: object, names: Iterable[str]) -> None:
    """Raise ValueError naming the first field that is not what `write_record` writes."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    for name in names:
        entry = data.get(name)
        if entry is None:
            continue
        if not isinstance(entry, dict):
            raise ValueError(f"{name} is not an object")
        port = entry.get("port")
        if port is not None and (type(port) is not int or not 0 < port < 65536):
            raise ValueError(f"{name}.port is {port!r}, not a port number")
        process = entry.get("process")
        if process is None:
            continue
        if not isinstance(process, dict):
            raise ValueError(f"{name}.process is not an object")
        if not isinstance(process.get("name"), str) or type(process.get("pid")) is not int:
            raise ValueError(f"{name}.process lacks its name or pid")
        if not isinstance(process.get("create_time"), int | float) or isinstance(process.get("create_time"), bool):
            raise ValueError(f"{name}.process lacks its start time")


def write_record(path: Path, services: dict[str, RecordedService]) -> None:
    data = {
        name: {"port": s.port, "process": s.process.to_dict() if s.process else None} for name, s in services.items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps(data, indent=2))
