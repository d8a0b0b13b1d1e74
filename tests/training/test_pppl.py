"""Pseudo-perplexity: the batched rows equal one forward per masked position, the sampled mode is
the full mode at the sampled positions, the sample is seeded, ranges follow the context length,
and `python -m training pppl` / `plot` work on the sample's held-out split."""

from __future__ import annotations

import contextlib
import json
import math

import numpy as np
import pytest
import torch

from neobert import NeoBERTConfig, NeoBERTLMHead
from shards import manifest
from shards.manifest import Vocab
from training import checkpoint, pppl
from training.__main__ import main
from training.config import Config, DataConfig, PLLConfig
from training.ranges import position_ranges

VOCAB = Vocab(pad=0, cls=1, sep=2, mask=3, special=(0, 1, 2, 3), size=97)
CPU = torch.device("cpu")
SPANS = ((0, 24, "0-24"), (24, 64, "24-64"))  # two small ranges, so windows stay cheap to score in full


@pytest.fixture(autouse=True)
def one_thread():
    """Rows of a few dozen tokens: threads only contend (10x slower on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_model(dtype=torch.float32) -> NeoBERTLMHead:
    torch.manual_seed(0)
    model = NeoBERTLMHead(NeoBERTConfig.tiny(vocab_size=VOCAB.size, max_length=64)).to(dtype).eval()
    with torch.no_grad():  # off the init, so positions are told apart
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def documents(lengths=(64, 41, 6), seed=0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    docs = []
    for n in lengths:
        doc = rng.integers(4, VOCAB.size, n)
        doc[0], doc[-1] = VOCAB.cls, VOCAB.sep
        docs.append(doc)
    docs[0][30] = VOCAB.pad  # a special token inside a window is never scored either
    return docs


@torch.no_grad()
def naive(model, window: np.ndarray, positions) -> list[float]:
    """One forward per position: the window with that position masked, −log p(its token)."""
    out = []
    for p in positions:
        x = torch.from_numpy(window.astype(np.int64))[None].clone()
        x[0, p] = VOCAB.mask
        logits = model(x).logits[0, p].double()
        out.append(float(-torch.log_softmax(logits, -1)[window[p]]))
    return out


def scores(model, windows, pll: PLLConfig, seed=7) -> dict[tuple[int, int], float]:
    got = {}
    for w, pos, loss in pppl.losses(model, pppl.batches(windows, VOCAB, SPANS, pll, seed), CPU,
                                    contextlib.nullcontext):
        got.update({(w, int(p)): float(x) for p, x in zip(pos, loss)})
    return got


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_batched_rows_equal_one_forward_per_position(dtype):
    model, docs = tiny_model(dtype), documents()
    pll = PLLConfig(positions="all", batch_tokens=64 * 5)  # 5 rows of the longest window per forward
    got = scores(model, docs, pll)
    assert len({w for w, _ in got}) == 3 and len(got) > 5 * 3, "the case under test: many forwards per window"
    for w, doc in enumerate(docs):
        scored = sorted(p for v, p in got if v == w)
        assert scored == [p for p in range(1, len(doc) - 1) if p != 30 or w], "every non-special position, once"
        want = naive(model, doc, scored)
        assert max(abs(got[w, p] - x) for p, x in zip(scored, want)) < 1e-6
    result = pppl.evaluate(model, docs, SPANS, pll, VOCAB, 7, CPU, contextlib.nullcontext)
    for lo, hi, name in SPANS:
        inside = [x for (w, p), x in got.items() if lo <= p < hi]
        r = next(r for r in result["ranges"] if r["range"] == name)
        assert r["positions"] == len(inside) and r["pll"] == pytest.approx(np.mean(inside), abs=1e-6)
        assert r["pseudo_perplexity"] == pytest.approx(math.exp(np.mean(inside)), rel=1e-5)
    assert result["positions"] == len(got) and result["windows"] == 3
    assert sum(b["positions"] for b in result["bins"]) == len(got)


def test_sampled_mode_equals_the_full_mode_at_the_sampled_positions():
    model, docs = tiny_model(torch.float64), documents()
    full = scores(model, docs, PLLConfig(positions="all", batch_tokens=256))
    sampled = scores(model, docs, PLLConfig(positions=5, batch_tokens=64))
    counts = {(w, name): sum(lo <= p < hi for v, p in sampled if v == w) for w in range(3) for lo, hi, name in SPANS}
    assert counts[0, "0-24"] == counts[0, "24-64"] == counts[1, "24-64"] == 5, "5 per range where there are more"
    assert counts[2, "0-24"] == 4 and counts[2, "24-64"] == 0, "all of a short window's positions"
    assert len(sampled) < len(full)
    assert max(abs(x - full[k]) for k, x in sampled.items()) < 1e-9


def test_seeded_sample_is_deterministic_and_depends_on_the_window_not_its_order():
    doc = documents((64,))[0]
    draw = lambda seed, d=doc: pppl.scored_positions(d, VOCAB, SPANS, 5, seed).tolist()  # noqa: E731
    assert draw(7) == draw(7) and draw(7) != draw(8)
    assert all(sum(lo <= p < hi for p in draw(7)) == 5 for lo, hi, _ in SPANS)
    assert 0 not in draw(7) and 63 not in draw(7) and 30 not in draw(7), "[CLS], [SEP] and pad never drawn"
    other = documents((64,), seed=1)[0]
    picked = [pos.tolist() for w, pos, _, _ in pppl.batches([other, doc], VOCAB, SPANS, PLLConfig(positions=5), 7)
              if w == 1]
    assert picked and sum(picked, []) == draw(7), "the second window draws what it draws alone"


def test_ranges_follow_the_context_length():
    assert position_ranges(1024) == ((0, 1024, "0-1k"),)
    assert position_ranges(4096) == ((0, 1024, "0-1k"), (1024, 2048, "1k-2k"), (2048, 4096, "2k-4k"))
    assert [n for _, _, n in position_ranges(2048)] == ["0-1k", "1k-2k"]
    assert [n for _, _, n in position_ranges(8192)][-1] == "4k-8k"
    assert position_ranges(256) == ((0, 256, "0-256"),)
    for context in (3, 1000, 1025, 3000, 4096):
        spans = position_ranges(context)
        assert spans[0][0] == 0 and spans[-1][1] == context
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:])), "contiguous, no gap, no overlap"


@pytest.mark.parametrize("bad", [{"positions": "some"}, {"positions": -1}, {"batch_tokens": 0}])
def test_pll_settings_are_checked(bad):
    with pytest.raises(ValueError, match="pll"):
        PLLConfig(**bad)


def save_tiny_checkpoint(run, root: str, step: int) -> NeoBERTLMHead:
    vocab = Vocab.from_manifest(manifest.read(root))
    torch.manual_seed(step)
    model = NeoBERTLMHead(NeoBERTConfig.tiny(vocab_size=vocab.size, max_length=2048)).eval()
    cfg = Config(run_dir=str(run), data=DataConfig(root=root, context_length=1024, micro_batch_tokens=4096))
    state = checkpoint.training_state(
        step=step, tokens=1000 * step, skipped=0, model=model.state_dict(), optimizer={},
        rng=[{"torch": torch.get_rng_state(), "cuda": None}], loader=[{}], config=cfg.to_dict(),
        model_config=model.config.to_dict())
    checkpoint.save(run, step, state, keep=1)
    return model


def test_cli_scores_checkpoints_and_plot_draws_them_against_position(sample_output, tmp_path, capsys):
    runs = {name: tmp_path / name for name in ("stage1", "stage2")}
    for step, run in enumerate(runs.values(), 1):
        save_tiny_checkpoint(run, sample_output, step)
        assert main(["pppl", str(run), "--data", sample_output, "--positions", "8", "--batch-tokens", "8192"]) == 0
    printed = capsys.readouterr().out
    assert "0-1k" in printed and "1k-2k" in printed and "pseudo-perplexity" in printed
    result = json.loads((runs["stage2"] / "pppl" / "step_00000002.json").read_text())
    assert [r["range"] for r in result["ranges"]] == ["0-1k", "1k-2k"]
    assert result["ranges"][1]["positions"] > 0, "the case under test: a window past 1k positions"
    assert result["positions_per_range"] == 8 and result["step"] == 2 and result["label"] == "stage2 step 2"
    assert all(r["positions"] <= 8 * result["windows"] for r in result["ranges"])
    assert result["ranges"][0]["pseudo_perplexity"] > 1

    out = tmp_path / "by_position.png"
    assert main(["plot", str(runs["stage1"]), str(runs["stage2"] / "checkpoints" / "step_00000002"),
                 "--out", str(out)]) == 0
    assert out.stat().st_size > 5000
    unscored = tmp_path / "unscored"
    save_tiny_checkpoint(unscored, sample_output, 3)
    assert main(["plot", str(unscored / "checkpoints" / "step_00000003")]) == 1
    assert "python -m training pppl" in capsys.readouterr().err
