"""Validation on the held-out split: MLM loss, accuracy and MLM perplexity (exp of the 20 %-masked
MLM loss) per position range, and the published pseudo-perplexity (`training.pppl`, each scored
position masked alone) per range — the curve NeoBERT uses to show long-context stability.

Masks come from a fixed seed, so every validation of a run (and of another run) scores the same
tokens. One forward per micro-batch, streamed: nothing is kept but the per-range sums. Every rank
runs the same number of forward passes (padding with an empty one), which sharded models (FSDP2)
need.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.distributed as dist
from streaming import StreamingDataset
from tqdm import tqdm

from shards.manifest import Vocab
from shards.masking import IGNORE
from shards.streams import CheckedDataset, validation_streams
from training import data, parallel, pppl
from training.config import Config
from training.ranges import position_ranges


def dataset(cfg: Config) -> StreamingDataset:
    """The held-out split of `data.root`, in order, each rank its own share."""
    try:
        streams = validation_streams(cfg.data.root, cfg.data.cache_dir)
    except ValueError as e:
        raise ValueError(f"{e}, or set validation.every=0 to train without validation") from None
    return CheckedDataset(streams=streams, shuffle=False, batch_size=1, num_canonical_nodes=data.num_nodes(),
                            **data.cache_settings(cfg.data))


def run(model, dataset: StreamingDataset, cfg: Config, vocab: Vocab, rank: int, device: torch.device,
        autocast) -> dict:
    """One validation pass, scored at validation.context_length (default: the model's max length),
    not the training context, so a stage-1 model's loss beyond 1k positions shows too; then
    pseudo-perplexity on the first `validation.pll.max_documents` documents unless
    `validation.pll.positions` is 0."""
    v = cfg.validation
    context = v.context_length or cfg.model.max_length
    spans = position_ranges(context)
    data_cfg = dataclasses.replace(cfg.data, context_length=context,
                                   micro_batch_tokens=max(context, cfg.data.micro_batch_tokens))
    batches = data.validation_batches(dataset, data_cfg, vocab, v.seed, rank, v.max_documents)
    bar = tqdm(batches, desc="validation", unit="batch", leave=False, disable=rank != 0)
    result = evaluate(model, bar, spans, device, autocast)
    if v.pll.positions:
        windows = pppl.held_out_windows(dataset, context, vocab, v.pll.max_documents)
        bar = tqdm(windows, desc="pseudo-perplexity", unit="window", leave=False, disable=rank != 0)
        result.update(pppl.flat(pppl.evaluate(model, bar, spans, v.pll, vocab, v.seed, device, autocast)))
    return result


@torch.no_grad()
def evaluate(model, batches, spans, device: torch.device, autocast) -> dict:
    """One forward per micro-batch as it streams in; its masked tokens' losses are summed per
    position range of `spans` (`training.ranges`). Memory does not depend on the split's size. Ranks step together: each
    iteration agrees whether any rank still has a batch, and a rank without one runs an empty
    forward (sharded models need every rank in every forward)."""
    world = dist.get_world_size() if dist.is_initialized() else 1
    bounds = torch.tensor([hi for _, hi, _ in spans], device=device)
    sums = torch.zeros(len(spans), 3, dtype=torch.float64, device=device)  # loss, masked, correct
    was_training = model.training
    model.eval()
    batches = iter(batches)
    while parallel.any_rank((mb := next(batches, None)) is not None, world, device):
        mb = mb or _dummy()
        labels = mb.get("labels", torch.full_like(mb["input_ids"], IGNORE)).to(device)
        with autocast():
            out = model(mb["input_ids"].to(device), mb["cu_seqlens"].to(device), mb["max_seqlen"],
                        mb["position_ids"].to(device), labels=labels, reduction="none")
        which = torch.bucketize(mb["position_ids"].to(device)[labels != IGNORE], bounds, right=True)
        values = torch.stack([out.loss.double(), torch.ones_like(out.loss, dtype=torch.float64),
                              out.num_correct.double()], dim=1)
        sums.index_add_(0, which, values)
    model.train(was_training)
    sums = parallel.all_sum(sums, world)
    result = {}
    total = sums.sum(0)
    if total[1] > 0:
        result.update(loss=float(total[0] / total[1]), accuracy=float(total[2] / total[1]))
        result["mlm_perplexity"] = math.exp(result["loss"])
    for (lo, hi, name), (loss, n, correct) in zip(spans, sums.tolist()):
        if n > 0:
            result[f"loss_{name}"] = loss / n
            result[f"accuracy_{name}"] = correct / n
            result[f"mlm_perplexity_{name}"] = math.exp(loss / n)
    result["masked_tokens"] = int(total[1])
    return result


def summary(result: dict) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in result.items() if k.startswith(("loss", "mlm_perplexity", "pseudo")))


def _dummy() -> dict:
    return {"input_ids": torch.zeros(2, dtype=torch.long), "cu_seqlens": torch.tensor([0, 2], dtype=torch.int32),
            "max_seqlen": 2, "position_ids": torch.arange(2)}
