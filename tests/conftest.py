"""Shared test setup: never touch the network; run the real `all` job on the bundled sample once."""

from __future__ import annotations

import os
import subprocess
import sys

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
