"""The trainer as users run it (`python -m training …` subprocesses) on the sample's shards."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from neobert.checkpoint import load_pretrained
from training import checkpoint

CONFIGS = Path(__file__).parents[2] / "training" / "configs"
QUICKSTART, QUICKSTART_STAGE2 = CONFIGS / "quickstart.yaml", CONFIGS / "quickstart_stage2.yaml"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}


def cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "training", *args]


def train_cmd(root, run_dir, *sets: str, config=QUICKSTART) -> list[str]:
    args = ["--config", str(config), "--set", f"data.root={root}", "--set", f"run_dir={run_dir}",
            "--set", "log.tensorboard=false"]
    for s in sets:
        args += ["--set", s]
    return cmd(*args)


def losses(run_dir) -> dict[int, float]:
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return {r["step"]: r["loss"] for r in map(json.loads, lines) if r["kind"] == "train"}


def run(args, timeout=300):
    proc = subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_quickstart_stage1_then_stage2_then_export_and_plot(sample_output, tmp_path):
    s1, s2 = tmp_path / "stage1", tmp_path / "stage2"
    out = run(train_cmd(sample_output, s1, "steps=16", "checkpoint.every=8", "validation.every=16",
                        "log.tensorboard=true"))
    assert list((s1 / "tensorboard").glob("events.out.tfevents.*"))
    assert "tokens per step" in out.stderr and "accumulation" in out.stderr and "backend" in out.stderr
    l1 = losses(s1)
    assert l1[16] < l1[1] - 1.0, l1
    assert [p.name for p in checkpoint.valid(s1 / "checkpoints")] == ["step_00000008", "step_00000016"]
    run(train_cmd(sample_output, s2, "steps=4", f"checkpoint.init_from={s1}", "validation.every=4",
                  config=QUICKSTART_STAGE2))
    l2 = losses(s2)
    assert l2[1] < l1[1] - 1.0, "stage 2 did not start from the stage-1 weights"
    val = [json.loads(x) for x in (s2 / "metrics.jsonl").read_text().splitlines() if '"val"' in x][-1]
    assert {"mlm_perplexity_0-1k", "mlm_perplexity_1k-2k", "loss_0-1k", "loss_1k-2k", "pseudo_perplexity_0-1k",
            "pseudo_perplexity_1k-2k"} <= set(val)
    export = tmp_path / "hf"
    run(cmd("export", str(s2), str(export)))
    model = load_pretrained(export)
    saved = checkpoint.load(checkpoint.latest(s2))["model"]
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())
    run(cmd("plot", str(s2)))
    pngs = sorted(p.name for p in (s2 / "plots").glob("*.png"))
    assert pngs == ["accuracy.png", "loss.png", "lr.png", "mlm_perplexity.png", "pseudo_perplexity.png",
                    "throughput.png"]
    assert all((s2 / "plots" / p).stat().st_size > 5000 for p in pngs)


def wait_for_step(run_dir: Path, step: int, proc, timeout=240):
    deadline = time.time() + timeout
    path = run_dir / "metrics.jsonl"
    while time.time() < deadline:
        if path.exists() and len(losses(run_dir)) >= step:
            return
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        time.sleep(0.05)
    raise AssertionError(f"no step {step} after {timeout}s")


FAST = ("steps=10", "global_batch_tokens=8192", "checkpoint.every=3", "validation.every=0")


@pytest.fixture(scope="module")
def reference(sample_output, tmp_path_factory) -> dict[int, float]:
    """Per-step losses of an uninterrupted FAST run."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    run(train_cmd(sample_output, run_dir, *FAST))
    expected = losses(run_dir)
    assert list(expected) == list(range(1, 11))
    return expected


def test_sigkill_at_a_random_step_then_resume_reproduces_the_losses_exactly(sample_output, tmp_path, reference):
    killed = tmp_path / "killed"
    kill_at = random.Random().randint(4, 8)
    proc = subprocess.Popen(train_cmd(sample_output, killed, *FAST), env=ENV, stderr=subprocess.PIPE, text=True)
    wait_for_step(killed, kill_at, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    interrupted = losses(killed)
    assert len(interrupted) < 10, "the run finished before the kill"
    resumed_from = checkpoint.latest(killed)
    assert resumed_from is not None and checkpoint.step_of(resumed_from) < max(interrupted)
    out = run(train_cmd(sample_output, killed, *FAST))
    assert f"resumed from {resumed_from}" in out.stderr
    assert losses(killed) == reference  # exact: same samples, same masks, same arithmetic


def group_members(pgid: int) -> dict[int, bytes]:
    """Live processes of a process group and their command lines."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            state, _, group = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:3]
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:  # exited meanwhile
            continue
        if int(group) == pgid and state != "Z":
            found[int(pid)] = cmdline
    return found


def test_sigterm_to_the_process_group_checkpoints_exits_0_and_resumes_exactly(sample_output, tmp_path, reference):
    """What SLURM, Kubernetes and torchrun do: SIGTERM to every process of the group, the
    DataLoader worker (quickstart: data.num_workers=1) as well as the trainer."""
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(train_cmd(sample_output, run_dir, *FAST), env=ENV, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    wait_for_step(run_dir, 2, proc)
    members = group_members(proc.pid)  # workers are forked: the trainer's command line, unlike the resource tracker
    workers = [pid for pid, cmdline in members.items() if cmdline == members[proc.pid] and pid != proc.pid]
    assert workers, "the case under test: a DataLoader worker in the trainer's process group"
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    assert "SIGTERM: finishing step" in err and "stopped on request" in err
    assert not set(workers) & set(group_members(proc.pid)), "a DataLoader worker outlived the trainer"
    reached = max(losses(run_dir))
    assert reached < 10, "the run finished before the signal"
    saved = checkpoint.latest(run_dir)
    assert saved is not None and checkpoint.step_of(saved) == reached
    assert checkpoint.load(saved)["loader"][0]["taken"] > 0
    out = run(train_cmd(sample_output, run_dir, *FAST))
    assert f"resumed from {saved}" in out.stderr
    assert losses(run_dir) == reference
