"""Non-causal attention over packed documents, with three interchangeable backends.

Invariant kept by every backend: a token attends only to the tokens of its own document, so
the output for one document never depends on another (bit-identical on the `sdpa` path).

- `flash_attn`:   `flash_attn.flash_attn_varlen_func` (package `flash-attn`, CUDA, bf16/fp16).
- `torch_varlen`: `torch.nn.attention.varlen.varlen_attn`, torch's FlashAttention-2 (CUDA, bf16/fp16).
- `sdpa`:         one `scaled_dot_product_attention` call per document; any device and dtype.
  This is the reference the others are checked against (`benchmarks/gpu_parity.py`).

Boundaries are prepared once per forward (`PackedDocs`) and shared by every layer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from neobert.config import BACKENDS


@functools.cache
def _flash_attn_varlen():
    try:
        from flash_attn import flash_attn_varlen_func
    except ImportError:
        return None
    return flash_attn_varlen_func


@functools.cache
def _torch_varlen():
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    return varlen_attn


def available_backends(device: torch.device | str) -> list[str]:
    """Backends that can run on `device`, fastest first."""
    device = torch.device(device)
    found = []
    if device.type == "cuda":
        if _flash_attn_varlen() is not None:
            found.append("flash_attn")
        if _torch_varlen() is not None:
            found.append("torch_varlen")
    return [*found, "sdpa"]


def select_backend(device: torch.device | str, override: str | None = None) -> str:
    """The backend for tensors on `device`: `override` if given and usable, else the fastest."""
    usable = available_backends(device)
    if override is None:
        return usable[0]
    if override not in BACKENDS:
        raise ValueError(f"unknown attention backend {override!r}; use one of {BACKENDS} or None (automatic)")
    if override not in usable:
        why = ("needs CUDA tensors" if torch.device(device).type != "cuda"
               else "is not installed (pip install 'neobert-pretrain[flash]')" if override == "flash_attn"
               else "needs torch.nn.attention.varlen (torch >= 2.9)")
        raise ValueError(f"attention backend {override!r} {why}; usable on {device}: {usable}")
    return override


BOUNDARIES_FIX = ("cu_seqlens must rise from 0 to the number of tokens, and max_seqlen must be at least the longest "
                  "document: build them with shards.packing.assemble or tests' pack()")


def check_boundaries(bounds: list[int], max_seqlen: int, num_tokens: int) -> tuple[int, ...]:
    """Document lengths from host boundaries; ValueError (saying what is wrong) if they are invalid."""
    lengths = tuple(b - a for a, b in zip(bounds[:-1], bounds[1:]))
    if bounds[0] != 0 or bounds[-1] != num_tokens or min(lengths) < 0:
        raise ValueError(
            f"cu_seqlens must rise from 0 to the number of tokens {num_tokens}; got {bounds[:4]}...{bounds[-2:]}"
        )
    if max(lengths) > max_seqlen:
        raise ValueError(f"max_seqlen {max_seqlen} is below the longest document ({max(lengths)} tokens)")
    return lengths


def assert_boundaries_async(cu_seqlens: torch.Tensor, max_seqlen: int, num_tokens: int) -> None:
    """The checks of `check_boundaries` as four small device ops and one asynchronous assert."""
    lengths = cu_seqlens[1:] - cu_seqlens[:-1]
    ok = (cu_seqlens[0] == 0) & (cu_seqlens[-1] == num_tokens) & (lengths.min() >= 0) & (lengths.max() <= max_seqlen)
    torch._assert_async(ok, BOUNDARIES_FIX)


@dataclass(frozen=True)
class PackedDocs:
    """Where each document of a packed batch starts: `cu_seqlens[d]` .. `cu_seqlens[d+1]`."""

    cu_seqlens: torch.Tensor  # (D+1,) int32, on the tokens' device
    max_seqlen: int
    backend: str
    lengths: tuple[int, ...] | None = None  # host copy, only the `sdpa` path needs it
    kernel: Callable | None = None  # the varlen function, looked up here so compiled blocks never trace the lookup

    @classmethod
    def prepare(cls, cu_seqlens: torch.Tensor, max_seqlen: int, num_tokens: int, backend: str,
                device: torch.device | str) -> PackedDocs:
        """Check the boundaries once per forward and move them to `device`.

        The varlen kernels read out of bounds, silently, on boundaries that do not rise from 0 to
        `num_tokens` or a `max_seqlen` below the longest document, so every backend checks them,
        never with a host sync per batch: on the host when `cu_seqlens` comes from the collator
        (a ValueError, then a non-blocking copy), else on the device with `torch._assert_async`
        (no sync; a bad batch fails the next CUDA call and ends the process, as a device assert
        does). The `sdpa` path needs the lengths on the host anyway.
        """
        if cu_seqlens.dim() != 1 or cu_seqlens.numel() < 2 or cu_seqlens.dtype != torch.int32:
            raise ValueError(
                f"cu_seqlens must be a 1-D int32 tensor [0, end_0, ..., T] with at least 2 entries, got "
                f"shape {tuple(cu_seqlens.shape)} dtype {cu_seqlens.dtype}"
            )
        lengths = None
        if cu_seqlens.device.type == "cpu" or backend == "sdpa":
            lengths = check_boundaries(cu_seqlens.tolist(), max_seqlen, num_tokens)
        else:
            assert_boundaries_async(cu_seqlens, max_seqlen, num_tokens)
        cu_seqlens = cu_seqlens.to(device, non_blocking=True)
        if not torch.compiler.is_compiling():  # a new document count must not recompile a compiled block
            torch._dynamo.maybe_mark_dynamic(cu_seqlens, 0)
        kernel = _flash_attn_varlen() if backend == "flash_attn" else _torch_varlen() if backend == "torch_varlen" else None
        return cls(cu_seqlens, int(max_seqlen), backend, lengths if backend == "sdpa" else None, kernel)

    def attend(self, q_THD: torch.Tensor, k_THD: torch.Tensor, v_THD: torch.Tensor) -> torch.Tensor:
        """softmax(q kᵀ / √d) v within each document; inputs and output are (tokens, heads, head_dim)."""
        if self.backend == "sdpa":
            q_HTD, k_HTD, v_HTD = (t.transpose(0, 1) for t in (q_THD, k_THD, v_THD))
            out = [
                F.scaled_dot_product_attention(q, k, v)
                for q, k, v in zip(*(t.split(self.lengths, dim=1) for t in (q_HTD, k_HTD, v_HTD)))
            ]
            return torch.cat(out, dim=1).transpose(0, 1)
        if q_THD.dtype not in (torch.bfloat16, torch.float16):
            raise ValueError(
                f"attention backend {self.backend!r} needs bf16/fp16 activations, got {q_THD.dtype}: run under "
                "torch.autocast('cuda', dtype=torch.bfloat16), cast the model, or use attention_backend='sdpa'"
            )
        args = (q_THD, k_THD, v_THD.contiguous(), self.cu_seqlens, self.cu_seqlens, self.max_seqlen, self.max_seqlen)
        if self.backend == "flash_attn":
            return self.kernel(*args, dropout_p=0.0, causal=False)
        assert self.backend == "torch_varlen", self.backend
        return self.kernel(*args)  # older torch releases take other keywords: positional only


@dataclass(frozen=True)
class PaddedRows:
    """A (B, L) batch, one sequence per row: always SDPA, whatever the backend, because padding
    is the users' path; `keep_B11L` is False at padding keys (the published semantic: padded
    queries still get outputs, nobody attends to padding)."""

    keep_B11L: torch.Tensor | None

    def attend(self, q_BLHD: torch.Tensor, k_BLHD: torch.Tensor, v_BLHD: torch.Tensor) -> torch.Tensor:
        out_BHLD = F.scaled_dot_product_attention(
            q_BLHD.transpose(1, 2), k_BLHD.transpose(1, 2), v_BLHD.transpose(1, 2), attn_mask=self.keep_B11L
        )
        return out_BHLD.transpose(1, 2)
