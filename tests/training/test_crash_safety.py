"""A crash at the worst moment loses neither the metrics record nor both copies of a checkpoint."""

from __future__ import annotations

import json
import os

import pytest
import torch

from training import checkpoint, metrics


def state(step: int, value: float) -> dict:
    return {"step": step, "model": {"w": torch.full((3,), value)}, "loader": [{"taken": step}]}


def test_same_step_swap_killed_between_renames_keeps_the_old_copy(tmp_path, monkeypatch):
    checkpoint.save(tmp_path, 5, state(5, 1.0), keep=2)
    real, calls = os.replace, []

    def crash_on_second(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # step_5 -> .old-…, then the crash before .tmp-… -> step_5
            raise KeyboardInterrupt("killed")
        real(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(tmp_path, 5, state(5, 2.0), keep=2)
    monkeypatch.undo()
    root = tmp_path / "checkpoints"
    assert not (root / "step_00000005").exists() and list(root.glob(".old-step_00000005-*"))  # the crash point
    newest = checkpoint.latest(tmp_path)
    assert newest == root / "step_00000005"
    assert torch.equal(checkpoint.load(newest)["model"]["w"], torch.full((3,), 1.0))
    # the next save of that step succeeds and leaves no leftovers of the killed one
    checkpoint.save(tmp_path, 5, state(5, 3.0), keep=2)
    assert torch.equal(checkpoint.load(checkpoint.latest(tmp_path))["model"]["w"], torch.full((3,), 3.0))
    assert sorted(p.name for p in root.iterdir()) == ["step_00000005"]


def torn_metrics(run_dir) -> None:
    lines = [json.dumps({"kind": "train", "step": s, "loss": 1.0 / s}) for s in (1, 2, 3)]
    (run_dir / metrics.METRICS).write_text("\n".join(lines) + "\n" + lines[2][:9])  # killed mid-write of a 4th


def test_torn_last_metrics_line_is_dropped_on_read_and_resume(tmp_path):
    torn_metrics(tmp_path)
    assert [r["step"] for r in metrics.read(tmp_path)] == [1, 2, 3]
    log = metrics.MetricsLog(tmp_path, tensorboard=False, resume_step=2)
    log.write({"kind": "train", "step": 3, "loss": 0.5})
    log.close()
    assert [(r["step"], r["loss"]) for r in metrics.read(tmp_path)] == [(1, 1.0), (2, 0.5), (3, 0.5)]


def test_damaged_metrics_line_before_the_last_is_an_error(tmp_path):
    (tmp_path / metrics.METRICS).write_text('{"step": 1}\n{"ste\n{"step": 3}\n')
    with pytest.raises(ValueError, match="line 2 is not JSON"):
        metrics.read(tmp_path)
