"""Tokens/s of the trainer's input path, per worker process, measured side by side in one run:

  stream   StreamingDataset samples only (read + decompress + decode), the floor under everything
  full     stream → windows → pack → mask, in this process (what one DataLoader worker does)
  loader   the same through a DataLoader with one worker, as the trainer runs it

at stage-1 (context 1024) and stage-2 (context 4096) settings, 32k-token micro-batches.
Goal: full ≥ 1M tokens/s per worker.

    python -m benchmarks.dataloader_throughput --root OUT [--tokens 20000000]
"""

from __future__ import annotations

import argparse
import time

from torch.utils.data import DataLoader

from shards import manifest
from shards.streams import mixture_streams
from training import data
from training.config import DataConfig


def stream_only(cfg: DataConfig, target: int) -> float:
    ds = data.training_dataset(mixture_streams(cfg.root, cfg.mixture), cfg, seed=0)
    n, t0 = 0, time.perf_counter()
    while n < target:
        for sample in ds:
            n += len(sample["input_ids"])
            if n >= target:
                break
    return n / (time.perf_counter() - t0)


def packed(cfg: DataConfig, target: int, workers: int) -> float:
    ds = data.training_dataset(mixture_streams(cfg.root, cfg.mixture), cfg, seed=0)
    vocab = data.Vocab.from_manifest(manifest.read(cfg.root))
    source = data.MicroBatches(ds, cfg, vocab, seed=0, rank=0, world_size=1)
    if workers:
        source = DataLoader(source, batch_size=None, num_workers=workers, prefetch_factor=4)
    it = iter(source)
    next(it)  # start-up (worker spawn, first shard) is not throughput
    n, t0 = 0, time.perf_counter()
    while n < target:
        n += next(it)["input_ids"].numel()
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="out/sample", help="pipeline output folder (manifest.json, mds/, mixtures/)")
    parser.add_argument("--tokens", type=int, default=20_000_000, help="tokens per measurement")
    args = parser.parse_args()
    print(f"{'setting':<30}{'stream':>14}{'full':>14}{'loader(1w)':>14}{'full/stream':>13}")
    for name, mixture, context in (("stage 1 (ctx 1024)", "stage1", 1024), ("stage 2 (ctx 4096)", "stage2", 4096)):
        cfg = DataConfig(root=args.root, mixture=mixture, context_length=context, micro_batch_tokens=32768)
        s = stream_only(cfg, args.tokens)
        f = packed(cfg, args.tokens, workers=0)
        w = packed(cfg, args.tokens, workers=1)
        print(f"{name:<30}{s:>14,.0f}{f:>14,.0f}{w:>14,.0f}{f / s:>13.2f}")
    print("tokens/s per worker process; goal: full >= 1,000,000")


if __name__ == "__main__":
    main()
