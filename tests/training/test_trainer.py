"""The trainer in-process: a non-finite loss skips the step, and K in a row stop the run naming
the last good checkpoint."""

import math

import pytest
import torch

from training import config
from training.loop import StopRun, Trainer


def tiny(root, run_dir, *sets):
    return config.load(None, [
        f"run_dir={run_dir}", "steps=6", "global_batch_tokens=2048", "model.hidden_size=32",
        "model.num_hidden_layers=1", "model.num_attention_heads=2", "model.intermediate_size=64",
        "model.max_length=256", f"data.root={root}", "data.context_length=256", "data.micro_batch_tokens=1024",
        "data.num_workers=0", "validation.every=0", "log.tensorboard=false", *sets,
    ])


def test_nan_steps_are_skipped_then_the_run_stops_naming_the_last_checkpoint(sample_output, tmp_path):
    trainer = Trainer(tiny(sample_output, tmp_path / "run", "checkpoint.every=2", "max_bad_steps=3"))
    for _ in range(2):
        assert math.isfinite(trainer.train_step()["loss"])
    saved = trainer.save()
    with torch.no_grad():
        trainer.raw_model.decoder.bias[0] = float("nan")
    before = trainer.raw_model.model.encoder.weight.clone()
    record = trainer.train_step()
    assert math.isnan(record["loss"]) and record["skipped"] == 1
    assert torch.equal(trainer.raw_model.model.encoder.weight, before), "a NaN step updated the weights"
    trainer.train_step()
    with pytest.raises(StopRun, match=str(saved)):
        trainer.train_step()
