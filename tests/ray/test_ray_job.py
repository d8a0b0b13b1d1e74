"""`ray job submit` of the plain script to a real Ray head on 127.0.0.1, as a user runs it on a cluster."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from shards import manifest as manifest_io
from shards.verify import verify
from tests.ray.conftest import free_port, samples

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))


def start_head(env: dict, temp_dir: str) -> tuple[subprocess.Popen, str]:
    """`ray start --head --block` in its own process group; returns it and the dashboard (Jobs API) URL."""
    dashboard = free_port()
    head = subprocess.Popen(
        [RAY, "start", "--head", "--block", "--num-cpus=2", "--node-ip-address=127.0.0.1", f"--port={free_port()}",
         "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
         f"--dashboard-agent-listen-port={free_port()}", f"--ray-client-server-port={free_port()}",
         f"--temp-dir={temp_dir}", "--object-store-memory=200000000"],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return head, f"http://127.0.0.1:{dashboard}"


def stop_head(head: subprocess.Popen) -> None:
    """Stop exactly the processes of this head (its process group), not every Ray on the machine."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
        try:
            os.killpg(head.pid, sig)
            head.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return


def ray_job(env: dict, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`ray job ARGS` as a user types it (the CLI reads the auth token from the environment)."""
    return subprocess.run([RAY, "job", *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_ray_job_submit_runs_all_on_the_head(tmp_path, sample_output):
    # a short temp dir: Ray's unix sockets live under it (path length limit)
    temp_dir = tempfile.mkdtemp(prefix="rayhead", dir="/tmp")
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16))
    env.pop("RAY_ADDRESS", None)
    out = tmp_path / "out"
    head, address = start_head(env, temp_dir)
    job = f"refinedweb-{secrets.token_hex(4)}"
    try:
        deadline = time.monotonic() + 120
        while ray_job(env, "list", "--address", address).returncode != 0:  # the Jobs API is up
            assert time.monotonic() < deadline and head.poll() is None, f"the head did not start; logs: {temp_dir}"
            time.sleep(1)
        # the script alone, away from the repository (as `ray submit` ships it): it imports the installed
        # package; the head runs the entrypoint in its own cwd, hence absolute paths. `ray job submit`
        # waits, tailing the job's logs, and says how it ended (exit 1 when FAILED).
        script = shutil.copy(ROOT / "pipelines" / "refinedweb.py", tmp_path / "refinedweb.py")
        try:
            submit = ray_job(env, "submit", "--address", address, "--submission-id", job, "--",
                             sys.executable, str(script), "all", "--input", "sample", "--executor", "ray",
                             "--output", str(out), "--tasks", "2", "--workers", "2", "--val-fraction", "0.05",
                             timeout=300)
        except subprocess.TimeoutExpired:
            ray_job(env, "stop", "--address", address, job)
            raise
        logs = submit.stdout + submit.stderr
        assert submit.returncode == 0 and f"Job '{job}' succeeded" in logs, logs[-4000:]
    finally:
        stop_head(head)
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert "Connecting to existing Ray cluster" in logs and "Started a local Ray instance" not in logs
    assert "documents read 160" in logs and str(out) in logs  # the job's summary
    checked = verify(str(out))
    assert sum(c.documents for c in checked.values()) == len(samples(str(out))) > 50
    assert samples(str(out)) == samples(sample_output)
    assert manifest_io.read(str(out))["config"]["executor"] == "ray"
