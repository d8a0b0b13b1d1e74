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
from training import config, data, pppl, validate
from training.config import DataConfig
from training.ranges import position_ranges

SPANS = position_ranges(4096)


def reference(model, batches) -> dict:
    """The former `evaluate`: per range, a forward with only that range's labels."""
    sums = torch.zeros(len(SPANS), 3, dtype=torch.float64)
    for mb in batches:
        for i, (lo, hi, _) in enumerate(SPANS):
            pos, labels = mb["position_ids"], mb["labels"]
            chosen = (pos >= lo) & (pos < hi) & (labels != IGNORE)
            if chosen.any():
                out = model(mb["input_ids"], mb["cu_seqlens"], mb["max_seqlen"], pos,
                            labels=torch.where(chosen, labels, IGNORE), reduction="sum")
                sums[i] += torch.stack([out.loss.double(), out.num_masked.double(), out.num_correct.double()])
    total = sums.sum(0)
    result = {"loss": float(total[0] / total[1]), "accuracy": float(total[2] / total[1])}
    for (_, _, name), (loss, n, correct) in zip(SPANS, sums.tolist()):
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
    got = validate.evaluate(model, batches(), SPANS, torch.device("cpu"), contextlib.nullcontext)
    with torch.no_grad():
        want = reference(model, list(batches()))
    assert {"loss_0-1k", "loss_1k-2k"} <= set(got), "the case under test: positions past 1k scored"
    for key, value in want.items():
        assert math.isclose(got[key], value, rel_tol=1e-6), (key, got[key], value)
    # exp() turns the loss's relative tolerance into an absolute one: compare on the loss's scale
    assert math.isclose(math.log(got["mlm_perplexity"]), want["loss"], rel_tol=1e-6)


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

    validate.evaluate(Counting(), produced(), position_ranges(256), torch.device("cpu"), contextlib.nullcontext)
    assert log.count("batch") > 3 and log == ["batch", "forward"] * log.count("batch")


@pytest.mark.parametrize("positions", [4, 0])
def test_validation_adds_pseudo_perplexity_unless_switched_off(sample_output, positions):
    cfg = config.load(None, [f"data.root={sample_output}", "model.hidden_size=64", "model.num_hidden_layers=2",
                             "model.num_attention_heads=4", "model.intermediate_size=192", "model.max_length=2048",
                             f"validation.pll.positions={positions}", "validation.pll.max_documents=2"])
    vocab = data.Vocab.from_manifest(manifest.read(str(sample_output)))
    torch.manual_seed(0)
    model = NeoBERTLMHead(cfg.model.neobert(vocab.size, vocab.pad)).eval()
    ds, cpu = validate.dataset(cfg), torch.device("cpu")
    got = validate.run(model, ds, cfg, vocab, 0, cpu, contextlib.nullcontext)
    assert {"mlm_perplexity", "mlm_perplexity_0-1k", "mlm_perplexity_1k-2k"} <= set(got)
    if not positions:
        assert not any(k.startswith(("pseudo", "pll")) for k in got)
        return
    spans = position_ranges(2048)
    want = pppl.evaluate(model, pppl.held_out_windows(ds, 2048, vocab, 2), spans, cfg.validation.pll, vocab,
                         cfg.validation.seed, cpu, contextlib.nullcontext)
    assert got["pll_positions"] == want["positions"] and 0 < want["positions"] <= 4 * len(spans) * want["windows"]
    assert got["pseudo_perplexity"] == want["pseudo_perplexity"]
    scored = [r for r in want["ranges"] if r["positions"]]
    assert scored and all(got[f"pseudo_perplexity_{r['range']}"] == r["pseudo_perplexity"] for r in scored)
