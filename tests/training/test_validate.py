"""Streaming validation: one forward per micro-batch, nothing held, and the metrics of the former
implementation (every micro-batch kept, one forward per position range) on the sample."""

from __future__ import annotations

import contextlib
import math

import pytest
import torch
from streaming import StreamingDataset

from neobert import NeoBERTConfig, NeoBERTLMHead
from shards import manifest
from shards.masking import IGNORE
from shards.streams import validation_streams
from training import data, validate
from training.config import DataConfig


def reference(model, batches) -> dict:
    """The former `evaluate`: per range, a forward with only that range's labels."""
    sums = torch.zeros(len(validate.RANGES), 3, dtype=torch.float64)
    for mb in batches:
        for i, (lo, hi, _) in enumerate(validate.RANGES):
            pos, labels = mb["position_ids"], mb["labels"]
            chosen = (pos >= lo) & (pos < hi) & (labels != IGNORE)
            if chosen.any():
                out = model(mb["input_ids"], mb["cu_seqlens"], mb["max_seqlen"], pos,
                            labels=torch.where(chosen, labels, IGNORE), reduction="sum")
                sums[i] += torch.stack([out.loss.double(), out.num_masked.double(), out.num_correct.double()])
    total = sums.sum(0)
    result = {"loss": float(total[0] / total[1]), "accuracy": float(total[2] / total[1])}
    for (_, _, name), (loss, n, correct) in zip(validate.RANGES, sums.tolist()):
        if n:
            result[f"loss_{name}"], result[f"accuracy_{name}"] = loss / n, correct / n
    return result


@pytest.fixture(scope="module")
def setup(sample_output):
    vocab = data.Vocab.from_manifest(manifest.read(str(sample_output)))
    ds = StreamingDataset(streams=validation_streams(str(sample_output)), shuffle=False, batch_size=1)
    torch.manual_seed(0)
    model = NeoBERTLMHead(NeoBERTConfig.tiny(vocab_size=vocab.size)).eval()

    def batches(context: int = 4096):
        cfg = DataConfig(root=str(sample_output), context_length=context, micro_batch_tokens=context, num_workers=0)
        return data.validation_batches(ds, cfg, vocab, seed=3, rank=0)

    return model, batches


def test_streamed_metrics_equal_the_former_implementation(setup):
    model, batches = setup
    got = validate.evaluate(model, batches(), torch.device("cpu"), contextlib.nullcontext)
    with torch.no_grad():
        want = reference(model, list(batches()))
    assert {"loss_0-1k", "loss_1k-2k"} <= set(got), "the case under test: positions past 1k scored"
    for key, value in want.items():
        assert math.isclose(got[key], value, rel_tol=1e-6), (key, got[key], value)
    assert got["pseudo_perplexity"] == pytest.approx(math.exp(want["loss"]))


def test_one_forward_per_batch_and_nothing_read_ahead(setup):
    model, batches = setup
    log = []

    def produced():
        for mb in batches(256):
            log.append("batch")
            yield mb

    class Counting(torch.nn.Module):
        def forward(self, *args, **kwargs):
            log.append("forward")
            return model(*args, **kwargs)

    validate.evaluate(Counting(), produced(), torch.device("cpu"), contextlib.nullcontext)
    assert log.count("batch") > 3 and log == ["batch", "forward"] * log.count("batch")
