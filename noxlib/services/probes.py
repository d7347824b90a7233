"""Is it answering? One cheap probe per service, shared by every backend.

Each probe has a short timeout: a dead dependency must turn into `False` quickly, never a hang.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from noxlib.services.base import ServiceUrls


def postgres_ready(urls: ServiceUrls) -> bool:
    # Imported here, not at the top: `nox -l` and sessions without services never pay for the clients.
    import psycopg

    try:
        with psycopg.connect(urls.database_url(), connect_timeout=2) as connection:
            connection.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def redis_ready(urls: ServiceUrls) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(urls.redis_url, socket_connect_timeout=1, socket_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


def http_answers(url: str, timeout: float = 2) -> bool:
    """Any HTTP answer below 500 means the server is up (anonymous requests may get 403)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback URLs
            return bool(response.status < 500)
    except urllib.error.HTTPError as error:
        return error.code < 500
    except OSError:
        return False


def s3_ready(urls: ServiceUrls) -> bool:
    return http_answers(urls.s3_endpoint)


def all_ready(urls: ServiceUrls) -> bool:
    return postgres_ready(urls) and redis_ready(urls) and s3_ready(urls)
