"""Where an S3-compatible store is, told the same way to every library the job writes through.

s3fs/boto3 (Datatrove, fsspec: logs, parquet, manifest) read the endpoint from `AWS_ENDPOINT_URL`;
mosaicml-streaming (`MDSWriter` uploads, `StreamingDataset` downloads) reads `S3_ENDPOINT_URL`.
Invariant after `sync_s3_endpoint()`: both are set to the same URL, or neither is set.
Other s3fs options come from fsspec's own environment variables (`FSSPEC_S3_<OPTION>`).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

ENDPOINT_VARS = ("AWS_ENDPOINT_URL", "S3_ENDPOINT_URL")


def sync_s3_endpoint(env: MutableMapping[str, str] = os.environ) -> str | None:
    """Copy whichever endpoint variable is set to the other; the endpoint URL, or None for AWS S3."""
    aws, s3 = (env.get(name) or None for name in ENDPOINT_VARS)
    if aws and s3 and aws != s3:
        raise ValueError(f"AWS_ENDPOINT_URL={aws} and S3_ENDPOINT_URL={s3} differ; set one of them (or both alike)")
    url = aws or s3
    if url:
        for name in ENDPOINT_VARS:
            env[name] = url
    return url
