"""One writer per OUT: a second driver refuses at once naming the lease's owner; a stale lease is
reported and `--force-unlock` takes it; a dead driver's lease on this host is taken over; the lease
goes at the end, on error and on Ctrl-C; the same on S3 (conditional create)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import fsspec
import pytest

from pipelines import lease
from shards.layout import LEASE

DOWNLOAD = ["download", "--input", "sample", "--limit-files", "1", "--tasks", "1"]


def stale_lease(logs, host="other-node", pid=4242, minutes=45) -> dict:
    """The lease a driver on `host` left when it crashed `minutes` ago."""
    beat = (datetime.now(timezone.utc) - timedelta(minutes=minutes)).isoformat(timespec="seconds")
    record = {"user": "alice", "host": host, "pid": pid, "started": beat, "heartbeat": beat, "output": "x",
              "token": "crashed"}
    os.makedirs(logs, exist_ok=True)
    with open(os.path.join(logs, LEASE), "w") as f:
        json.dump(record, f)
    return record


def test_second_driver_refuses_at_once_naming_the_owner(tmp_path, refinedweb):
    out = tmp_path / "out"
    first = lease.Lease(str(out / "logs"), str(out))
    first.take()
    try:
        proc = refinedweb(*DOWNLOAD, "--output", str(out), check=False, timeout=120)
    finally:
        first.release()
    assert proc.returncode == 2, proc.stderr[-2000:]
    owner = f"{lease.user()}@{socket.gethostname()} pid {os.getpid()}"
    assert f"{out} is being written by {owner} (since {first.record['started']}, last heartbeat" in proc.stderr
    assert "--force-unlock" in proc.stderr and "stale" not in proc.stderr
    assert not (out / "raw").exists() and not (out / "logs" / "download").exists()  # refused before any work
    assert not (out / "logs" / LEASE).exists()  # the first driver's release removed it


def test_stale_lease_is_reported_and_force_unlock_takes_it(tmp_path, refinedweb):
    out = tmp_path / "out"
    stale_lease(out / "logs")
    refused = refinedweb(*DOWNLOAD, "--output", str(out), check=False, timeout=120)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "alice@other-node pid 4242" in refused.stderr
    assert "the lease is stale (no heartbeat for over 10 min)" in refused.stderr and "--force-unlock" in refused.stderr
    assert not (out / "raw").exists()

    taken = refinedweb(*DOWNLOAD, "--output", str(out), "--force-unlock", timeout=300)
    assert "took over the lease of alice@other-node pid 4242" in taken.stderr
    assert list((out / "raw").rglob("*.parquet")) and (out / "logs" / "download" / "completions" / "00000").exists()
    assert not (out / "logs" / LEASE).exists()  # released at the end


def test_lease_of_a_dead_driver_on_this_host_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale_lease(tmp_path, host=socket.gethostname(), pid=pid, minutes=0)
    with pytest.raises(lease.LeaseHeld, match=f"pid {os.getpid()}"):  # a live one on this host is not
        with lease.held(str(tmp_path), "out"):
            lease.Lease(str(tmp_path), "out").take()
    stale_lease(tmp_path, host=socket.gethostname(), pid=pid, minutes=0)
    new = lease.Lease(str(tmp_path), "out")
    note = new.take()
    assert note.startswith(f"took over the lease of alice@{socket.gethostname()} pid {pid} (since ")
    assert note.endswith("(its process is gone)")
    assert new.ours()
    new.release()
    assert lease.read(str(tmp_path / LEASE)) is None


@pytest.mark.parametrize("error", [KeyboardInterrupt, ValueError])
def test_lease_is_released_on_error_and_ctrl_c(tmp_path, error):
    with pytest.raises(error):
        with lease.held(str(tmp_path), "out") as held:
            assert held.ours()
            raise error("stop")
    assert not (tmp_path / LEASE).exists()


def test_heartbeat_refreshes_and_a_lost_lease_is_left_to_its_new_owner(tmp_path):
    held = lease.Lease(str(tmp_path), "out", heartbeat_s=0.05)
    held.take()
    path = str(tmp_path / LEASE)
    started = lease.read(path)["heartbeat"]
    deadline = time.monotonic() + 60
    while lease.read(path)["heartbeat"] == started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lease.read(path)["heartbeat"] > started and lease.read(path)["started"] == held.record["started"]
    other = stale_lease(tmp_path, minutes=0)  # another driver took it (--force-unlock)
    while not held.lost and time.monotonic() < deadline:
        time.sleep(0.05)
    held.release()
    assert held.lost and lease.read(path) == other  # not removed, not overwritten


@pytest.mark.slow
def test_second_driver_refuses_on_s3(s3_env, refinedweb):
    out = "s3://refinedweb-test/out"
    first = lease.Lease(f"{out}/logs", out)
    first.take()
    try:
        with pytest.raises(lease.LeaseHeld, match=f"pid {os.getpid()}"):  # the conditional create refuses
            lease.Lease(f"{out}/logs", out).take()
        proc = subprocess.run([sys.executable, "-m", "pipelines.refinedweb", *DOWNLOAD, "--output", out],
                              capture_output=True, text=True, env=s3_env, timeout=120)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert f"{out} is being written by {lease.user()}@{socket.gethostname()} pid {os.getpid()}" in proc.stderr
        assert f"lease {out}/logs/{LEASE}" in proc.stderr
    finally:
        first.release()
    assert lease.read(f"{out}/logs/{LEASE}") is None
    run = subprocess.run([sys.executable, "-m", "pipelines.refinedweb", *DOWNLOAD, "--output", out],
                         capture_output=True, text=True, env=s3_env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    fs, root = fsspec.core.url_to_fs(out)
    assert not fs.exists(f"{root}/logs/{LEASE}") and fs.exists(f"{root}/logs/download/completions/00000")
