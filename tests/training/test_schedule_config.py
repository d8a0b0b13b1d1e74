import math

import pytest

from training import config
from training.config import ScheduleConfig
from training.schedule import lr_at

CONFIGS = config.__file__.replace("config.py", "configs")


def test_paper_schedule_points():
    cfg = ScheduleConfig()  # stage 1 defaults
    peak = 6e-4
    assert lr_at(0, peak, cfg) == 0.0
    assert lr_at(1000, peak, cfg) == pytest.approx(3e-4)
    assert lr_at(2000, peak, cfg) == pytest.approx(peak)
    assert lr_at(451_000, peak, cfg) == pytest.approx(peak * 0.55)  # half-way down the cosine
    assert lr_at(900_000, peak, cfg) == pytest.approx(6e-5)
    assert lr_at(1_000_000, peak, cfg) == pytest.approx(6e-5)
    steps = range(2000, 900_001, 10_000)
    lrs = [lr_at(s, peak, cfg) for s in steps]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_stage2_is_constant_tenth_of_peak():
    cfg = config.load(f"{CONFIGS}/stage2.yaml")
    assert cfg.schedule.kind == "constant" and cfg.steps == 50_000
    assert [lr_at(s, cfg.optim.lr, cfg.schedule) for s in (0, 1, 25_000, 50_000)] == [pytest.approx(6e-5)] * 4
    assert cfg.global_batch_tokens == 512 * 4096 and cfg.data.context_length == 4096
    assert cfg.checkpoint.init_from


def test_stage1_paper_values():
    cfg = config.load(f"{CONFIGS}/stage1.yaml")
    assert (cfg.steps, cfg.global_batch_tokens, cfg.data.context_length) == (1_000_000, 2048 * 1024, 1024)
    assert (cfg.optim.lr, cfg.optim.betas, cfg.optim.eps, cfg.optim.weight_decay) == (6e-4, (0.9, 0.95), 1e-8, 0.1)
    assert (cfg.schedule.warmup_steps, cfg.schedule.decay_end, cfg.schedule.final_ratio) == (2000, 900_000, 0.1)
    assert cfg.data.masking.rate == 0.2 and cfg.data.masking.replace == (1.0, 0.0, 0.0)
    assert cfg.accumulation_steps(8) == 2048 * 1024 // (8 * cfg.data.micro_batch_tokens)
    assert not math.isnan(cfg.optim.grad_clip)


def test_set_overrides_and_errors():
    cfg = config.load(f"{CONFIGS}/quickstart.yaml", ["steps=7", "data.masking.replace=[0.8, 0.1, 0.1]", "model.attention_backend=null",
                                                             "optim.lr=1e-2"])
    assert cfg.optim.lr == 0.01
    assert cfg.steps == 7 and cfg.data.masking.replace == (0.8, 0.1, 0.1) and cfg.model.attention_backend is None
    with pytest.raises(ValueError, match="unknown key"):
        config.load(None, ["data.contxt_length=5"])
    with pytest.raises(ValueError, match="micro_batch_tokens"):
        config.load(None, ["data.micro_batch_tokens=100"])
    with pytest.raises(ValueError, match="multiple of"):
        config.load(None, ["global_batch_tokens=1000"]).accumulation_steps(1)
    assert config.from_dict(cfg.to_dict()) == cfg
