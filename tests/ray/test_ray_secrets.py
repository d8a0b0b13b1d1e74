"""A Ray job run with access keys in its environment writes them to no file (of OUT on S3, of its logs,
of Ray's session) and prints them nowhere, while its tasks still use them."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
import s3fs

from pipelines.executors import REDACTED
from pipelines.refinedweb import main
from tests.ray.conftest import BUCKET
from tests.ray.test_ray_executor import ARGS

pytestmark = pytest.mark.slow


def test_credentials_reach_the_tasks_but_no_file_or_output(ray_local, s3, monkeypatch, capfd):
    key, secret, hf = f"AKIA{secrets.token_hex(8).upper()}", secrets.token_hex(20), f"hf_{secrets.token_hex(16)}"
    for name, value in (("AWS_ACCESS_KEY_ID", key), ("AWS_SECRET_ACCESS_KEY", secret), ("HF_TOKEN", hf),
                        ("FSSPEC_S3_KEY", key), ("FSSPEC_S3_SECRET", secret)):
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()
    # the tasks' processes have no credentials of their own (Ray started before any were set): the job
    # writing to S3 at all shows the forwarded ones arrived
    assert main(["all", "--output", f"s3://{BUCKET}/secret-run", *ARGS]) == 0
    printed = capfd.readouterr()
    fs = s3fs.S3FileSystem()
    written = {path: fs.cat(path) for path in fs.find(f"{BUCKET}/secret-run")}
    session = Path(ray_local._private.worker._global_node.get_session_dir_path())
    written |= {str(p): p.read_bytes() for p in session.rglob("*") if p.is_file() and not p.is_socket()}
    assert len(written) > 50 and any("/logs/" in p for p in written)
    for value in (key, secret, hf):
        leaks = [path for path, data in written.items() if value.encode() in data]
        assert not leaks, f"a secret was written to {leaks[:5]}"
        assert value not in printed.out + printed.err, "a secret was printed"
    executor = json.loads(written[f"{BUCKET}/secret-run/logs/tokenize/executor.json"])
    assert executor["env"]["AWS_SECRET_ACCESS_KEY"] == REDACTED and executor["env"]["S3_ENDPOINT_URL"] == s3
