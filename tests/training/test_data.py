"""The loader on the sample's shards: exact resume (samples, packer carry, masks), refused mismatches."""

import numpy as np
import pytest
import torch

from shards import manifest
from shards.api import PackedMLM
from shards.masking import IGNORE, Masking
from shards.streams import mixture_streams, validation_streams
from streaming import StreamingDataset
from training import data
from training.config import DataConfig


def loader(root, cfg, resume=None, seed=0):
    ds = data.training_dataset(mixture_streams(str(root), cfg.mixture), cfg, seed)
    vocab = data.Vocab.from_manifest(manifest.read(str(root)))
    return data.MicroBatches(ds, cfg, vocab, seed, 0, 1, resume)


def same(a, b):
    return all(torch.equal(a[k], b[k]) for k in ("input_ids", "labels", "cu_seqlens", "position_ids"))


def test_resume_continues_with_the_same_batches_and_masks(sample_output):
    cfg = DataConfig(root=str(sample_output), context_length=128, micro_batch_tokens=700, num_workers=0)
    it = iter(loader(sample_output, cfg))
    batches = [next(it) for _ in range(14)]
    cut = batches[6]["state"]
    assert len(cut["carry_lengths"]) > 0, "the case under test: windows carried over in the packer"
    resumed = iter(loader(sample_output, cfg, resume=[cut]))
    for expected in batches[7:]:
        assert same(next(resumed), expected)
    for b in batches:  # every window fits the context and the budget
        assert b["input_ids"].numel() <= 700 and b["max_seqlen"] <= 128


def test_resume_in_a_later_epoch(sample_output):
    cfg = DataConfig(root=str(sample_output), context_length=512, micro_batch_tokens=8192, num_workers=0)
    source = loader(sample_output, cfg)
    per_epoch = len(source.dataset)
    it = iter(source)
    batches = [next(it) for _ in range(60)]
    cut = next(i for i, b in enumerate(batches) if b["state"]["taken"] > per_epoch + 3)
    assert cut < 50, "the case under test: a cut inside the second epoch"
    resumed = iter(loader(sample_output, cfg, resume=[batches[cut]["state"]]))
    for expected in batches[cut + 1:]:
        assert same(next(resumed), expected)


def test_resume_refuses_other_settings(sample_output):
    cfg = DataConfig(root=str(sample_output), context_length=128, micro_batch_tokens=700, num_workers=0)
    state = next(iter(loader(sample_output, cfg)))["state"]
    other = DataConfig(root=str(sample_output), context_length=256, micro_batch_tokens=700, num_workers=0)
    with pytest.raises(ValueError, match="context_length"):
        loader(sample_output, other, resume=[state])
    with pytest.raises(ValueError, match="same number of processes"):
        loader(sample_output, cfg, resume=[state, state])


def test_validation_batches_are_fixed_and_cover_the_split(sample_output):
    cfg = DataConfig(root=str(sample_output), context_length=512, micro_batch_tokens=2048, num_workers=0)
    vocab = data.Vocab.from_manifest(manifest.read(str(sample_output)))
    ds = StreamingDataset(streams=validation_streams(str(sample_output)), shuffle=False, batch_size=1)
    first = list(data.validation_batches(ds, cfg, vocab, seed=5, rank=0))
    second = list(data.validation_batches(ds, cfg, vocab, seed=5, rank=0))
    assert len(first) == len(second) > 0 and all(same(a, b) for a, b in zip(first, second))
    expected = manifest.read(str(sample_output))["validation"]["tokens"]
    content = sum(int(np.diff(b["cu_seqlens"].numpy()).sum()) - 2 * (len(b["cu_seqlens"]) - 1) for b in first)
    docs = [s["input_ids"] for s in ds]
    assert content == sum(len(d) - 2 for d in docs) and sum(len(d) for d in docs) == expected


def test_the_api_collator_and_the_trainer_make_the_same_batches(sample_output):
    """One batch maker: fed the trainer's windows in the trainer's order, `shards.api.PackedMLM`
    gives exactly the trainer's tokens, labels, boundaries and positions, batch after batch."""
    cfg = DataConfig(root=str(sample_output), context_length=256, micro_batch_tokens=1024, num_workers=0,
                     masking=Masking(rate=0.3, replace=(0.8, 0.1, 0.1)))
    it = iter(loader(sample_output, cfg, seed=11))
    collator = PackedMLM(data.Vocab.from_manifest(manifest.read(str(sample_output))), cfg.masking, seed=11)
    for _ in range(12):
        b = next(it)
        original = torch.where(b["labels"] != IGNORE, b["labels"], b["input_ids"])
        cu = b["cu_seqlens"].tolist()
        windows = [{"input_ids": original[a:z].numpy()} for a, z in zip(cu[:-1], cu[1:])]
        got = collator(windows)
        assert same(got, b) and got["max_seqlen"] == b["max_seqlen"]
    assert (b["labels"] != IGNORE).sum() > 50, "the case under test: masked tokens"
