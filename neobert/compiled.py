"""Speed levers that leave the model's outputs as they are: compiled blocks and static-shape batches.

- `compile_blocks(model)` compiles every `EncoderBlock` in place (`nn.Module.compile`): inductor
  fuses RMSNorm, RoPE, SwiGLU and the residual adds around the matmuls and the attention kernel.
  All blocks share one graph (parameters are graph inputs), parameter names and so checkpoints
  are unchanged, and the embedding, the boundary checks and the masked-only decoder stay eager.
- `static_batch(batch, ...)` pads a packed batch to a fixed token count and sets a fixed
  `max_seqlen`: the compiled block then sees one shape per stage (the document count, which
  changes every batch, is marked dynamic in `PackedDocs.prepare`), so it compiles once per stage
  instead of recompiling for new token counts and `max_seqlen` values. Padding is extra documents
  of pad tokens labelled -100, so real tokens' hidden states, the loss and the masked count are
  unchanged. (CUDA graphs would also need a fixed document count: not done.)
"""

from __future__ import annotations

from typing import Any

import torch

from neobert.model import IGNORE_INDEX, NeoBERT, NeoBERTLMHead


def compile_blocks(model: NeoBERT | NeoBERTLMHead, **options: Any) -> None:
    """Compile each encoder block in place; `options` go to `torch.compile` (fullgraph by default).

    Meant for the varlen backends: on `sdpa` the per-document split makes every new set of lengths
    a new graph, so compiled `sdpa` only pays on a fixed batch (the CPU tests).
    """
    encoder = model.model if isinstance(model, NeoBERTLMHead) else model
    for block in encoder.transformer_encoder:
        block.compile(**{"fullgraph": True, **options})


def static_batch(batch: dict, num_tokens: int, max_seqlen: int, pad_token_id: int = 0) -> dict:
    """`batch` (packed: `input_ids`, `cu_seqlens`, `max_seqlen`, `position_ids`, optional `labels`)
    padded to exactly `num_tokens` tokens with `max_seqlen` as given (the loader's token budget and
    context). The padding tokens form documents of at most `max_seqlen` tokens, labelled -100.
    Raises ValueError when the batch does not fit.
    """
    ids, tokens = batch["input_ids"], batch["input_ids"].numel()
    pad = num_tokens - tokens
    if pad < 0 or batch["max_seqlen"] > max_seqlen:
        raise ValueError(
            f"a batch of {tokens} tokens with max_seqlen {batch['max_seqlen']} does not fit the bucket of "
            f"{num_tokens} tokens, max_seqlen {max_seqlen}: use the loader's token budget and context"
        )
    pad_lengths = [max_seqlen] * (pad // max_seqlen) + ([pad % max_seqlen] if pad % max_seqlen else [])
    cu = batch["cu_seqlens"]
    out = dict(batch, max_seqlen=max_seqlen)
    out["input_ids"] = torch.cat([ids, ids.new_full((pad,), pad_token_id)])
    out["cu_seqlens"] = torch.cat([cu, (tokens + torch.tensor(pad_lengths, dtype=torch.int64).cumsum(0)).to(cu)])
    positions = batch["position_ids"]
    out["position_ids"] = torch.cat([positions, *(torch.arange(n).to(positions) for n in pad_lengths)])
    if batch.get("labels") is not None:
        out["labels"] = torch.cat([batch["labels"], batch["labels"].new_full((pad,), IGNORE_INDEX)])
    return out
