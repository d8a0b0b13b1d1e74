"""`neobert` / `python -m neobert`: build a model, print its size and backend, fill in a [MASK].

    neobert --tiny                          # seconds: a 2-layer model
    neobert                                 # the full 245M NeoBERT, randomly initialised
    neobert --checkpoint path/to/NeoBERT    # a published-layout checkpoint directory
    python -m neobert --tokenizer PATH …    # the same; `neobert` defaults to the bundled tokenizer

Untrained weights predict noise; the point is that the whole path runs. The sentence goes
through the packed path, and also the padded path to show both give the same hidden states.
"""

from __future__ import annotations

import argparse
import time

import torch

from neobert.checkpoint import load_pretrained
from neobert.config import BACKENDS, NeoBERTConfig
from neobert.model import NeoBERTLMHead


def parse_args(argv: list[str] | None, default_tokenizer: str | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="neobert", description=__doc__.split("\n\n")[0])
    p.add_argument("--tokenizer", default=default_tokenizer, required=default_tokenizer is None,
                   help="tokenizer.json of the model's vocabulary" +
                        (f" (default: {default_tokenizer})" if default_tokenizer else ""))
    p.add_argument("--tiny", action="store_true", help="2 layers, hidden 64 (NeoBERTConfig.tiny())")
    p.add_argument("--layers", type=int, help="num_hidden_layers (default: NeoBERT's 28)")
    p.add_argument("--hidden", type=int, help="hidden_size (default 768)")
    p.add_argument("--heads", type=int, help="num_attention_heads (default 12)")
    p.add_argument("--intermediate", type=int, help="intermediate_size (default 3072)")
    p.add_argument("--checkpoint", help="load this published-layout directory instead of a random init")
    p.add_argument("--backend", choices=BACKENDS, help="attention backend (default: fastest available)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--text", default="Paris is the [MASK] of France.")
    p.add_argument("--top", type=int, default=5, help="how many predictions to print")
    return p.parse_args(argv)


def build(args: argparse.Namespace) -> NeoBERTLMHead:
    overrides = {k: v for k, v in dict(num_hidden_layers=args.layers, hidden_size=args.hidden,
                                       num_attention_heads=args.heads, intermediate_size=args.intermediate,
                                       attention_backend=args.backend).items() if v is not None}
    if args.checkpoint:
        return load_pretrained(args.checkpoint, config_overrides=overrides)
    torch.manual_seed(args.seed)
    base = NeoBERTConfig.tiny() if args.tiny else NeoBERTConfig()
    return NeoBERTLMHead(base.with_overrides(overrides))


def main(argv: list[str] | None = None, default_tokenizer: str | None = None) -> None:
    """`default_tokenizer`: what `--tokenizer` defaults to; the caller knows (this package does not)."""
    from tokenizers import Tokenizer

    args = parse_args(argv, default_tokenizer)
    started = time.perf_counter()
    model = build(args).to(args.device).eval()
    c = model.config
    print(f"NeoBERT: {c.num_hidden_layers} layers, hidden {c.hidden_size}, {c.num_attention_heads} heads, "
          f"SwiGLU {c.swiglu_hidden_size}, vocab {c.vocab_size}")
    print(f"parameters: {sum(p.numel() for p in model.parameters()):,}")
    print(f"attention backend: {model.backend} on {args.device}")

    tokenizer = Tokenizer.from_file(args.tokenizer)
    ids = tokenizer.encode(args.text).ids
    mask_id = tokenizer.token_to_id("[MASK]")
    input_ids = torch.tensor(ids, device=args.device)
    n = len(ids)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=args.device.startswith("cuda"))
    with torch.inference_mode(), autocast:
        packed = model(input_ids, torch.tensor([0, n], dtype=torch.int32, device=args.device), n,
                       torch.arange(n, device=args.device))
        padded = model(input_ids[None], attention_mask=torch.ones(1, n, dtype=torch.long, device=args.device))
    print(f"input: {args.text!r} -> {n} tokens")
    print(f"hidden states: packed {tuple(packed.hidden_states.shape)}, padded {tuple(padded.hidden_states.shape)}, "
          f"max |packed - padded| = {(packed.hidden_states - padded.hidden_states[0]).abs().max().item():.2e}")
    masked = [i for i, t in enumerate(ids) if t == mask_id]
    for i in masked:
        probs = packed.logits[i].float().softmax(-1)
        top = probs.topk(args.top)
        guesses = ", ".join(f"{tokenizer.id_to_token(t)} ({p:.3g})" for p, t in zip(top.values.tolist(), top.indices.tolist()))
        print(f"[MASK] at token {i}: {guesses}")
    if not masked:
        print("no [MASK] in the text: add one to see predictions")
    print(f"done in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
