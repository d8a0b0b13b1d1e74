import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from training import checkpoint


def state(step: int) -> dict:
    return {"step": step, "model": {"w": torch.full((3,), float(step))}, "loader": [{"taken": step, "settings": {"a": [1, 2]}}]}


def test_keep_last_k_latest_and_weights_only_load(tmp_path):
    for step in (10, 20, 30, 40):
        checkpoint.save(tmp_path, step, state(step), keep=2)
    (tmp_path / "checkpoints" / ".tmp-step_00000050-99999").mkdir()  # a half-written one
    assert [p.name for p in checkpoint.valid(tmp_path / "checkpoints")] == ["step_00000030", "step_00000040"]
    newest = checkpoint.latest(tmp_path)
    assert newest.name == "step_00000040" and checkpoint.resolve(tmp_path) == newest
    loaded = checkpoint.load(newest)
    assert loaded["step"] == 40 and torch.equal(loaded["model"]["w"], torch.full((3,), 40.0))
    with pytest.raises(FileNotFoundError, match="neither a checkpoint"):
        checkpoint.resolve(tmp_path / "nothing")


class NotPlainData:
    pass


def test_weights_only_refuses_pickled_code(tmp_path):
    d = tmp_path / "checkpoints" / "step_00000001"
    d.mkdir(parents=True)
    torch.save({"f": NotPlainData()}, d / checkpoint.STATE)
    with pytest.raises(Exception, match="[Ww]eights only"):
        checkpoint.load(d)


WRITER = """
import sys, torch
from training import checkpoint
run = sys.argv[1]
checkpoint.save(run, 1, {"step": 1, "w": torch.ones(4)}, keep=3)
print("saved", flush=True)
checkpoint.save(run, 2, {"step": 2, "w": torch.ones(200_000_000)}, keep=3)  # 800 MB: slow enough to be killed
"""


def test_write_killed_midway_leaves_previous_checkpoint_loadable(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "saved"
    tmp_dirs = []
    deadline = time.time() + 60
    while time.time() < deadline and not tmp_dirs:
        tmp_dirs = [p for p in (tmp_path / "checkpoints").glob(".tmp-step_00000002-*") if (p / "state.pt").exists()]
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert tmp_dirs, "the second write never started"
    assert not (tmp_path / "checkpoints" / "step_00000002").exists(), "the write finished before the kill"
    newest = checkpoint.latest(tmp_path)
    assert newest.name == "step_00000001" and checkpoint.load(newest)["step"] == 1
    checkpoint.save(tmp_path, 3, {"step": 3}, keep=3)  # the next save clears the dead writer's leftovers
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))


def test_resume_steps_must_agree_across_ranks():
    checkpoint.check_same_resume([(4, "a/step_00000004"), (4, "b/step_00000004")])  # paths may differ per node
    checkpoint.check_same_resume([(None, None), (None, None)])
    with pytest.raises(ValueError) as e:
        checkpoint.check_same_resume([(4, "a/step_00000004"), (None, None), (4, "a/step_00000004")])
    assert "rank(s) 0, 2: step 4 (a/step_00000004)" in str(e.value) and "rank(s) 1: no checkpoint" in str(e.value)
