"""A `tokenize` killed with SIGKILL and rerun gives exactly the output of an uninterrupted run."""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.tokenize_mds import completed_tasks
from shards import mds
from shards.layout import buckets

pytestmark = pytest.mark.slow
TOKENIZE = ["--tasks", "4", "--workers", "1", "--batch-size", "1", "--shard-size", "4kb", "--val-fraction", "0.05"]
FOLDERS = [b.path for b in buckets()] + ["mds/val"]


def filtered_copy(sample_output: str, dest: Path) -> Path:
    """The sample job's output up to `filter` (filtered documents and stats), without any tokenize output."""
    shutil.copytree(sample_output, dest, ignore=shutil.ignore_patterns("mds", "tokenize", "merge", "mix",
                                                                       "manifest.json", "mixtures"))
    return dest


def samples(out: Path) -> list[tuple[str, tuple[int, ...]]]:
    got = []
    for rel in FOLDERS:
        folder = str(out / rel)
        for shard in mds.read_index(folder)["shards"]:
            got += [(s["id"], tuple(s["input_ids"].tolist()))
                    for s in mds.iter_samples(folder, shard, mds.read_shard(folder, shard))]
    return got


def kill_mid_tokenize(out: Path) -> set[int]:
    """Start `tokenize`, SIGKILL it once a task has completed but not all; return the completed tasks."""
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.refinedweb", "tokenize", "--output", str(out), *TOKENIZE],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    logs = str(out / "logs" / "tokenize")
    deadline = time.time() + 120
    try:
        while time.time() < deadline and proc.poll() is None and not completed_tasks(logs):
            time.sleep(0.005)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return completed_tasks(logs)


def test_sigkill_mid_tokenize_then_rerun_equals_uninterrupted(sample_output, tmp_path, refinedweb):
    reference = filtered_copy(sample_output, tmp_path / "reference")
    refinedweb("tokenize", "--output", str(reference), *TOKENIZE)

    crashed = filtered_copy(sample_output, tmp_path / "crashed")
    done = kill_mid_tokenize(crashed)
    assert done and done != {0, 1, 2, 3}, f"kill missed the middle of tokenize (completed: {done})"
    assert not (crashed / "mds" / "lt1024" / "index.json").exists()
    # a crashed writer can leave an index.json that looks complete: it must not be trusted
    unfinished = min({0, 1, 2, 3} - done)
    fake = crashed / "mds" / "lt1024" / f"{unfinished:05d}"
    fake.mkdir(parents=True, exist_ok=True)
    (fake / "index.json").write_text(json.dumps({"version": 2, "shards": []}))

    rerun = refinedweb("tokenize", "--output", str(crashed), *TOKENIZE)
    assert "Skipping" in rerun.stderr  # completed tasks were not redone

    want, got = samples(reference), samples(crashed)
    assert collections.Counter(got) == collections.Counter(want)
    ids = [i for i, _ in got]
    assert len(ids) == len(set(ids)) > 50
    for rel in FOLDERS:  # not only the same documents: byte-identical shards
        assert mds.read_index(str(crashed / rel)) == mds.read_index(str(reference / rel))
