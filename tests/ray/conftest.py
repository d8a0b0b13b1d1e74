"""Ray and S3 for the Ray tests: one local Ray instance per session, a real S3 server per module."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import s3fs

from shards import manifest as manifest_io
from shards import mds
from shards.layout import buckets, join

BUCKET = "neobert-test"
FOLDERS = [b.path for b in buckets()] + ["mds/val"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def samples(out: str) -> list[tuple[str, tuple[int, ...]]]:
    """Sorted (id, input_ids) of every document in every bucket and the validation split of OUT."""
    got = []
    m = manifest_io.read(out)
    for rel in [b["path"] for b in m["buckets"].values()] + [m["validation"]["path"]]:
        folder = join(out, rel)
        for shard in mds.read_index(folder)["shards"]:
            got += [(s["id"], tuple(np.asarray(s["input_ids"]).tolist()))
                    for s in mds.iter_samples(folder, shard, mds.read_shard(folder, shard))]
    return sorted(got)


def counts(manifest: dict) -> dict:
    """What two runs of the same job must agree on (not times, not paths)."""
    return {
        "documents": manifest["documents"],
        "filters": manifest["filters"],
        "dedup": manifest["dedup"],
        "buckets": {k: {f: v[f] for f in ("documents", "tokens", "histogram")} for k, v in manifest["buckets"].items()},
        "validation": {f: manifest["validation"][f] for f in ("documents", "tokens")},
        "mixtures": {k: v["proportions"] for k, v in manifest["mixtures"].items()},
    }


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray instance this process is connected to (the pipeline reuses the connection)."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> str:
    """A real S3 endpoint (moto in server mode, over HTTP on 127.0.0.1) with bucket `neobert-test`, for
    one test module. Only `S3_ENDPOINT_URL` is set, as for streaming: the job must tell s3fs itself."""
    port, log = free_port(), tmp_path_factory.mktemp("moto") / "moto.log"
    url = f"http://127.0.0.1:{port}"
    with open(log, "w") as f:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=f, stderr=subprocess.STDOUT)
    try:
        with pytest.MonkeyPatch.context() as env:
            env.delenv("AWS_ENDPOINT_URL", raising=False)  # restored (unset) after the module, whoever sets it
            for name, value in (("S3_ENDPOINT_URL", url), ("AWS_ACCESS_KEY_ID", "testing"),
                                ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_DEFAULT_REGION", "us-east-1")):
                env.setenv(name, value)
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"moto server did not start: {log.read_text()[-2000:]}") from None
                    time.sleep(0.2)
            import boto3

            boto3.client("s3", endpoint_url=url).create_bucket(Bucket=BUCKET)
            s3fs.S3FileSystem.clear_instance_cache()  # a cached instance may hold another endpoint
            yield url
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        server.terminate()
        server.wait(30)
