"""The native S3 checks who is asking and keeps what it was given.

moto, the native S3 before, let boto3 with a wrong secret put, get and delete objects, let an
unsigned `curl -X PUT` create a bucket, and lost every object when it stopped: after `down` and
`dev` every statement row pointed at nothing. These tests play the other account on the machine
(real clients, wrong or no credentials, the server's internal HTTP ports) and restart the
services the way a user does (`nox -s down`, then `nox -s infra`).
"""

# The private-state fixtures are shared with test_faults.py by import; pytest injects them by name.
# ruff: noqa: F811

from __future__ import annotations

import socket
import ssl
import stat
import urllib.error
import urllib.request
import uuid
from typing import Any

import boto3
import psutil
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from noxlib.services.base import ServiceUrls
from tests.test_faults import (  # noqa: F401
    PRIVATE,
    PrivateState,
    assert_stopped,
    private,
    private_state,
)

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def client(urls: ServiceUrls, *, access_key: str | None = None, secret_key: str | None = None) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=urls.s3_endpoint,
        aws_access_key_id=access_key or urls.s3_access_key,
        aws_secret_access_key=secret_key or urls.s3_secret_key,
        region_name=urls.s3_region,
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )


def error_of(call: Any) -> tuple[int, str]:
    """The HTTP status and S3 error code a call was refused with; fails when it was not refused."""
    with pytest.raises(ClientError) as refused:
        call()
    response = refused.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def unsigned(method: str, url: str, body: bytes | None = None) -> int:
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 - loopback URLs
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def weed_flag(private: PrivateState, flag: str) -> str:
    """A flag's value on the running weed's command line (its internal ports are chosen at start)."""
    process = private.processes()["s3"]
    assert process is not None
    prefix = f"-{flag}="
    return next(arg[len(prefix) :] for arg in psutil.Process(process.pid).cmdline() if arg.startswith(prefix))


def grpc_refuses_a_stranger(private: PrivateState, port: int) -> bool:
    """A client that trusts the server's authority but has no certificate of its own is refused.

    The refusal must be TLS's "certificate required" alert (on the first read, in TLS 1.3): a
    plaintext gRPC server, which serves anyone, fails the same handshake with another error.
    """
    context = ssl.create_default_context(cafile=str(private.native.root / "s3" / "grpc-ca.crt"))
    context.check_hostname = False
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            with context.wrap_socket(raw) as tls:
                tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
                tls.recv(9)
        except ssl.SSLError as error:
            return error.reason == "TLSV13_ALERT_CERTIFICATE_REQUIRED"
    return False


def names(s3: Any, bucket: str) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {item["Key"]: s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read() for item in listed}


@PRIVATE
def test_a_client_without_the_secret_is_refused_everything(private):
    """boto3 with a wrong secret put, got and deleted objects; an unsigned PUT created a bucket."""
    infra = private.nox("-s", "infra")
    assert infra.returncode == 0, infra.stdout
    urls = private.native.urls()
    owner = client(urls)
    bucket = f"trust-{uuid.uuid4().hex[:8]}"
    owner.create_bucket(Bucket=bucket)
    owner.put_object(Bucket=bucket, Key="statement.csv", Body=b"date,description,amount\n")

    for stranger, refusal in (
        (client(urls, secret_key="not-the-secret"), "SignatureDoesNotMatch"),
        (client(urls, access_key="someone-else"), "InvalidAccessKeyId"),
    ):
        calls = {
            "put": lambda s=stranger: s.put_object(Bucket=bucket, Key="planted.csv", Body=b"x"),
            "get": lambda s=stranger: s.get_object(Bucket=bucket, Key="statement.csv"),
            "delete": lambda s=stranger: s.delete_object(Bucket=bucket, Key="statement.csv"),
            "create bucket": lambda s=stranger: s.create_bucket(Bucket=f"{bucket}-planted"),
        }
        for what, call in calls.items():
            assert error_of(call) == (403, refusal), what

    # Without any signature, through the S3 port...
    assert unsigned("PUT", f"{urls.s3_endpoint}/{bucket}-unsigned") == 403
    assert unsigned("PUT", f"{urls.s3_endpoint}/{bucket}/planted.csv", b"x") == 403
    assert unsigned("GET", f"{urls.s3_endpoint}/{bucket}/statement.csv") == 403
    # ...and through the filer's own HTTP API, which reads and writes the same files by path.
    filer = f"http://127.0.0.1:{weed_flag(private, 'filer.port')}/buckets/{bucket}"
    assert unsigned("GET", f"{filer}/statement.csv") == 401
    assert unsigned("PUT", f"{filer}/planted.csv", b"x") == 401
    assert unsigned("DELETE", f"{filer}/statement.csv") == 401

    # ...and through the gRPC ports, where `weed shell` lists, writes and deletes files.
    for part in ("filer", "master", "volume", "s3"):
        assert grpc_refuses_a_stranger(private, int(weed_flag(private, f"{part}.port.grpc"))), part

    assert names(owner, bucket) == {"statement.csv": b"date,description,amount\n"}
    assert {entry["Name"] for entry in owner.list_buckets()["Buckets"]} >= {bucket}
    assert f"{bucket}-planted" not in {entry["Name"] for entry in owner.list_buckets()["Buckets"]}
    assert f"{bucket}-unsigned" not in {entry["Name"] for entry in owner.list_buckets()["Buckets"]}
    # The secret is in a file only its owner reads, never on the command line every `ps` shows.
    directory = private.native.root / "s3"
    server = private.processes()["s3"]
    assert server is not None
    assert urls.s3_secret_key not in " ".join(psutil.Process(server.pid).cmdline())
    assert urls.s3_secret_key not in infra.stdout
    for secret_file in ("s3.json", "security.toml", "grpc.key"):
        assert stat.S_IMODE((directory / secret_file).stat().st_mode) == 0o600
    assert stat.S_IMODE((directory / "data").stat().st_mode) == 0o700


@PRIVATE
def test_objects_outlive_a_restart_of_the_services(private):
    """moto kept objects in memory: after `down` and a new start every statement row pointed at nothing."""
    assert private.nox("-s", "infra").returncode == 0
    urls = private.native.urls()
    bucket = f"kept-{uuid.uuid4().hex[:8]}"
    before = {f"statements/{index}.csv": f"statement {index}\n".encode() * 50 for index in range(5)}
    s3 = client(urls)
    s3.create_bucket(Bucket=bucket)
    for key, body in before.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)

    for restart in range(2):
        running = private.processes()
        down = private.nox("-s", "down")
        assert down.returncode == 0, down.stdout
        assert_stopped(private, running)
        infra = private.nox("-s", "infra")
        assert infra.returncode == 0, infra.stdout
        assert private.processes()["s3"] != running["s3"], "S3 was not restarted"
        s3 = client(private.native.urls())
        assert names(s3, bucket) == before, f"after restart {restart + 1}"
        # Written after a restart, beside the old ones: nothing old is overwritten by a new file id.
        key = f"statements/after-{restart}.csv"
        s3.put_object(Bucket=bucket, Key=key, Body=b"written after a restart\n")
        before[key] = b"written after a restart\n"
    assert names(s3, bucket) == before

    running = private.processes()
    assert private.nox("-s", "down").returncode == 0
    assert_stopped(private, running)
