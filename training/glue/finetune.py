"""One fine-tune: one grid point of one task, with the published protocol.

Steps = epochs × ⌈train examples / batch size⌉; lr linear warm-up over `warmup` of them, linear decay
to `final_ratio` × lr at `decay_end` of them (`training.schedule`, kind linear); AdamW as the trainer
builds it (`training.schedule.adamw`: decay on matrices and embeddings). Evaluation every
min(`eval_every`, steps per epoch) steps and at the last step; training stops after `early_stopping`
evaluations without a better score. The outcome is the best evaluation and its weights.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from training import precision
from training.config import OptimConfig, ScheduleConfig
from training.glue import data
from training.glue.config import GlueConfig
from training.glue.grid import Point
from training.glue.metrics import evaluate
from training.glue.tasks import Task
from training.schedule import adamw, lr_at

log = logging.getLogger("training")


@dataclass
class Plan:
    steps: int
    eval_every: int
    schedule: ScheduleConfig


def plan(num_examples: int, cfg: GlueConfig, point: Point) -> Plan:
    per_epoch = math.ceil(num_examples / point.batch_size)
    steps = cfg.epochs * per_epoch
    warmup = math.ceil(steps * cfg.warmup)
    decay_end = max(math.ceil(steps * cfg.decay_end), warmup + 1)
    return Plan(steps, max(1, min(cfg.eval_every, per_epoch)),
                ScheduleConfig(kind="linear", warmup_steps=warmup, decay_end=decay_end, final_ratio=cfg.final_ratio))


@dataclass
class Outcome:
    point: Point
    metrics: dict[str, float]  # of the best evaluation, `score` included
    step: int  # of the best evaluation
    steps: int  # run
    stopped_early: bool
    state: dict[str, torch.Tensor]  # best weights, on the CPU


def _forward(model, batch: dict, device: torch.device) -> torch.Tensor:
    on = lambda t: t.to(device, non_blocking=True)  # noqa: E731
    with precision.autocast(device):
        if "cu_seqlens" in batch:
            return model(on(batch["input_ids"]), on(batch["cu_seqlens"]), batch["max_seqlen"],
                         on(batch["position_ids"])).float()
        return model(on(batch["input_ids"]), attention_mask=on(batch["attention_mask"])).float()


def loss_of(logits: torch.Tensor, labels: torch.Tensor, task: Task) -> torch.Tensor:
    """MSE for regression, cross-entropy otherwise (as the published head)."""
    if task.regression:
        return F.mse_loss(logits.squeeze(-1), labels.float())
    return F.cross_entropy(logits, labels)


@torch.no_grad()
def predict(model, ex: data.Examples, cfg: GlueConfig, device: torch.device, pad: int) -> np.ndarray:
    """Scores (regression) or argmax classes for every example, in order."""
    was_training = model.training
    model.eval()
    out = [_forward(model, b, device).cpu() for b in data.batches(ex, cfg.eval_batch_size, cfg.layout, pad)]
    model.train(was_training)
    logits = torch.cat(out)
    return (logits.squeeze(-1) if logits.shape[-1] == 1 else logits.argmax(-1)).numpy()


def finetune(model, train: data.Examples, val: data.Examples, task: Task, cfg: GlueConfig, point: Point,
             device: torch.device, pad: int, desc: str) -> Outcome:
    p = plan(len(train), cfg, point)
    optim = OptimConfig(lr=point.lr, weight_decay=point.weight_decay)
    optimizer = adamw(model, optim, p.schedule)
    order_rng = np.random.default_rng(cfg.seed)
    best: Outcome | None = None
    stale, step = 0, 0
    bar = tqdm(total=p.steps, desc=desc, dynamic_ncols=True, leave=False)
    model.train()
    try:
        while step < p.steps:
            for batch in data.batches(train, point.batch_size, cfg.layout, pad, order_rng.permutation(len(train))):
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step, point.lr, p.schedule)
                loss = loss_of(_forward(model, batch, device), batch["labels"].to(device), task)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), optim.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.4f}")
                if step % p.eval_every and step != p.steps:
                    continue
                metrics = evaluate(task.metrics, predict(model, val, cfg, device, pad), val.labels)
                if best is None or metrics["score"] > best.metrics["score"]:
                    state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
                    best, stale = Outcome(point, metrics, step, step, False, state), 0
                else:
                    stale += 1
                shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k != "score")
                log.info(f"{desc} step {step}/{p.steps}: {shown} (best {best.metrics['score']:.4f} at step {best.step})")
                if cfg.early_stopping and stale >= cfg.early_stopping:
                    log.info(f"{desc}: no gain in {stale} evaluations, stopping at step {step}")
                    best.stopped_early = True
                    break
                if step == p.steps:
                    break
            if best is not None and best.stopped_early:
                break
    finally:
        bar.close()
    best.steps = step
    return best
