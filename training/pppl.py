"""Pseudo-perplexity, the published one (Salazar et al. 2020; NeoBERT's long-context curve): every
scored position is masked alone, the rest of its window visible, and its PLL loss is
−log p(token | the rest of the window); losses are averaged per position range
(`training.ranges`) and per `BIN` positions, and exp of a mean is the pseudo-perplexity.

Scored: every token but the special ones (never [CLS]/[SEP]), or a seeded sample of N of them
per position range per window. The sample is drawn from the seed and the window's own tokens,
so every validation, any number of ranks and `all` mode agree on which positions a window scores.

Exact PLL costs one row per scored position. A window's rows are copies of it with one [MASK]
each, all of the window's length, so they go to the model as padded rows without padding
(B, L) — SDPA over whole rows, no varlen bookkeeping — `batch_tokens // L` rows per forward
(at least one): memory is bounded by the budget whatever the window length. Ranks step
together (an empty forward where a rank has no rows left), as sharded models need.
"""

from __future__ import annotations

import functools
import json
import math
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from neobert import NeoBERTConfig, NeoBERTLMHead
from shards import atomic, windows
from shards import manifest as manifest_io
from shards.manifest import Vocab
from shards.masking import IGNORE
from shards.streams import validation_streams
from training import checkpoint, parallel, precision
from training.config import PLLConfig
from training.ranges import position_ranges

BIN = 128  # positions per point of the pseudo-perplexity-against-position curve
RESULTS = "pppl"  # RUN_DIR/pppl/step_NNNNNNNN.json


def held_out_windows(dataset, context: int, vocab: Vocab, max_documents: int | None):
    """The windows of the first `max_documents` documents of `dataset` (this rank's share), split
    at `context` as validation splits them."""
    for n, sample in enumerate(dataset):
        if max_documents is not None and n >= max_documents:
            return
        yield from windows.split(sample["input_ids"], context, vocab.cls, vocab.sep)


def scored_positions(window: np.ndarray, vocab: Vocab, spans, positions: int | str, seed: int) -> np.ndarray:
    """Sorted positions of `window` to score: all non-special ones, or up to `positions` of them
    drawn per range of `spans` from (seed, the window's tokens)."""
    candidates = np.flatnonzero(~np.isin(window, vocab.special))
    if positions == "all":
        return candidates
    tokens = np.ascontiguousarray(window, dtype=np.int64).tobytes()
    rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(tokens), len(window)]))
    picked = []
    for lo, hi, _ in spans:
        inside = candidates[(candidates >= lo) & (candidates < hi)]
        if len(inside):
            picked.append(rng.choice(inside, size=min(positions, len(inside)), replace=False))
    return np.sort(np.concatenate(picked)) if picked else candidates[:0]


def masked_rows(window: np.ndarray, positions: np.ndarray, mask_id: int, batch_tokens: int):
    """(positions, input_ids (B, L), labels (B, L)) chunks: row i is `window` with positions[i]
    replaced by [MASK] and labelled there only; B * L <= batch_tokens (B >= 1)."""
    ids = torch.from_numpy(np.asarray(window, dtype=np.int64))
    per_forward = max(1, batch_tokens // len(window))
    for start in range(0, len(positions), per_forward):
        pos = positions[start : start + per_forward]
        rows, cols = torch.arange(len(pos)), torch.from_numpy(pos)
        input_ids = ids.repeat(len(pos), 1)
        labels = torch.full_like(input_ids, IGNORE)
        labels[rows, cols] = input_ids[rows, cols]
        input_ids[rows, cols] = mask_id
        yield pos, input_ids, labels


def batches(windows_, vocab: Vocab, spans, pll: PLLConfig, seed: int):
    """(window number, positions, input_ids, labels) for every forward of every window."""
    for w, window in enumerate(windows_):
        chosen = scored_positions(window, vocab, spans, pll.positions, seed)
        for pos, input_ids, labels in masked_rows(window, chosen, vocab.mask, pll.batch_tokens):
            yield w, pos, input_ids, labels


@torch.no_grad()
def losses(model, batches_, device: torch.device, autocast):
    """(window number, positions, PLL losses float64 on `device`) per forward, in order. Ranks
    step together: while any rank has a batch, the others run an empty forward."""
    world = dist.get_world_size() if dist.is_initialized() else 1
    batches_ = iter(batches_)
    while parallel.any_rank((b := next(batches_, None)) is not None, world, device):
        _, _, input_ids, labels = b or (None, None, torch.zeros(1, 2, dtype=torch.long),
                                        torch.full((1, 2), IGNORE, dtype=torch.long))
        with autocast():
            out = model(input_ids.to(device), labels=labels.to(device), reduction="none")
        if b is not None:
            yield b[0], b[1], out.loss.double()


def evaluate(model, windows_, spans, pll: PLLConfig, vocab: Vocab, seed: int, device: torch.device,
             autocast) -> dict:
    """PLL over `windows_` (summed over ranks): per range and per BIN positions, the number of
    positions scored, the mean PLL loss and the pseudo-perplexity; overall the same."""
    world = dist.get_world_size() if dist.is_initialized() else 1
    context = spans[-1][1]
    bins = [(lo, min(lo + BIN, context)) for lo in range(0, context, BIN)]
    his = np.array([hi for _, hi, _ in spans])
    sums = torch.zeros(len(spans) + len(bins) + 1, 2, dtype=torch.float64, device=device)  # loss, count
    last_window = -1
    was_training = model.training
    model.eval()
    for w, pos, loss in losses(model, batches(windows_, vocab, spans, pll, seed), device, autocast):
        values = torch.stack([loss, torch.ones_like(loss)], dim=1)
        which = np.concatenate([np.searchsorted(his, pos, side="right"), len(spans) + pos // BIN])
        sums.index_add_(0, torch.from_numpy(which).to(device), values.repeat(2, 1))
        sums[-1, 0] += float(w != last_window)  # windows scored
        last_window = w
    model.train(was_training)
    sums = parallel.all_sum(sums, world).tolist()

    def entry(total, n, **where):
        return {**where, "positions": int(n), "pll": total / n if n else None,
                "pseudo_perplexity": math.exp(total / n) if n else None}

    total, n = (sum(x) for x in zip(*sums[: len(spans)]))
    return {**entry(total, n), "windows": int(sums[-1][0]), "context_length": context,
            "ranges": [entry(*s, range=name, lo=lo, hi=hi) for (lo, hi, name), s in zip(spans, sums)],
            "bins": [entry(*s, lo=lo, hi=hi) for (lo, hi), s in zip(bins, sums[len(spans) : -1])]}


def flat(result: dict) -> dict:
    """The scalars validation logs to metrics.jsonl (keys `pseudo_perplexity[_RANGE]`, `pll_loss[_RANGE]`)."""
    out = {}
    for suffix, r in [("", result), *((f"_{r['range']}", r) for r in result["ranges"])]:
        if r["positions"]:
            out[f"pll_loss{suffix}"], out[f"pseudo_perplexity{suffix}"] = r["pll"], r["pseudo_perplexity"]
    out["pll_positions"] = result["positions"]
    return out


def table(result: dict) -> str:
    """The per-range table `python -m training pppl` prints."""
    lines = [f"{'positions':<10} {'scored':>8} {'PLL loss':>9} {'pseudo-perplexity':>18}"]
    for r in [*result["ranges"], {**result, "range": "all"}]:
        if r["positions"]:
            lines.append(f"{r['range']:<10} {r['positions']:>8,} {r['pll']:>9.4f} {r['pseudo_perplexity']:>18.4g}")
        else:
            lines.append(f"{r['range']:<10} {0:>8} {'-':>9} {'-':>18}  (no window reaches it)")
    return "\n".join(lines)


def score(spec: str | Path, root: str, pll: PLLConfig, seed: int, context: int | None = None,
          cache_dir: str | None = None, device: str | None = None, output: str | Path | None = None
          ) -> tuple[dict, Path]:
    """`python -m training pppl`: score a checkpoint on the held-out split of `root` (one process;
    bf16 autocast on a GPU, float32 on a CPU) and write the result JSON; returns it and its path."""
    from streaming import StreamingDataset
    from tqdm import tqdm

    model, where = load_model(spec)
    vocab = Vocab.from_manifest(manifest_io.read(root))
    if model.config.vocab_size != vocab.size:
        raise ValueError(f"{spec} has a vocabulary of {model.config.vocab_size:,}, the shards of {root} "
                         f"{vocab.size:,}: score it on data made with its tokenizer")
    context = context or model.config.max_length
    if not 3 <= context <= model.config.max_length:
        raise ValueError(f"--context {context} must be within 3 .. the model's max_length {model.config.max_length}")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(device)
    autocast = functools.partial(precision.autocast, device)
    dataset = StreamingDataset(streams=validation_streams(root, cache_dir), shuffle=False, batch_size=1)
    bar = tqdm(held_out_windows(dataset, context, vocab, pll.max_documents), desc="pseudo-perplexity",
               unit="window")
    result = {"label": where["label"], "checkpoint": str(spec), "step": where["step"], "tokens": where["tokens"],
              "data": root, "positions_per_range": pll.positions, "max_documents": pll.max_documents,
              "seed": seed, "batch_tokens": pll.batch_tokens, "device": str(device),
              **evaluate(model, bar, position_ranges(context), pll, vocab, seed, device, autocast)}
    return result, write_result(Path(output) if output else where["output"], result)


def load_model(spec: str | Path) -> tuple[NeoBERTLMHead, dict]:
    """A training checkpoint (or a run folder: its newest) or a published-layout folder
    (config.json + model.safetensors), and where its results go: `{"label", "step", "tokens", "output"}`."""
    path = Path(spec)
    if (path / "config.json").is_file() and not (path / checkpoint.STATE).is_file():
        from neobert.checkpoint import load_pretrained

        return load_pretrained(path).eval(), {"label": path.name, "step": None, "tokens": None,
                                             "output": path / RESULTS / "pppl.json"}
    path = checkpoint.resolve(path)
    state = checkpoint.load(path)
    model = NeoBERTLMHead(NeoBERTConfig.from_dict(state["model_config"]))
    model.load_state_dict(state["model"])
    run_dir = path.parent.parent
    return model.eval(), {"label": f"{run_dir.name} step {state['step']:,}", "step": state["step"],
                          "tokens": state["tokens"], "output": result_path(path)}


def result_path(ckpt: Path) -> Path:
    """RUN_DIR/pppl/step_NNNNNNNN.json for RUN_DIR/checkpoints/step_NNNNNNNN."""
    return ckpt.parent.parent / RESULTS / f"{ckpt.name}.json"


def find_result(spec: str | Path) -> Path | None:
    """The result JSON for a path `plot` is given: the file itself, a checkpoint's, a run
    folder's newest, or a published folder's; None when there is none."""
    path = Path(spec)
    if path.suffix == ".json":
        return path if path.is_file() else None
    if (path / checkpoint.STATE).is_file():
        found = result_path(path)
        return found if found.is_file() else None
    scored = sorted((path / RESULTS).glob("*.json"))
    return scored[-1] if scored else None


def write_result(path: Path, result: dict) -> Path:
    atomic.write_text(str(path), json.dumps(result, indent=2) + "\n")
    return path
