"""Training throughput of the full NeoBERT on one GPU: packed varlen backends vs padded rows.

    PYTHONPATH=. python benchmarks/gpu_train.py              # a GPU; under 4 minutes on an H100
    PYTHONPATH=. python benchmarks/gpu_train.py --cpu-smoke  # tiny model, 2 steps: the script runs

Each setting times AdamW training steps (fwd + bwd + step, bf16 autocast, fp32 weights) on
synthetic batches whose document lengths are lognormal, clipped to the stage's context:

- packed: documents back to back up to `--tokens` per micro-batch (the last one cut to fit),
  attention per document through each importable varlen backend;
- padded: one document per row, rows padded to the longest, as many rows as fit in the same
  `--tokens` slots, SDPA with a key mask (the published model's path).

It prints real (non-padding) tokens/s, MFU and peak memory per setting, and the packed/padded
ratio. MFU counts useful work only: 6 x (matmul parameters) per real token, 12 x layers x hidden
x sum(doc_len^2) for attention, 6 x hidden x vocab per masked token for the decoder, over the
`--peak-tflops` of the card (default 989: H100 SXM bf16 dense).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import time
from dataclasses import dataclass

import torch

from neobert import NeoBERTConfig, NeoBERTLMHead
from neobert.attention import available_backends

MASK_RATE = 0.2


@dataclass(frozen=True)
class Stage:
    name: str
    context: int
    median: float  # lognormal document length: median tokens and sigma of log-length
    sigma: float


STAGES = (Stage("stage1", 1024, 500, 1.0), Stage("stage2", 4096, 1000, 1.2))
SMOKE_STAGES = (Stage("stage1", 128, 60, 1.0), Stage("stage2", 256, 100, 1.2))


def document_stream(stage: Stage, g: torch.Generator):
    while True:
        n = torch.empty(1).log_normal_(math.log(stage.median), stage.sigma, generator=g)
        yield int(n.clamp(8, stage.context).item())


def labelled(input_ids: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return torch.where(torch.rand(input_ids.shape, generator=g) < MASK_RATE, input_ids, -100)


def packed_batch(lengths, tokens: int, g: torch.Generator) -> tuple[dict, list[int]]:
    docs = []
    while sum(docs) < tokens:
        docs.append(next(lengths))
    docs[-1] -= sum(docs) - tokens
    input_ids = torch.randint(1000, 30000, (tokens,), generator=g)
    batch = dict(input_ids=input_ids,
                 cu_seqlens=torch.tensor([0, *torch.tensor(docs).cumsum(0).tolist()], dtype=torch.int32),
                 max_seqlen=max(docs), position_ids=torch.cat([torch.arange(n) for n in docs]),
                 labels=labelled(input_ids, g))
    return batch, docs


def padded_batch(lengths, tokens: int, g: torch.Generator) -> tuple[dict, list[int]]:
    docs = [next(lengths)]
    while (len(docs) + 1) * max(docs + [nxt := next(lengths)]) <= tokens:
        docs.append(nxt)
    L = max(docs)
    mask = (torch.arange(L)[None, :] < torch.tensor(docs)[:, None]).long()
    input_ids = torch.randint(1000, 30000, (len(docs), L), generator=g) * mask
    labels = labelled(input_ids, g).masked_fill(mask == 0, -100)
    return dict(input_ids=input_ids, attention_mask=mask, labels=labels), docs


def train_flops(config: NeoBERTConfig, docs: list[int], num_masked: int) -> float:
    C, F, layers = config.hidden_size, config.swiglu_hidden_size, config.num_hidden_layers
    matmul_params = layers * (3 * C * C + C * C + 2 * C * F + F * C)
    return (6 * matmul_params * sum(docs) + 12 * layers * C * sum(n * n for n in docs)
            + 6 * C * config.vocab_size * num_masked)


def measure(model, optimizer, batches, device: str, warmup: int) -> tuple[float, float | None]:
    """Seconds per step over `batches[warmup:]`, and peak GiB allocated (None on CPU)."""
    cuda = device == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    for i, batch in enumerate(batches):
        if i == warmup:
            if cuda:
                torch.cuda.synchronize()
            started = time.perf_counter()
        with autocast:
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if cuda:
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - started) / (len(batches) - warmup)
    return seconds, torch.cuda.max_memory_allocated() / 2**30 if cuda else None


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cpu-smoke", action="store_true", help="tiny model on CPU, 2 steps per setting")
    p.add_argument("--tokens", type=int, default=32768, help="token slots per micro-batch")
    p.add_argument("--steps", type=int, default=10, help="timed steps per setting")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the card")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    if args.cpu_smoke:
        device, config, stages = "cpu", NeoBERTConfig.tiny(), SMOKE_STAGES
        args.tokens, args.steps, args.warmup = 1024, 2, 1
    elif torch.cuda.is_available():
        device, config, stages = "cuda", NeoBERTConfig(), STAGES
    else:
        raise SystemExit("no CUDA: run on a GPU machine, or pass --cpu-smoke to check the script on CPU")
    variants = [b for b in available_backends(device) if b != "sdpa"] or ["sdpa"]
    torch.manual_seed(args.seed)
    with torch.device(device):
        model = NeoBERTLMHead(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device == "cuda")
    print(f"device: {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}, torch {torch.__version__}")
    print(f"model: {config.num_hidden_layers} layers, hidden {config.hidden_size}, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters; AdamW, "
          f"{'bf16 autocast' if device == 'cuda' else 'float32'}; {args.tokens} token slots per micro-batch, "
          f"{MASK_RATE:.0%} labelled; {args.warmup} warm-up + {args.steps} timed steps per setting")
    print(f"MFU assumes a peak of {args.peak_tflops:g} TFLOP/s (H100 SXM bf16 dense) and counts useful work only")
    print(f"packed variants: {variants}; baseline: padded rows with SDPA\n")
    header = f"{'stage':<8}{'ctx':>6}  {'variant':<16}{'docs':>6}{'real tok':>10}{'pad %':>7}" \
             f"{'step ms':>9}{'real tok/s':>12}{'MFU':>7}{'peak GiB':>10}"
    print(header)
    ratios = []
    for stage in stages:
        best = {}
        for variant in [*variants, "padded"]:
            g = torch.Generator().manual_seed(args.seed)
            lengths = document_stream(stage, g)
            make = padded_batch if variant == "padded" else packed_batch
            built = [make(lengths, args.tokens, g) for _ in range(args.warmup + args.steps)]
            batches = [{k: v.to(device) if torch.is_tensor(v) else v for k, v in b.items()} for b, _ in built]
            model.config.attention_backend = "sdpa" if variant == "padded" else variant
            label = "padded (sdpa)" if variant == "padded" else variant
            try:
                seconds, peak = measure(model, optimizer, batches, device, args.warmup)
            except torch.OutOfMemoryError:
                optimizer.zero_grad(set_to_none=True)
                torch.cuda.empty_cache()
                print(f"{stage.name:<8}{stage.context:>6}  {label:<16}out of memory at {args.tokens} token slots")
                continue
            timed = built[args.warmup:]
            real = sum(sum(docs) for _, docs in timed) / len(timed)
            slots = sum(b["input_ids"].numel() for b, _ in timed) / len(timed)
            flops = sum(train_flops(config, docs, int((b["labels"] != -100).sum())) for b, docs in timed) / len(timed)
            docs_per_step = sum(len(docs) for _, docs in timed) / len(timed)
            mfu = f"{flops / seconds / (args.peak_tflops * 1e12):.1%}" if device == "cuda" else "n/a"
            print(f"{stage.name:<8}{stage.context:>6}  {label:<16}{docs_per_step:>6.0f}{real:>10.0f}"
                  f"{1 - real / slots:>7.0%}{1000 * seconds:>9.1f}{real / seconds:>12,.0f}{mfu:>7}"
                  f"{'n/a' if peak is None else f'{peak:.1f}':>10}")
            best[variant] = real / seconds
        packed = max((v for k, v in best.items() if k != "padded"), default=None)
        if packed and "padded" in best:
            ratios.append(f"{stage.name}: packed {packed / best['padded']:.1f}x the padded real tokens/s")
    print("\n" + ("; ".join(ratios) if ratios else "no packed/padded pair completed"))


if __name__ == "__main__":
    main()
