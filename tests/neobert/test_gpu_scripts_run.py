"""The GPU scripts stay runnable against the current API: their CPU modes run here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

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
