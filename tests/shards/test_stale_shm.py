"""A reader SIGKILLed with its dataset open leaves streaming's shared memory in /dev/shm; the next
dataset over the same cache folders releases it, and never a running one's."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shards import stale_shm
from shards.streams import CheckedDataset, mixture_streams

pytestmark = pytest.mark.skipif(not stale_shm.SHM.is_dir(), reason="streaming's shared memory lives in /dev/shm")

READER = """
import sys, time
from shards.streams import CheckedDataset, mixture_streams
ds = CheckedDataset(streams=mixture_streams(sys.argv[1], "stage1", cache_dir=sys.argv[2]), batch_size=1)
print("open", flush=True)
time.sleep(600)
"""


def registered(cache: Path) -> list[tuple[str, int]]:
    """(name, inode) of the `<prefix>_locals` segments that name a folder under `cache` (a released
    prefix is reused by the next dataset: the inode tells the new segment from the old)."""
    return [(p.name, p.stat().st_ino) for p in stale_shm.SHM.glob("*_locals") if str(cache).encode() in p.read_bytes()]


def test_a_sigkilled_readers_shared_memory_is_released_and_a_live_ones_kept(sample_output, tmp_path):
    cache = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "-c", READER, sample_output, str(cache)], stdout=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        assert proc.stdout.readline() == "open\n", "the reader did not open its dataset"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # with its resource tracker, as the OOM killer or `kill -9` would
        proc.wait()
    stale = registered(cache)
    assert len(stale) == 1, f"the case under test: the killed reader's segment is left behind ({stale})"

    ds = CheckedDataset(streams=mixture_streams(sample_output, "stage1", cache_dir=str(cache)), batch_size=1)
    live = registered(cache)
    assert stale[0] not in live, "the killed reader's shared memory was not released"
    assert len(live) == 1 and sum(1 for _ in ds) > 0
    folders = [os.path.abspath(s.local) for s in ds.streams]
    assert stale_shm.release_stale(folders) == [] and registered(cache) == live  # a running dataset's is kept
