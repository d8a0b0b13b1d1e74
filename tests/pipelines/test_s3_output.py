"""OUT on an object store: the whole job writes to `s3://` (a local moto server) and verifies there."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture
def s3_env():
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1",
               FSSPEC_S3_ENDPOINT_URL=url, S3_ENDPOINT_URL=url)
    boto3.client("s3", endpoint_url=url, aws_access_key_id="test", aws_secret_access_key="test",
                 region_name="us-east-1").create_bucket(Bucket="refinedweb-test")
    yield env
    server.stop()


def test_all_and_verify_on_s3(s3_env):
    out = "s3://refinedweb-test/out"
    job = ["all", "--input", "sample", "--output", out, "--limit-files", "1", "--dedup", "none", "--tasks", "1"]
    run = subprocess.run([sys.executable, "-m", "pipelines.refinedweb", *job], capture_output=True, text=True,
                         env=s3_env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"output: {out}" in run.stdout
    check = subprocess.run([sys.executable, "-m", "shards", "verify", out], capture_output=True, text=True,
                           env=s3_env, timeout=120)
    assert check.returncode == 0, check.stderr
    assert "all hashes and counts match" in check.stdout
