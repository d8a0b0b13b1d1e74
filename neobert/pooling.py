"""Sentence embeddings from hidden states: the pooling modes sentence-transformers' `Pooling`
offers under the same names, computed the same way (so `python -m training embed`'s output and
this module give the same vectors)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

POOLINGS = ("mean", "cls", "max")


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, mode: str = "mean", normalize: bool = False) -> torch.Tensor:
    """`hidden (B, L, C)`, `attention_mask (B, L)` 1 = token → `(B, C)`: the mean over tokens, the
    first token ([CLS]), or the elementwise max over tokens; unit length with `normalize`."""
    if mode not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {mode!r}")
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "mean":
        out = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    elif mode == "cls":
        out = hidden[:, 0]
    else:
        out = hidden.masked_fill(mask == 0, float("-inf")).max(1).values
    return F.normalize(out, p=2, dim=1) if normalize else out
