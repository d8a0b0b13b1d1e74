"""One S3 endpoint for s3fs (`AWS_ENDPOINT_URL`) and mosaicml-streaming (`S3_ENDPOINT_URL`)."""

from __future__ import annotations

import pytest

from pipelines.storage import sync_s3_endpoint

URL = "http://127.0.0.1:9000"


@pytest.mark.parametrize("given", ["AWS_ENDPOINT_URL", "S3_ENDPOINT_URL"])
def test_either_endpoint_variable_sets_both(given):
    env = {given: URL}
    assert sync_s3_endpoint(env) == URL
    assert env == {"AWS_ENDPOINT_URL": URL, "S3_ENDPOINT_URL": URL}


def test_no_endpoint_means_aws_s3():
    env = {"AWS_ENDPOINT_URL": ""}
    assert sync_s3_endpoint(env) is None and env == {"AWS_ENDPOINT_URL": ""}


def test_different_endpoints_refused():
    with pytest.raises(ValueError, match="differ; set one of them"):
        sync_s3_endpoint({"AWS_ENDPOINT_URL": URL, "S3_ENDPOINT_URL": "http://elsewhere:9000"})
