"""Fixtures of the pipeline tests: an S3 store (a local moto server) the job can write OUT to."""

from __future__ import annotations

import os
import socket

import pytest

BUCKET = "refinedweb-test"


@pytest.fixture
def s3_env():
    """The environment of a process that reaches a fresh local S3 server (bucket `BUCKET`); its
    endpoint and keys are also put in fsspec's config, for s3:// paths opened in the test itself."""
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    import fsspec

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1",
               FSSPEC_S3_ENDPOINT_URL=url, S3_ENDPOINT_URL=url)
    boto3.client("s3", endpoint_url=url, aws_access_key_id="test", aws_secret_access_key="test",
                 region_name="us-east-1").create_bucket(Bucket=BUCKET)
    saved = fsspec.config.conf.get("s3")
    fsspec.config.conf["s3"] = {"endpoint_url": url, "key": "test", "secret": "test"}
    yield env
    if saved is None:
        fsspec.config.conf.pop("s3", None)
    else:
        fsspec.config.conf["s3"] = saved
    server.stop()
