"""Trainer speed on one GPU, every figure measured side by side in one run: ours with each lever,
the published-code equivalent, and Hugging Face ModernBERT-base.

    PYTHONPATH=. python benchmarks/gpu_train.py --mds out/sample   # a GPU (benchmarks/gpu_session.sh)
    PYTHONPATH=. python benchmarks/gpu_train.py --cpu-smoke        # tiny models on CPU: every code path runs

Settings: `stage1` trains at context 1024, `stage2` trains at 4096, `infer` computes hidden states at
4096; every micro-batch has `--tokens` token slots (32,768: the trainer's default, the issue's 32k
micro-batch). Documents are drawn from a fixed RefinedWeb-like length distribution (lognormal,
median 350 tokens, sigma 1.1: a long tail past 10k) and windowed at the context as the loader does.

Implementations; each of ours adds one lever to the row above, so its gain is that lever's:

  published    padded rows (one document per row, padded to the longest), dense key mask, decoder
               on every position, eager, AdamW (foreach): what the published modeling code does
  modernbert   transformers' ModernBertForMaskedLM from ModernBERT-base's config (random weights,
               SDPA), padded rows, AdamW (foreach)
  packed       ours: documents back to back (greedy token budget, none cut, as `shards.packing`),
               document-masked varlen attention, decoder on masked positions only, eager
  +fused       AdamW(fused=True)
  +compile     `neobert.compiled.compile_blocks`: inductor fuses RMSNorm, RoPE, SwiGLU, residuals;
               stage1 only (new token counts and max_seqlen values recompile, which costs budget)
  +static      +compile on `neobert.compiled.static_batch` batches: one token count and max_seqlen
  +ckpt x2     +static with activation checkpointing at twice the tokens (pays only if memory binds)
  loader       +static fed by the real input path from MDS shards (below), one DataLoader worker
               (the trainer's), pinned memory, prefetch 4: GPU idle says whether the GPU starves
  flash_attn   +static through the `flash_attn` package, when installed

Training steps are fwd + bwd + gradient clipping + AdamW, bf16 autocast over fp32 weights (the
trainer's finiteness check, a host sync per step, is left out). Inference rows have no optimizer:
packed is eager, +static compiled.

Columns: real (non-padding) tokens/s; MFU = useful FLOP/s over the bf16 matmul ceiling measured
here (8192^3 products; useful = real tokens' matmuls, attention within documents, decoder on
masked tokens); peak memory allocated (the ~3 GB of weights of all three models included); GPU
idle = share of the timed wall time with no step on the GPU (input starvation; launch gaps inside
a step lower MFU instead); padding share of the token slots; predicted tokens/s (PREDICTED,
written before the first GPU run) against measured; the row's wall seconds, compiles included.

The real loader: the GPU machine has no mosaicml-streaming, whose dependencies pin transformers<5
and numpy<2.2 against that machine's 5.x and 2.5 and pull about fifteen more packages. So
`MDSBatches` reads the MDS shards' files itself (numpy, plus the one-file `zstd` wheel that
`benchmarks/gpu_carry.sh` fetches into `.whl/`) and feeds them through the trainer's own
windows -> packing -> masking functions, over all training buckets in a shuffled shard order (not
the stage mixture); streaming's sampler and shard cache are not measured.
A total time budget (`--budget-s`) skips rows whose estimated cost no longer fits, in priority
order, so one call stays inside its limit; skipped rows are listed.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from neobert import NeoBERTConfig, NeoBERTLMHead
from neobert.attention import available_backends
from neobert.compiled import compile_blocks, static_batch

MASK_RATE = 0.2
LOG_MEDIAN, LOG_SIGMA, LONGEST = math.log(350), 1.1, 16384  # document lengths, [CLS]/[SEP] included
CONTEXT = {"stage1": 1024, "stage2": 4096, "infer": 4096}
# tokens/s on one H100/H200, written before the first run: the issue's H100 measurements for the
# baselines; ours estimated from FLOP and byte counts (eager RoPE/norm/SwiGLU move ~12 MB a token).
PREDICTED = {
    ("stage1", "published"): 108e3, ("stage1", "modernbert"): 147e3, ("stage1", "packed"): 160e3,
    ("stage1", "+fused"): 163e3, ("stage1", "+compile"): 260e3, ("stage1", "+static"): 270e3,
    ("stage1", "+ckpt x2"): 210e3, ("stage1", "loader"): 270e3, ("stage1", "flash_attn"): 275e3,
    ("stage2", "published"): 60e3, ("stage2", "modernbert"): 109e3, ("stage2", "packed"): 130e3,
    ("stage2", "+fused"): 133e3, ("stage2", "+compile"): 195e3, ("stage2", "+static"): 205e3,
    ("stage2", "+ckpt x2"): 160e3, ("stage2", "loader"): 205e3, ("stage2", "flash_attn"): 210e3,
    ("infer", "published"): 250e3, ("infer", "modernbert"): 344e3, ("infer", "packed"): 420e3,
    ("infer", "+compile"): 600e3, ("infer", "+static"): 620e3,
}
IMPLEMENTATIONS = ("published", "modernbert", "packed", "+fused", "+compile", "+static", "+ckpt x2", "loader",
                   "flash_attn")
GOALS = {"stage1": 300e3, "stage2": 200e3, "infer": 600e3}
NEOBERT_CLAIM = 1.467  # the paper: 46.7 % faster than ModernBERT at 4096
# ModernBERT-base's config.json (answerdotai/ModernBERT-base), written out: no hub on the GPU machine.
MODERNBERT_BASE = dict(
    vocab_size=50368, hidden_size=768, intermediate_size=1152, num_hidden_layers=22, num_attention_heads=12,
    hidden_activation="gelu", max_position_embeddings=8192, norm_eps=1e-5, norm_bias=False,
    global_rope_theta=160000.0, local_rope_theta=10000.0, local_attention=128, global_attn_every_n_layers=3,
    attention_bias=False, mlp_bias=False, decoder_bias=True, tie_word_embeddings=True,
    embedding_dropout=0.0, attention_dropout=0.0, mlp_dropout=0.0, classifier_pooling="mean",
    pad_token_id=50283, bos_token_id=50281, eos_token_id=50282, cls_token_id=50281, sep_token_id=50282,
    reference_compile=False,  # transformers 4.x would otherwise compile parts of it by itself
)


# --- batches --------------------------------------------------------------------------------

def windows(context: int, g: np.random.Generator):
    """Endless window lengths: documents from the length distribution, split at the context."""
    while True:
        n = int(np.clip(g.lognormal(LOG_MEDIAN, LOG_SIGMA), 8, LONGEST))
        while n > context:
            yield context
            n -= context - 2
        yield n


def packed_lengths(stream, budget: int):
    """Greedy packing in stream order, no window cut: `shards.packing.Packer`'s rule."""
    pending = next(stream)
    while True:
        docs = []
        while sum(docs) + pending <= budget:
            docs.append(pending)
            pending = next(stream)
        yield docs


def packed_batch(docs: list[int], g: torch.Generator) -> dict:
    ids = torch.randint(1000, 30000, (sum(docs),), generator=g)
    return dict(input_ids=ids, cu_seqlens=torch.tensor([0, *np.cumsum(docs)], dtype=torch.int32),
                max_seqlen=max(docs), position_ids=torch.cat([torch.arange(n) for n in docs]),
                labels=torch.where(torch.rand(ids.shape, generator=g) < MASK_RATE, ids, -100))


def padded_batches(stream, budget: int, g: torch.Generator):
    """One window per row, rows padded to the longest, as many rows as fit `budget` slots."""
    pending = next(stream)
    while True:
        docs = [pending]
        pending = next(stream)
        while (len(docs) + 1) * max(*docs, pending) <= budget:
            docs.append(pending)
            pending = next(stream)
        mask = (torch.arange(max(docs))[None, :] < torch.tensor(docs)[:, None]).long()
        ids = torch.randint(1000, 30000, mask.shape, generator=g) * mask
        labels = torch.where((torch.rand(mask.shape, generator=g) < MASK_RATE) & (mask == 1), ids, -100)
        yield dict(input_ids=ids, attention_mask=mask, labels=labels), docs


@dataclass
class Item:
    """A batch ready for the step, with what the FLOP count needs."""

    batch: dict
    docs: list[int]
    masked: int


def item(batch: dict, docs: list[int], device: str) -> Item:
    masked = int((batch["labels"] != -100).sum())
    return Item({k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}, docs, masked)


class MDSBatches(torch.utils.data.IterableDataset):
    """Endless static packed micro-batches from a pipeline output's MDS shards, through the
    trainer's `shards.windows` -> `shards.packing.Packer` -> `shards.batches` (NeoBERT masking)."""

    def __init__(self, root: str, context: int, tokens: int, seed: int = 0):
        self.root, self.context, self.tokens, self.seed = Path(root), context, tokens, seed

    def documents(self):
        import zstd

        indexes = sorted(p for p in self.root.glob("mds/*/index.json") if p.parent.name not in ("val", "materialized"))
        shards = [(p.parent, s) for p in indexes for s in json.loads(p.read_text())["shards"]]
        if not shards:
            raise FileNotFoundError(f"no MDS shards under {self.root}/mds/*/index.json: run benchmarks/gpu_carry.sh")
        g = np.random.default_rng(self.seed)
        while True:
            for i in g.permutation(len(shards)):
                folder, shard = shards[i]
                stored = (folder / (shard.get("zip_data") or shard["raw_data"])["basename"]).read_bytes()
                yield from mds_column(zstd.decompress(stored) if shard.get("zip_data") else stored, shard, "input_ids")

    def __iter__(self):
        from shards import packing
        from shards import windows as cut
        from shards.batches import mlm_batch
        from shards.manifest import Vocab
        from shards.masking import Masking

        vocab = Vocab.from_manifest(json.loads((self.root / "manifest.json").read_text()))
        packer, index = packing.Packer(self.tokens), 0
        for doc in self.documents():
            packer.push(cut.split(doc, self.context, vocab.cls, vocab.sep))
            while (p := packer.pop()) is not None:
                batch = mlm_batch(p, vocab, Masking(MASK_RATE, (1.0, 0.0, 0.0)), self.seed, 0, index)
                index += 1
                docs = np.diff(p.cu_seqlens).tolist()
                yield dict(static_batch(batch, self.tokens, self.context, vocab.pad), docs=docs,
                           masked=int((batch["labels"] != -100).sum()))


def mds_column(raw: bytes, shard: dict, column: str):
    """One column of every sample of an uncompressed MDS shard (the format `streaming` writes:
    sample count, offsets, then per sample the sizes of variable columns and the column bytes)."""
    names, encodings, sizes = shard["column_names"], shard["column_encodings"], shard["column_sizes"]
    n = int(np.frombuffer(raw, np.uint32, 1)[0])
    offsets = np.frombuffer(raw, np.uint32, n + 1, offset=4)
    want = names.index(column)
    encoding = encodings[want]
    if not encoding.startswith("ndarray:") or sizes[want] is not None:
        raise ValueError(f"column {column!r} is {encoding!r}: only variable-shape ndarray columns are read")
    dtype = np.dtype(encoding.split(":")[1])
    for begin, end in zip(offsets[:-1], offsets[1:]):
        sample = raw[begin:end]
        variable = [i for i, s in enumerate(sizes) if s is None]
        lengths = np.frombuffer(sample, np.uint32, len(variable))
        size_of = dict(zip(variable, lengths.tolist()))
        start = 4 * len(variable) + sum(sizes[i] if sizes[i] is not None else size_of[i] for i in range(want))
        value = sample[start:start + size_of[want]]
        ndim, shape_dtype = value[0] >> 2, np.dtype(f"uint{8 * 2 ** (value[0] % 4)}")
        shape = np.frombuffer(value, shape_dtype, ndim, offset=1)
        yield np.frombuffer(value, dtype, offset=1 + ndim * shape_dtype.itemsize).reshape(shape)


def write_smoke_mds(root: Path, vocab_size: int = 30522) -> None:
    """A tiny pipeline-shaped output (manifest + one zstd MDS bucket), written with `streaming`."""
    from streaming import MDSWriter

    g = np.random.default_rng(0)
    specials = {"pad": 0, "cls": 101, "sep": 102, "mask": 103, "unk": 100}
    (root / "mds").mkdir(parents=True)
    manifest = {"tokenizer": {"special_tokens": specials, "vocab_size": vocab_size}}
    (root / "manifest.json").write_text(json.dumps(manifest))
    with MDSWriter(out=str(root / "mds" / "lt1024"), columns={"input_ids": "ndarray:uint16", "id": "str",
                                                              "num_tokens": "int"}, compression="zstd") as w:
        for i in range(200):
            n = int(np.clip(g.lognormal(math.log(60), 1.0), 3, 600))
            doc = np.concatenate([[101], g.integers(1000, 30000, n - 2), [102]]).astype(np.uint16)
            w.write({"input_ids": doc, "id": f"doc{i}", "num_tokens": n})


# --- models, FLOPs, timing -----------------------------------------------------------------

def neobert_flops(config: NeoBERTConfig, docs: list[int], masked: int, train: bool) -> float:
    C, Fh, layers = config.hidden_size, config.swiglu_hidden_size, config.num_hidden_layers
    params = layers * (4 * C * C + 3 * C * Fh)
    forward = 2 * params * sum(docs) + 4 * layers * C * sum(n * n for n in docs)
    return 3 * (forward + 2 * C * config.vocab_size * masked) if train else forward


def modernbert_flops(c, docs: list[int], masked: int, train: bool) -> float:
    C, inter, layers, window = c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.local_attention
    params = layers * (4 * C * C + 3 * C * inter)
    full = len(range(0, layers, c.global_attn_every_n_layers))
    attention = 4 * C * sum(full * n * n + (layers - full) * n * min(n, window + 1) for n in docs)
    forward = 2 * params * sum(docs) + attention
    return 3 * (forward + 2 * (C * C + C * c.vocab_size) * masked) if train else forward


def build_modernbert(smoke: bool, device: str):
    """ModernBERT-base from its config through transformers' public API (4.x and 5.x), or a reason."""
    try:
        from transformers import AutoModelForMaskedLM, ModernBertConfig
    except ImportError as e:
        return None, f"transformers without ModernBERT ({e})"
    values = dict(MODERNBERT_BASE)
    if smoke:
        values.update(hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4)
    model = AutoModelForMaskedLM.from_config(ModernBertConfig(**values), attn_implementation="sdpa")
    return model.to(device).train(), None


def matmul_ceiling(device: str) -> float:
    """bf16 (CPU: float32) matmul FLOP/s on random data, median of 10 after 3 warm-ups."""
    n, dtype = (8192, torch.bfloat16) if device == "cuda" else (256, torch.float32)
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    times = []
    for i in range(13):
        sync(device)
        started = time.perf_counter()
        a @ b
        sync(device)
        if i >= 3:
            times.append(time.perf_counter() - started)
    return 2 * n**3 / statistics.median(times)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


@dataclass
class Result:
    setting: str
    impl: str
    note: str = ""
    tok_s: float | None = None
    mfu: float | None = None
    peak_gib: float | None = None
    idle: float | None = None
    pad: float | None = None
    seconds: float | None = None  # the row's wall time, compiles included


def measure(step, items, flops, warmup: int, steps: int, device: str) -> dict:
    """Run `warmup + steps` steps; real tokens/s, FLOP/s, padding share, peak GiB and GPU idle share
    (gaps between the CUDA events that bracket each timed step) over the timed ones."""
    cuda = device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    spans, timed = [], []
    it = iter(items)
    for i in range(warmup + steps):
        x = next(it)
        if i == warmup:
            sync(device)
            started = time.perf_counter()
        if i >= warmup:
            timed.append(x)
            if cuda:
                spans.append((torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)))
                spans[-1][0].record()
        step(x.batch)
        if cuda and i >= warmup:
            spans[-1][1].record()
    sync(device)
    wall = time.perf_counter() - started
    real = sum(sum(x.docs) for x in timed)
    slots = sum(x.batch["input_ids"].numel() for x in timed)
    idle = None
    if cuda:
        busy = sum(a.elapsed_time(b) for a, b in spans)
        idle = max(0.0, 1 - busy / spans[0][0].elapsed_time(spans[-1][1]))
    return dict(tok_s=real / wall, flop_s=sum(flops(x.docs, x.masked) for x in timed) / wall,
                pad=1 - real / slots, idle=idle,
                peak_gib=torch.cuda.max_memory_allocated() / 2**30 if cuda else None)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cpu-smoke", action="store_true", help="tiny models on CPU, 1+1 steps per row, every path")
    p.add_argument("--tokens", type=int, default=32768, help="token slots per micro-batch")
    p.add_argument("--steps", type=int, default=8, help="timed steps per row")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (compiles happen here)")
    p.add_argument("--budget-s", type=float, default=300, help="wall-clock budget; rows that no longer fit are skipped")
    p.add_argument("--mds", help="pipeline output with MDS shards for the loader rows (benchmarks/gpu_carry.sh)")
    p.add_argument("--compile-backend", default="inductor", help="torch.compile backend (smoke: eager)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    started = time.perf_counter()
    smoke = args.cpu_smoke
    if smoke:
        device, config, scale = "cpu", NeoBERTConfig.tiny(), 8
        args.tokens, args.steps, args.warmup, args.compile_backend = 1024, 1, 1, "eager"  # dynamo traces, no codegen
        args.budget_s = math.inf  # every row runs
        torch.set_num_threads(1)  # tiny ops: threads only contend
    elif torch.cuda.is_available():
        device, config, scale = "cuda", NeoBERTConfig(), 1
    else:
        raise SystemExit("no CUDA: run on a GPU machine, or pass --cpu-smoke to check the script on CPU")
    context = {k: v // scale for k, v in CONTEXT.items()}
    for name in ("recompile_limit", "cache_size_limit"):  # 28 blocks x stages x modes stay compiled
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, 64)
    varlen = [b for b in available_backends(device) if b != "sdpa"]
    backend = "torch_varlen" if "torch_varlen" in varlen else (varlen or ["sdpa"])[0]

    ceiling = matmul_ceiling(device)
    print(f"device: {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}, torch {torch.__version__}; "
          f"matmul ceiling measured: {ceiling / 1e12:.3g} TFLOP/s ({'bf16 8192^3' if device == 'cuda' else 'fp32 256^3'})")
    print(f"NeoBERT {config.num_hidden_layers} layers, hidden {config.hidden_size}; {args.tokens} token slots per "
          f"micro-batch, {MASK_RATE:.0%} masked; packed backend {backend} (varlen importable: {varlen or 'none'}); "
          f"{args.warmup} warm-up + {args.steps} timed steps per row; budget {args.budget_s:.0f} s")

    torch.manual_seed(args.seed)
    with torch.device(device):
        eager = NeoBERTLMHead(config.with_overrides({"attention_backend": backend})).train()
        compiled = NeoBERTLMHead(config.with_overrides({"attention_backend": backend})).train()
    compiled.load_state_dict(eager.state_dict())
    compile_blocks(compiled, backend=args.compile_backend)
    modernbert, modernbert_missing = build_modernbert(smoke, device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else contextlib.nullcontext()
    results: list[Result] = []

    def items(setting: str, kind: str, tokens: int) -> list[Item]:
        g, tg = np.random.default_rng(args.seed), torch.Generator().manual_seed(args.seed)
        stream = windows(context[setting], g)
        n = args.warmup + args.steps
        if kind == "padded":
            made = padded_batches(stream, tokens, tg)
            return [item(*next(made), device) for _ in range(n)]
        out, made = [], packed_lengths(stream, tokens)
        for docs in (next(made) for _ in range(n)):
            b = packed_batch(docs, tg)
            out.append(item(static_batch(b, tokens, context[setting]) if kind == "static" else b, docs, device))
        return out

    def train(model, loss, fused: bool):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=fused)

        def step(b):
            with autocast:
                value = loss(model, b)
            value.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # as the trainer does (no host sync)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return step

    def infer(fn):
        def step(b):
            with torch.inference_mode(), autocast:
                fn(b)
        return step

    ours_loss = lambda m, b: m(**b).loss  # noqa: E731

    def published_loss(m, b):
        logits = m.decoder(m.model(b["input_ids"], attention_mask=b["attention_mask"])).float()
        return F.cross_entropy(logits.flatten(0, 1), b["labels"].flatten())

    def loader_items(setting: str):
        source = MDSBatches(args.mds, context[setting], args.tokens, args.seed)
        loader = torch.utils.data.DataLoader(source, batch_size=None, num_workers=1, prefetch_factor=4,
                                             pin_memory=device == "cuda")
        for b in loader:
            docs, masked = b.pop("docs"), b.pop("masked")
            yield Item({k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in b.items()},
                       docs, masked)

    def ours(model, setting: str, kind: str, fused: bool = True, tokens: int = args.tokens):
        """A training row of ours: `kind` is packed, static or loader."""
        batches = loader_items(setting) if kind == "loader" else items(setting, kind, tokens)
        return train(model, ours_loss, fused), batches, lambda d, m: neobert_flops(config, d, m, True)

    def ours_infer(model, kind: str):
        hidden = lambda b: model.model(b["input_ids"], b["cu_seqlens"], b["max_seqlen"], b["position_ids"])  # noqa: E731
        return infer(hidden), items("infer", kind, args.tokens), lambda d, m: neobert_flops(config, d, m, False)

    def published(setting: str):
        if setting == "infer":
            step = infer(lambda b: eager.model(b["input_ids"], attention_mask=b["attention_mask"]))
        else:
            step = train(eager, published_loss, False)
        return step, items(setting, "padded", args.tokens), lambda d, m: neobert_flops(config, d, m, setting != "infer")

    def hf_modernbert(setting: str):
        if setting == "infer":
            step = infer(lambda b: modernbert.model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]))
        else:
            step = train(modernbert, lambda m, b: m(**b).loss, False)
        flops = lambda d, m: modernbert_flops(modernbert.config, d, m, setting != "infer")  # noqa: E731
        return step, items(setting, "padded", args.tokens), flops

    if smoke and not args.mds:
        args.mds = tempfile.mkdtemp(prefix="gpu_train_mds_")
        write_smoke_mds(Path(args.mds))
    # (setting, implementation, estimated seconds, what to run), in priority order: the stage-1
    # compile happens in compile_parity below; a new max_seqlen, token count or grad mode recompiles
    eager_s, reuse_s, compile_s = 15, 30, 90
    plan = [
        ("stage1", "published", eager_s, lambda: published("stage1")),
        ("stage1", "packed", eager_s, lambda: ours(eager, "stage1", "packed", fused=False)),
        ("stage1", "+fused", eager_s, lambda: ours(eager, "stage1", "packed")),
        ("stage1", "+static", reuse_s, lambda: ours(compiled, "stage1", "static")),
        ("stage1", "modernbert", eager_s, lambda: hf_modernbert("stage1")),
        ("stage2", "modernbert", eager_s, lambda: hf_modernbert("stage2")),
        ("infer", "modernbert", eager_s, lambda: hf_modernbert("infer")),
        ("stage2", "published", eager_s, lambda: published("stage2")),
        ("infer", "published", eager_s, lambda: published("infer")),
        ("stage2", "+static", compile_s, lambda: ours(compiled, "stage2", "static")),
        ("infer", "+static", compile_s, lambda: ours_infer(compiled, "static")),
        ("stage2", "packed", eager_s, lambda: ours(eager, "stage2", "packed", fused=False)),
        ("infer", "packed", eager_s, lambda: ours_infer(eager, "packed")),
        ("stage1", "loader", reuse_s, lambda: ours(compiled, "stage1", "loader")),
        ("stage2", "loader", reuse_s, lambda: ours(compiled, "stage2", "loader")),
        ("stage2", "+fused", eager_s, lambda: ours(eager, "stage2", "packed")),
        ("stage1", "+compile", compile_s, lambda: ours(compiled, "stage1", "packed")),
        ("stage2", "+ckpt x2", compile_s, lambda: ours(compiled, "stage2", "static", tokens=2 * args.tokens)),
    ]
    if "flash_attn" in varlen and backend != "flash_attn":
        plan.append(("stage1", "flash_attn", compile_s, lambda: ours(compiled, "stage1", "static")))

    parity_batch = items("stage1", "static", args.tokens)[0].batch
    try:
        print(compile_parity(eager, compiled, parity_batch, autocast))
    except Exception as e:  # keep the table: fall back to compiled blocks with graph breaks
        print(f"compiled blocks failed with fullgraph=True ({type(e).__name__}: {first_line(e)}); "
              "recompiling with graph breaks allowed")
        torch._dynamo.reset()
        compile_blocks(compiled, backend=args.compile_backend, fullgraph=False)
        print(compile_parity(eager, compiled, parity_batch, autocast))
    print(f"\n{'setting':<8}{'implementation':<16}{'real tok/s':>12}{'MFU':>7}{'peak GiB':>10}{'GPU idle':>10}{'pad':>6}"
          f"{'predicted':>11}{'meas/pred':>11}{'row s':>7}  note")
    for setting, impl, cost, make in plan:
        result = Result(setting, impl)
        left = args.budget_s - (time.perf_counter() - started)
        if impl == "modernbert" and modernbert is None:
            result.note = f"not run: {modernbert_missing}"
        elif impl == "loader" and not (args.mds or smoke):
            result.note = "not run: no --mds (benchmarks/gpu_carry.sh makes one)"
        elif left < cost:
            result.note = f"skipped: {left:.0f} s of the budget left, row needs ~{cost} s"
        else:
            ckpt = impl == "+ckpt x2"
            compiled.config.activation_checkpointing = ckpt
            compiled.config.attention_backend = "flash_attn" if impl == "flash_attn" else backend
            row_started = time.perf_counter()
            try:
                m = measure(*make(), args.warmup, args.steps, device)
                result.tok_s, result.mfu, result.peak_gib, result.idle, result.pad = (
                    m["tok_s"], m["flop_s"] / ceiling, m["peak_gib"], m["idle"], m["pad"])
            except torch.OutOfMemoryError:
                result.note = "out of memory"
            except Exception as e:  # one broken row must not cost the table
                result.note = f"error: {type(e).__name__}: {first_line(e)}"
            finally:
                result.seconds = time.perf_counter() - row_started
                compiled.config.activation_checkpointing = False
                for model in (eager, compiled, modernbert):
                    if model is not None:
                        model.zero_grad(set_to_none=True)
                gc.collect()
                if device == "cuda":
                    torch.cuda.empty_cache()
        results.append(result)
        print(row(result), flush=True)

    print(f"\nsummary (sorted; total {time.perf_counter() - started:.0f} s):")
    order = {s: i for i, s in enumerate(CONTEXT)}
    for r in sorted(results, key=lambda r: (order[r.setting], IMPLEMENTATIONS.index(r.impl))):
        print(row(r))
    print()
    for line in verdicts(results):
        print(line)


def compile_parity(eager, compiled, batch: dict, autocast) -> str:
    """Loss and gradients of the compiled model against the eager one, same weights, one batch."""
    got = []
    for model in (eager, compiled):
        with autocast:
            loss = model(**batch).loss
        loss.backward()
        got.append((loss.item(), torch.cat([p.grad.float().flatten() for p in model.parameters()])))
        model.zero_grad(set_to_none=True)
    (l0, g0), (l1, g1) = got
    return (f"compiled vs eager on one stage1 batch: loss {l1:.4f} vs {l0:.4f} (rel. {abs(l1 - l0) / l0:.1e}), "
            f"gradient rel. error {((g1 - g0).norm() / g0.norm()).item():.1e}")


def first_line(e: Exception) -> str:
    return (str(e).splitlines() or [""])[0][:150]


def row(r: Result) -> str:
    fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    pred = PREDICTED.get((r.setting, r.impl))
    ratio = f"{r.tok_s / pred:.2f}" if r.tok_s and pred else "-"
    return (f"{r.setting:<8}{r.impl:<16}{fmt(r.tok_s, ',.0f'):>12}{fmt(r.mfu, '.1%'):>7}{fmt(r.peak_gib, '.1f'):>10}"
            f"{fmt(r.idle, '.1%'):>10}{fmt(r.pad, '.0%'):>6}{fmt(pred, ',.0f'):>11}{ratio:>11}{fmt(r.seconds, '.0f'):>7}  {r.note}")


def verdicts(results: list[Result]) -> list[str]:
    """Best of ours per setting against the goal and the baselines, and the paper's claim."""
    by = {(r.setting, r.impl): r.tok_s for r in results if r.tok_s}
    lines = []
    for setting, goal in GOALS.items():
        ours = {impl: v for (s, impl), v in by.items() if s == setting and impl not in ("published", "modernbert")}
        if not ours:
            lines.append(f"{setting}: no row of ours ran")
            continue
        impl, best = max(ours.items(), key=lambda kv: kv[1])
        parts = [f"{setting}: best of ours {best:,.0f} tok/s ({impl}), goal {goal:,.0f}: {'MET' if best >= goal else 'not met'}"]
        for base in ("published", "modernbert"):
            if (setting, base) in by:
                parts.append(f"{best / by[setting, base]:.2f}x {base}")
        if setting != "stage1" and (setting, "modernbert") in by:
            parts.append(f"paper claims {NEOBERT_CLAIM:.3f}x ModernBERT at 4096")
        lines.append("; ".join(parts))
    return lines


if __name__ == "__main__":
    main()
