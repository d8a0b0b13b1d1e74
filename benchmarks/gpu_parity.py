"""Do the CUDA varlen backends compute what the CPU-correct path computes? (bf16, full-size model)

    PYTHONPATH=. python benchmarks/gpu_parity.py [--layers 28] [--tokens 16384]

Runs one packed batch of documents with realistic, unequal lengths (one of a single token, one of
4096) through the full-size NeoBERT under bf16 autocast, once per backend: `sdpa` (per-document
attention, the reference) and each importable varlen backend (`flash_attn`, `torch_varlen`).
Compares final hidden states (relative error < 1e-2, the acceptance bar), the MLM loss, and the
gradient of every parameter; prints which backends ran and their fwd+bwd time side by side.
Then, per varlen backend: its boundary checks run with no host sync (CUDA sync debug mode set to
error) and cost a few microseconds against the forward; bad boundaries handed on the host are
refused; a `static_batch`-padded batch gives real tokens the hidden states of the unpadded one.
Exits 1 when a backend disagrees or none could run; prints "no CUDA" and exits 0 without a GPU.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from neobert import NeoBERTConfig, NeoBERTLMHead
from neobert.attention import PackedDocs, available_backends
from neobert.compiled import static_batch

HIDDEN_TOLERANCE = 1e-2  # the acceptance bar: relative error of hidden states in bf16
GRAD_TOLERANCE = 5e-2  # gradients go through two bf16 backward passes: looser, reported separately


def document_lengths(tokens: int, seed: int) -> list[int]:
    """Lognormal lengths (median ~500) clipped to [1, 4096], plus a 1-token and a 4096-token document."""
    g = torch.Generator().manual_seed(seed)
    lengths = [1, 4096]
    while sum(lengths) < tokens:
        lengths.append(int(torch.empty(1).log_normal_(6.2, 1.0, generator=g).clamp(2, 4096).item()))
    lengths[-1] -= sum(lengths) - tokens
    return [n for n in lengths if n > 0]


def packed_batch(lengths: list[int], seed: int, device: str) -> dict:
    g = torch.Generator().manual_seed(seed)
    tokens = sum(lengths)
    input_ids = torch.randint(1000, 30000, (tokens,), generator=g)
    labels = torch.where(torch.rand(tokens, generator=g) < 0.2, input_ids, -100)
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
    positions = torch.cat([torch.arange(n) for n in lengths])
    return dict(input_ids=input_ids.to(device), cu_seqlens=cu.to(device), max_seqlen=max(lengths),
                position_ids=positions.to(device), labels=labels.to(device))


def run(model: NeoBERTLMHead, backend: str, batch: dict) -> dict:
    """One bf16-autocast fwd+bwd with `backend`; hidden states, loss, flat gradient, time."""
    model.config.attention_backend = backend
    model.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    started = time.perf_counter()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(**batch)
    out.loss.backward()
    torch.cuda.synchronize()
    return dict(hidden=out.hidden_states.detach().float(), loss=out.loss.item(),
                grad=torch.cat([p.grad.float().flatten() for p in model.parameters()]),
                ms=1000 * (time.perf_counter() - started))


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def boundary_and_bucket_checks(model: NeoBERTLMHead, backend: str, batch: dict, fwd_ms: float) -> list[str]:
    """The varlen path's boundary checks (no sync, cheap, refusing) and static-batch parity."""
    failures = []
    cu, tokens = batch["cu_seqlens"], batch["input_ids"].numel()
    torch.cuda.set_sync_debug_mode("error")  # any host sync inside prepare raises
    try:
        for _ in range(3):
            PackedDocs.prepare(cu, batch["max_seqlen"], tokens, backend, "cuda")
    except RuntimeError as e:
        failures.append(f"{backend}: boundary check synchronised with the host: {e}")
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(100):
        PackedDocs.prepare(cu, batch["max_seqlen"], tokens, backend, "cuda")
    us = 1e4 * (time.perf_counter() - started)  # host time per call: what each forward adds
    torch.cuda.synchronize()
    print(f"{backend}: boundary check on the device: {us:.0f} us of host time per forward "
          f"({us / 1000 / fwd_ms:.2%} of one fwd+bwd), no host sync")
    bad = cu.cpu().clone()
    bad[-1] -= 1
    try:
        PackedDocs.prepare(bad, batch["max_seqlen"], tokens, backend, "cuda")
        failures.append(f"{backend}: host boundaries that stop short of the token count were accepted")
    except ValueError:
        print(f"{backend}: bad host boundaries refused with ValueError")
    model.config.attention_backend = backend
    padded = static_batch(batch, tokens + 1000, 4096)
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        ref = model.model(batch["input_ids"], cu, batch["max_seqlen"], batch["position_ids"]).float()
        got = model.model(padded["input_ids"], padded["cu_seqlens"], padded["max_seqlen"], padded["position_ids"])
    err = relative_error(got[:tokens].float(), ref)
    print(f"{backend}: static_batch (+1000 padding tokens, max_seqlen 4096) hidden rel.err {err:.2e}")
    if not err < HIDDEN_TOLERANCE:
        failures.append(f"{backend}: static_batch changed real tokens' hidden states by {err:.2e}")
    return failures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", type=int, default=28, help="num_hidden_layers (default: the full 28)")
    p.add_argument("--tokens", type=int, default=16384, help="tokens in the packed batch")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA: nothing to compare here; run this on a GPU machine (exit 0)")
        return 0

    backends = [b for b in available_backends("cuda") if b != "sdpa"]
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    print(f"varlen backends importable: {backends or 'none'}"
          f"{'' if 'flash_attn' in backends else ' (flash_attn not installed)'}")
    torch.manual_seed(args.seed)
    with torch.device("cuda"):
        model = NeoBERTLMHead(NeoBERTConfig(num_hidden_layers=args.layers))
    lengths = document_lengths(args.tokens, args.seed)
    batch = packed_batch(lengths, args.seed, "cuda")
    print(f"model: {args.layers} layers, {sum(p.numel() for p in model.parameters()):,} parameters, "
          f"fp32 weights, bf16 autocast")
    print(f"batch: {len(lengths)} documents, {sum(lengths)} tokens, lengths {min(lengths)}..{max(lengths)}, "
          f"{int((batch['labels'] != -100).sum())} labelled")

    run(model, "sdpa", batch)  # warm-up: kernels and allocator
    ref = run(model, "sdpa", batch)
    print(f"\n{'backend':<14}{'hidden rel.err':>16}{'loss':>10}{'|Δloss|':>10}{'grad rel.err':>14}{'fwd+bwd ms':>12}")
    print(f"{'sdpa (ref)':<14}{'-':>16}{ref['loss']:>10.4f}{'-':>10}{'-':>14}{ref['ms']:>12.1f}")
    failures = []
    for backend in backends:
        try:
            run(model, backend, batch)
            got = run(model, backend, batch)
        except Exception as e:  # report and go on: the other backend may still run
            failures.append(f"{backend} failed to run: {type(e).__name__}: {e}")
            print(f"{backend:<14}error: {type(e).__name__}: {e}")
            continue
        hidden_err, grad_err = relative_error(got["hidden"], ref["hidden"]), relative_error(got["grad"], ref["grad"])
        loss_err = abs(got["loss"] - ref["loss"])
        print(f"{backend:<14}{hidden_err:>16.2e}{got['loss']:>10.4f}{loss_err:>10.2e}{grad_err:>14.2e}{got['ms']:>12.1f}"
              f"   ({ref['ms'] / got['ms']:.1f}x the sdpa speed)")
        if not hidden_err < HIDDEN_TOLERANCE:
            failures.append(f"{backend}: hidden states differ from sdpa by {hidden_err:.2e} >= {HIDDEN_TOLERANCE}")
        if not loss_err < HIDDEN_TOLERANCE * ref["loss"]:
            failures.append(f"{backend}: loss {got['loss']:.4f} vs sdpa {ref['loss']:.4f}")
        if not grad_err < GRAD_TOLERANCE:
            failures.append(f"{backend}: gradients differ from sdpa by {grad_err:.2e} >= {GRAD_TOLERANCE}")
        failures += boundary_and_bucket_checks(model, backend, batch, got["ms"])
    if not backends:
        failures.append("no varlen backend importable: install flash-attn or use torch >= 2.9")
    print()
    if failures:
        print("FAIL:\n  " + "\n  ".join(failures))
        return 1
    print(f"PASS: {', '.join(backends)} match the sdpa reference (hidden rel.err < {HIDDEN_TOLERANCE}, "
          f"grad rel.err < {GRAD_TOLERANCE})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
