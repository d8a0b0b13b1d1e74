"""OUT on an object store: the whole job writes to `s3://` (a local moto server) and verifies there."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


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
