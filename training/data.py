"""Stream → windows → packed micro-batches → masks, with a loader state that resumes exactly.

Each rank reads its own partition of one `streaming.StreamingDataset` (shuffled from the run seed)
in one DataLoader worker. Every micro-batch carries the loader state *after* it (samples this rank
has taken, micro-batches emitted, the packer's carry), so the trainer saves the state of exactly
what it consumed, whatever the worker prefetched.

Resume: ranks take different numbers of samples (packing is by tokens), while StreamingDataset
resumes at one global sample offset with rank r then reading samples offset+r, offset+r+R, ….
So we resume at R × (fewest samples any rank took) and each rank skips its own surplus: every
sample is read once, no gap, no overlap, across any number of restarts.

Epochs: StreamingDataset starts every epoch with a barrier across the ranks of a node. Because
ranks take samples at different rates, a reader thread runs up to `data.read_ahead` samples
ahead of the packer, so the ranks behind can still reach the barrier while the first one waits
there (the ranks stay in step through the training collectives).
"""

from __future__ import annotations

import logging
import os
import queue
import threading

import numpy as np
import torch
from streaming import StreamingDataset
from torch.utils.data import DataLoader, IterableDataset

from shards import packing, windows
from shards.batches import mlm_batch
from shards.manifest import Vocab
from shards.masking import stream_id
from shards.streams import CheckedDataset, default_cache_dir, mixture_streams
from training import preemption
from training.config import Config, DataConfig

STATE_VERSION = 1
log = logging.getLogger("training")


def num_nodes() -> int:
    world = int(os.environ.get("WORLD_SIZE", 1))
    return max(1, world // int(os.environ.get("LOCAL_WORLD_SIZE", world)))


def training_dataset(streams, cfg: DataConfig, seed: int) -> StreamingDataset:
    return CheckedDataset(streams=streams, shuffle=cfg.shuffle, shuffle_seed=seed, batch_size=1,
                            num_canonical_nodes=num_nodes(), **cache_settings(cfg))


def cache_settings(cfg: DataConfig) -> dict:
    """What every StreamingDataset of the run takes from `data.`: the cache's size, hash checks."""
    return {"cache_limit": cfg.cache_limit, "validate_hash": cfg.validate_hash}


def settings(cfg: DataConfig, seed: int, world_size: int) -> dict:
    """Everything the loader state's meaning depends on; resuming under other values is refused."""
    return {
        "root": cfg.root, "mixture": cfg.mixture, "context_length": cfg.context_length,
        "long_docs": cfg.long_docs, "micro_batch_tokens": cfg.micro_batch_tokens, "mask_rate": cfg.masking.rate,
        "mask_replace": list(cfg.masking.replace), "shuffle": cfg.shuffle, "seed": seed,
        "world_size": world_size, "num_canonical_nodes": num_nodes(),
    }


def _carry_to_state(carry: list[np.ndarray]) -> dict:
    lengths = torch.tensor([len(w) for w in carry], dtype=torch.int64)
    ids = torch.from_numpy(np.concatenate(carry).astype(np.int64)) if carry else torch.zeros(0, dtype=torch.int64)
    return {"carry_ids": ids, "carry_lengths": lengths}


def _carry_from_state(state: dict) -> list[np.ndarray]:
    ids = state["carry_ids"].numpy()
    bounds = np.cumsum([0, *state["carry_lengths"].tolist()])
    return [ids[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


class MicroBatches(IterableDataset):
    """Endless masked micro-batches for one rank (`shards.batches.mlm_batch`), each with the
    loader `state` after it."""

    def __init__(self, dataset: StreamingDataset, cfg: DataConfig, vocab: Vocab, seed: int, rank: int,
                 world_size: int, resume_from: list[dict] | None = None):
        self.dataset, self.cfg, self.vocab, self.seed, self.rank = dataset, cfg, vocab, seed, rank
        self.settings = {**settings(cfg, seed, world_size), "samples_per_rank_epoch": len(dataset)}
        self.start = {"taken": 0, "skip_to": 0, "emitted": 0, "carry": []}
        if resume_from is not None:
            self._resume(resume_from, world_size)

    def _resume(self, states: list[dict], world_size: int) -> None:
        if len(states) != world_size:
            raise ValueError(
                f"the checkpoint's loader state is for {len(states)} ranks, this run has {world_size}: "
                "resume with the same number of processes"
            )
        for r, st in enumerate(states):
            if st["version"] != STATE_VERSION:
                raise ValueError(f"loader state version {st['version']} (rank {r}), this code reads {STATE_VERSION}")
            diff = {k: (st["settings"].get(k), v) for k, v in self.settings.items() if st["settings"].get(k) != v}
            if diff:
                raise ValueError(
                    "the checkpoint's data loader was built with other settings (saved, now): "
                    f"{diff}; restore them, or start a new run_dir (or set checkpoint.resume=none)"
                )
        fewest = min(st["taken"] for st in states)
        per_rank_epoch = len(self.dataset)
        self.dataset.load_state_dict({
            "epoch": fewest // per_rank_epoch,
            "sample_in_epoch": world_size * (fewest % per_rank_epoch),
            "num_canonical_nodes": self.settings["num_canonical_nodes"],
            "shuffle_seed": self.seed,
            "initial_physical_nodes": self.settings["num_canonical_nodes"],
        })
        mine = states[self.rank]
        self.start = {"taken": fewest, "skip_to": mine["taken"], "emitted": mine["emitted"],
                      "carry": _carry_from_state(mine)}

    def state(self, taken: int, emitted: int, carry: list[np.ndarray]) -> dict:
        return {"version": STATE_VERSION, "settings": self.settings, "taken": taken, "emitted": emitted,
                **_carry_to_state(carry)}

    def documents(self):
        """(number of samples taken so far, document tokens), endless over epochs, surplus skipped."""
        taken, skip_to = self.start["taken"], self.start["skip_to"]
        for doc in read_ahead(self.dataset, self.cfg.read_ahead):
            taken += 1
            if taken > skip_to:
                yield taken, doc

    def __iter__(self):
        cfg, vocab = self.cfg, self.vocab
        packer = packing.Packer(cfg.micro_batch_tokens, self.start["carry"])
        emitted = self.start["emitted"]
        truncate = cfg.long_docs == "truncate"
        for taken, doc in self.documents():
            packer.push(windows.split(doc, cfg.context_length, vocab.cls, vocab.sep, truncate))
            while (packed := packer.pop()) is not None:
                batch = mlm_batch(packed, vocab, cfg.masking, self.seed, stream_id(self.rank), emitted)
                emitted += 1
                batch["state"] = self.state(taken, emitted, packer.carry)
                yield batch


def loader(cfg: Config, vocab: Vocab, rank: int, world: int, device: torch.device,
           states: list[dict] | None) -> tuple[MicroBatches, object]:
    """This rank's micro-batches (resumed from `states`, one per rank) and the iterator the
    trainer draws from: packing runs in `data.num_workers` (0 or 1) DataLoader worker(s), which ignore
    SIGTERM/SIGINT (`training.preemption`): the caller stops them with `preemption.shutdown`."""
    if rank == 0:
        log.info(f"data: {cfg.data.root} read through the cache {cfg.data.cache_dir or default_cache_dir()} "
                 f"(cache_limit {cfg.data.cache_limit or 'none'}, validate_hash {cfg.data.validate_hash or 'off'})")
    dataset = training_dataset(mixture_streams(cfg.data.root, cfg.data.mixture, cfg.data.cache_dir), cfg.data,
                               cfg.seed)
    batches = MicroBatches(dataset, cfg.data, vocab, cfg.seed, rank, world, states)
    workers = cfg.data.num_workers
    iterator = iter(DataLoader(batches, batch_size=None, num_workers=workers,
                               worker_init_fn=preemption.ignore_stop_signals if workers else None,
                               prefetch_factor=4 if workers else None, pin_memory=device.type == "cuda"))
    preemption.shutdown_at_exit(iterator)
    return batches, iterator


def read_ahead(dataset: StreamingDataset, limit: int):
    """Every epoch's `input_ids` in order, read by a thread up to `limit` samples ahead."""
    buffer: queue.Queue = queue.Queue(maxsize=limit)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            while True:
                for sample in dataset:
                    if not put(sample["input_ids"]):
                        return
        except Exception as e:  # handed to the consumer, which raises it
            put(e)

    threading.Thread(target=read, name="read-ahead", daemon=True).start()
    try:
        while True:
            item = buffer.get()
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        stop.set()


def validation_batches(dataset: StreamingDataset, cfg: DataConfig, vocab: Vocab, seed: int, rank: int,
                       max_documents: int | None = None):
    """One pass over this rank's share of the held-out split, windows split, masks fixed by `seed`."""
    packer = packing.Packer(cfg.micro_batch_tokens)
    index = 0
    for n, sample in enumerate(dataset):
        if max_documents is not None and n >= max_documents:
            break
        packer.push(windows.split(sample["input_ids"], cfg.context_length, vocab.cls, vocab.sep))
        while (packed := packer.pop()) is not None:
            yield mlm_batch(packed, vocab, cfg.masking, seed, stream_id(rank), index)
            index += 1
    while (packed := packer.pop(final=True)) is not None:
        yield mlm_batch(packed, vocab, cfg.masking, seed, stream_id(rank), index)
        index += 1
