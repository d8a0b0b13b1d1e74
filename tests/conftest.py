"""Shared test setup: never touch the network; run the real `all` job on the bundled sample once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def run_refinedweb(*args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
    """`python -m pipelines.refinedweb ARGS` in a subprocess, as a user runs it."""
    proc = subprocess.run([sys.executable, "-m", "pipelines.refinedweb", *args], capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"refinedweb {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="session", autouse=True)
def stream_cache(tmp_path_factory) -> str:
    """Streams read by the tests (and the trainers they start) are cached here, not in ~/.cache."""
    path = str(tmp_path_factory.mktemp("stream-cache"))
    os.environ["NEOBERT_STREAM_CACHE"] = path  # shards.streams.CACHE_ENV (not imported: it loads torch)
    return path


@pytest.fixture(scope="session")
def refinedweb():
    """`refinedweb(*args, timeout=, check=)`: run the job CLI in a subprocess."""
    return run_refinedweb


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory) -> tuple[str, subprocess.CompletedProcess]:
    out = str(tmp_path_factory.mktemp("refinedweb") / "out")
    proc = run_refinedweb("all", "--input", "sample", "--output", out, "--tasks", "2", "--workers", "2",
                          "--val-fraction", "0.05", "--materialize", "20000")
    return out, proc


@pytest.fixture(scope="session")
def sample_output(sample_run) -> str:
    """OUT of the real `all` job on the bundled sample (local executor, 2 tasks/2 workers, 5% validation)."""
    return sample_run[0]


@pytest.fixture
def out_copy(sample_output, tmp_path) -> Path:
    """A private copy of the sample OUT as the pipeline wrote it (without the raw `.mds` copies that
    tests reading it with a stock `StreamingDataset(local=…)` leave beside its shards)."""
    out = tmp_path / "out"
    shutil.copytree(sample_output, out, ignore=shutil.ignore_patterns("*.mds"))
    return out


@pytest.fixture
def flipped_shard(out_copy) -> Path:
    """The first stored shard of `out_copy`'s lt1024 bucket, one byte flipped (its index unchanged)."""
    folder = out_copy / "mds" / "lt1024"
    index = json.loads((folder / "index.json").read_text())
    shard = folder / (index["shards"][0].get("zip_data") or index["shards"][0]["raw_data"])["basename"]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x01
    shard.write_bytes(bytes(data))
    return shard
