"""The optimizer (AdamW) and its learning rate as a pure function of the step, so resuming needs
only the step.

cosine: linear warm-up from 0 to the peak over `warmup_steps`, cosine down to `final_ratio`×peak
at `decay_end`, then constant (NeoBERT stage 1: 2k, 900k, 0.1, run to 1M).
linear: the same with a straight line instead of the cosine (NeoBERT's GLUE fine-tuning: 6 % warm-up,
decay to 0.1×peak at 90 % of the steps).
constant: `final_ratio`×peak from step 0 (NeoBERT stage 2: 0.1×peak for 50k steps).
"""

from __future__ import annotations

import math

import torch

from training.config import OptimConfig, ScheduleConfig


def adamw(model: torch.nn.Module, o: OptimConfig, schedule: ScheduleConfig) -> torch.optim.AdamW:
    """Weight decay on matrices and embeddings only, not on norms or biases; the fused CUDA kernel
    when the parameters are on a GPU (one launch per step instead of one per tensor group)."""
    groups = [{"params": [p for p in model.parameters() if p.dim() >= 2], "weight_decay": o.weight_decay},
              {"params": [p for p in model.parameters() if p.dim() < 2], "weight_decay": 0.0}]
    fused = next(model.parameters()).is_cuda
    return torch.optim.AdamW(groups, lr=lr_at(0, o.lr, schedule), betas=o.betas, eps=o.eps, fused=fused)


def lr_at(step: int, peak: float, cfg: ScheduleConfig) -> float:
    if cfg.kind == "constant":
        return peak * cfg.final_ratio
    if step < cfg.warmup_steps:
        return peak * step / cfg.warmup_steps
    if step >= cfg.decay_end:
        return peak * cfg.final_ratio
    progress = (step - cfg.warmup_steps) / (cfg.decay_end - cfg.warmup_steps)
    if cfg.kind == "linear":
        return peak * (1 - (1 - cfg.final_ratio) * progress)
    return peak * (cfg.final_ratio + (1 - cfg.final_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))
