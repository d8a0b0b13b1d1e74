"""Read a pipeline output from any PyTorch trainer: a StreamingDataset of windows, and MLM collators.

    from torch.utils.data import DataLoader
    from shards.api import Masking, PaddedMLM, open_dataset

    ds = open_dataset("out/sample", mixture="stage2", context_length=1024, tokenizer="bert-base-uncased")
    loader = DataLoader(ds, batch_size=32, collate_fn=PaddedMLM(ds.vocab, Masking(rate=0.3)),
                        num_workers=2, persistent_workers=True)

The windows, packing and batches are the trainer's own (`shards.windows`, `shards.packing`,
`shards.batches`), so a batch here is a batch there. Invariants: nothing is read unless the
tokenizer the caller names is, byte for byte (sha256 of its `tokenizer.json`), the one the shards
were written with; for the same windows and key, `PaddedMLM` returns exactly the tokens and labels
of `PackedMLM`, one window per row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from shards import manifest as manifest_io
from shards import packing, windows
from shards.batches import mlm_batch
from shards.manifest import Vocab
from shards.masking import IGNORE, Masking, stream_id
from shards.streams import CheckedDataset, mixture_streams, validation_streams
from shards.tokenizer import tokenizer_sha256

VALIDATION = "validation"  # the `mixture` name of the held-out split


def check_tokenizer(manifest: dict, tokenizer: str | Path, where: str) -> None:
    """Refuse to pair shards with a tokenizer other than the one that wrote them."""
    recorded = manifest["tokenizer"]
    given = tokenizer_sha256(tokenizer)
    if given != recorded["sha256"]:
        raise ValueError(
            f"{where} was tokenized with {recorded['name']!r} (vocab {recorded['vocab_size']:,}, "
            f"sha256 {recorded['sha256'][:12]}…), but tokenizer {str(tokenizer)!r} has sha256 {given[:12]}…: "
            "its token ids mean other words. Pass the recorded tokenizer, or re-tokenize the filtered "
            "documents with yours (`refinedweb tokenize --tokenizer …`, see README 'Reusing the shards')"
        )


class WindowDataset(CheckedDataset):
    """A `StreamingDataset` (`shards.streams.CheckedDataset`) over whole documents whose iteration yields their windows.

    Each item is `{"input_ids": ndarray, "id": str}`, framed `[CLS] … [SEP]`, at most
    `context_length` tokens (see `shards.windows`). `len()`, sampling, sharding across ranks and
    workers, shuffling and `state_dict()` resumption are StreamingDataset's, counted in documents.
    """

    def __init__(self, *, streams, vocab: Vocab, context_length: int, long_docs: str, manifest: dict, **kwargs):
        super().__init__(streams=streams, **kwargs)
        self.vocab, self.context_length, self.long_docs, self.manifest = vocab, context_length, long_docs, manifest

    def __iter__(self):
        truncate = self.long_docs == "truncate"
        for sample in super().__iter__():
            for w in windows.split(sample["input_ids"], self.context_length, self.vocab.cls, self.vocab.sep, truncate):
                yield {"input_ids": w, "id": sample["id"]}


def open_dataset(root: str, *, tokenizer: str | Path, mixture: str = "stage1", context_length: int = 1024,
                 long_docs: str = "split", cache_dir: str | None = None, cache_limit: int | str | None = None,
                 shuffle: bool = True, seed: int = 0, **streaming_kwargs) -> WindowDataset:
    """The windows of a pipeline output (a folder or `s3://…`), never writing into it.

    `mixture`: `stage1`, `stage2`, a mixture `.json` file, or `validation` (the held-out split).
    `long_docs`: `split` covers each long document with consecutive windows (nothing dropped);
    `truncate` keeps only its first window (the published NeoBERT recipe).
    `tokenizer`: what your model's embeddings were built for (path, folder or Hub name); checked
    against the manifest. `cache_dir`: where streaming copies and decompresses the shards it reads
    (default `shards.streams.default_cache_dir()`, one folder per dataset content, see
    `shards.streams`); `cache_limit` (bytes or e.g. `"20gb"`): evict cached shards beyond it.
    Other keyword arguments go to `StreamingDataset` (e.g. `batch_size`, `num_canonical_nodes`,
    `epoch_size`, `validate_hash="xxh64"` to check each shard file as it is cached).
    """
    windows.check(context_length, long_docs)
    manifest = manifest_io.read(root)
    check_tokenizer(manifest, tokenizer, where=str(root))
    if mixture == VALIDATION:
        streams, shuffle = validation_streams(root, cache_dir), False
    else:
        streams = mixture_streams(root, mixture, cache_dir)
    streaming_kwargs.setdefault("batch_size", 1)
    return WindowDataset(streams=streams, vocab=Vocab.from_manifest(manifest), context_length=context_length,
                         long_docs=long_docs, manifest=manifest, shuffle=shuffle, shuffle_seed=seed,
                         cache_limit=cache_limit, **streaming_kwargs)


def _stream() -> int:
    """This (rank, DataLoader worker)'s mask stream, so no two of them draw the same masks."""
    dist = torch.distributed
    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    info = torch.utils.data.get_worker_info()
    return stream_id(rank, info.id if info is not None else 0)


class PackedMLM:
    """Collate windows into one packed varlen batch for flash-attention-style models:
    `input_ids`, `labels` (T,) int64, `cu_seqlens` (B+1,) int32, `max_seqlen`, `position_ids` (T,)
    restarting at 0 in every window. Labels hold the original token where masked, `IGNORE` (−100)
    elsewhere. The k-th call of a (rank, worker) draws the masks of key (seed, stream, k), as the
    trainer does; give the DataLoader `persistent_workers=True` so k runs on across epochs (a
    worker restarted each epoch starts again at k = 0)."""

    def __init__(self, vocab: Vocab, masking: Masking = Masking(), seed: int = 0):
        self.vocab, self.masking, self.seed, self.index = vocab, masking, seed, 0

    def packed(self, samples: list[dict]) -> dict:
        p = packing.assemble([np.asarray(s["input_ids"]) for s in samples])
        batch = mlm_batch(p, self.vocab, self.masking, self.seed, _stream(), self.index)
        self.index += 1
        return batch

    __call__ = packed


class PaddedMLM(PackedMLM):
    """Collate windows into padded `(B, L)` batches (Hugging Face convention): `input_ids` (pad id
    from the manifest), `attention_mask` (1 on tokens), `labels` (−100 on unmasked and padding).
    `L` is the longest window, or `pad_to`. Same masks as `PackedMLM` for the same key."""

    def __init__(self, vocab: Vocab, masking: Masking = Masking(), seed: int = 0, pad_to: int | None = None):
        super().__init__(vocab, masking, seed)
        self.pad_to = pad_to

    def __call__(self, samples: list[dict]) -> dict:
        b = self.packed(samples)
        lengths = (b["cu_seqlens"][1:] - b["cu_seqlens"][:-1]).long()
        width = self.pad_to or b["max_seqlen"]
        if b["max_seqlen"] > width:
            raise ValueError(f"a window of {b['max_seqlen']} tokens does not fit pad_to={width}; "
                             "raise pad_to to the dataset's context_length")
        rows = torch.repeat_interleave(torch.arange(len(lengths)), lengths)
        cols = b["position_ids"]
        input_ids = torch.full((len(lengths), width), self.vocab.pad, dtype=torch.int64)
        labels = torch.full((len(lengths), width), IGNORE, dtype=torch.int64)
        attention_mask = torch.zeros((len(lengths), width), dtype=torch.int64)
        input_ids[rows, cols], labels[rows, cols], attention_mask[rows, cols] = b["input_ids"], b["labels"], 1
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
