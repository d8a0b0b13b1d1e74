"""The GPU scripts stay runnable against the current API: their CPU modes run here."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import zstd

ROOT = Path(__file__).resolve().parents[2]


def run_script(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA the script runs the real comparison")
def test_gpu_parity_says_no_cuda_and_exits_zero():
    proc = run_script("benchmarks/gpu_parity.py")
    assert proc.returncode == 0, proc.stderr
    assert "no CUDA" in proc.stdout


def test_gpu_train_cpu_smoke():
    """Every row of the GPU table runs on CPU (tiny models): baselines, each lever, the MDS loader."""
    proc = run_script("benchmarks/gpu_train.py", "--cpu-smoke")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    summary = out[out.index("summary"):].splitlines()[1:]
    rows = [line for line in summary if line.split()[:1] in (["stage1"], ["stage2"], ["infer"])]
    assert len(rows) == 18, summary
    for line in rows:
        assert line[24:36].strip() not in ("", "-") and "error" not in line and "not run" not in line, line
    for name in ("published", "modernbert", "packed", "+fused", "+compile", "+static", "+ckpt x2", "loader"):
        assert any(f"  {name} " in line for line in rows), name
    parity = re.search(r"compiled vs eager on one stage1 batch: .* gradient rel. error (\S+)", out)
    assert parity and float(parity.group(1)) < 1e-5
    assert sum(line.startswith(("stage1: best", "stage2: best", "infer: best")) for line in summary) == 3
    assert "paper claims 1.467x ModernBERT" in out


def test_gpu_train_reads_mds_as_streaming_does(tmp_path):
    """The loader rows read MDS shards without `streaming` (absent on the GPU machine): same documents."""
    from benchmarks import gpu_train
    from shards import mds

    gpu_train.write_smoke_mds(tmp_path)
    folder = tmp_path / "mds" / "lt1024"
    shards = json.loads((folder / "index.json").read_text())["shards"]
    assert shards and all(s.get("zip_data") for s in shards)  # the case under test: compressed shards
    for shard in shards:
        stored = mds.read_shard(str(folder), shard)
        ours = list(gpu_train.mds_column(zstd.decompress(stored), shard, "input_ids"))
        theirs = [s["input_ids"] for s in mds.iter_samples(str(folder), shard, stored)]
        assert len(ours) == len(theirs) > 0
        assert all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(ours, theirs))
    batch = next(iter(gpu_train.MDSBatches(str(tmp_path), context=128, tokens=1024)))
    assert batch["input_ids"].shape == (1024,) and batch["max_seqlen"] == 128
    assert sum(batch["docs"]) <= 1024 and batch["masked"] == int((batch["labels"] != -100).sum()) > 0


def test_gpu_session_scripts_parse():
    for script in ("benchmarks/gpu_session.sh", "benchmarks/gpu_carry.sh"):
        proc = subprocess.run(["bash", "-n", script], cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
