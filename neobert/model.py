"""NeoBERT, exact to the published `chandar-lab/NeoBERT` checkpoint.

Module names are the published tensor names (`model.transformer_encoder.3.ffn.w12.weight`, ...),
so a checkpoint maps 1:1 onto `state_dict()`. Two input layouts:

- packed (training): `input_ids (T,)` holding D whole documents back to back, `cu_seqlens (D+1,)`
  int32, `max_seqlen`, `position_ids (T,)` restarting at 0 per document; no document sees another.
- padded (users): `input_ids (B, L)` + `attention_mask (B, L)` (1 = token, 0 = padding); padding
  keys are masked, as in the published code.

Shape suffixes: T tokens, B batch rows, L row length, H heads, D head dim, C hidden (channels).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from neobert.attention import PackedDocs, PaddedRows, select_backend
from neobert.config import NeoBERTConfig

ROPE_THETA = 10000.0
IGNORE_INDEX = nn.CrossEntropyLoss().ignore_index  # -100: PyTorch's, as shards.masking.IGNORE


def rope_angles(position_ids: torch.Tensor, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of pos·θ^(−2i/D) for i < D/2, float32, shaped `position_ids.shape + (1, D/2)`."""
    inv_freq = 1.0 / (ROPE_THETA ** (torch.arange(0, head_dim, 2, device=position_ids.device).float() / head_dim))
    angles = position_ids.float()[..., None] * inv_freq
    return angles.cos()[..., None, :], angles.sin()[..., None, :]


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent pairs (x[2i], x[2i+1]) as complex numbers (LLaMA-1 layout), in float32."""
    x0, x1 = x.float().unflatten(-1, (-1, 2)).unbind(-1)
    rotated = torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1)
    return rotated.flatten(-2).type_as(x)


class SwiGLU(nn.Module):
    """`w3(silu(x1) * x2)` where x1, x2 are the first and second halves of `w12(x)`."""

    def __init__(self, config: NeoBERTConfig):
        super().__init__()
        self.w12 = nn.Linear(config.hidden_size, 2 * config.swiglu_hidden_size, bias=False)
        self.w3 = nn.Linear(config.swiglu_hidden_size, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(x1) * x2)


class EncoderBlock(nn.Module):
    """Pre-norm block: x + wo(attn(attention_norm(x))), then x + ffn(ffn_norm(x))."""

    def __init__(self, config: NeoBERTConfig):
        super().__init__()
        self.num_heads, self.dim_head = config.num_attention_heads, config.dim_head
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=False)
        self.wo = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.ffn = SwiGLU(config)
        self.attention_norm = nn.RMSNorm(config.hidden_size, eps=config.norm_eps)
        self.ffn_norm = nn.RMSNorm(config.hidden_size, eps=config.norm_eps)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                docs: PackedDocs | PaddedRows) -> torch.Tensor:
        # x is (T, C) packed or (B, L, C) padded; heads are interleaved: head h owns qkv rows
        # [3Dh, 3Dh+D) for q, then k, then v.
        q, k, v = self.qkv(self.attention_norm(x)).unflatten(-1, (self.num_heads, 3 * self.dim_head)).chunk(3, dim=-1)
        attn = docs.attend(apply_rope(q, cos, sin), apply_rope(k, cos, sin), v)
        x = x + self.wo(attn.flatten(-2))
        return x + self.ffn(self.ffn_norm(x))


class NeoBERT(nn.Module):
    """The encoder: token embedding, blocks, final RMSNorm; returns hidden states."""

    def __init__(self, config: NeoBERTConfig):
        super().__init__()
        self.config = config
        self.encoder = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.transformer_encoder = nn.ModuleList(EncoderBlock(config) for _ in range(config.num_hidden_layers))
        self.layer_norm = nn.RMSNorm(config.hidden_size, eps=config.norm_eps)
        init_weights(self, config)

    @property
    def backend(self) -> str:
        """The attention backend packed batches use on this model's device."""
        return select_backend(self.encoder.weight.device, self.config.attention_backend)

    def forward(self, input_ids: torch.Tensor, cu_seqlens: torch.Tensor | None = None,
                max_seqlen: int | None = None, position_ids: torch.Tensor | None = None, *,
                attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states, (T, C) for packed input or (B, L, C) for padded input."""
        if input_ids.dim() == 1:
            docs, position_ids = self._packed(input_ids, cu_seqlens, max_seqlen, position_ids, attention_mask)
        elif input_ids.dim() == 2:
            docs, position_ids = self._padded(input_ids, cu_seqlens, max_seqlen, position_ids, attention_mask)
        else:
            raise ValueError(f"input_ids must be (T,) packed or (B, L) padded, got shape {tuple(input_ids.shape)}")
        cos, sin = rope_angles(position_ids, self.config.dim_head)  # once per forward, shared by all layers
        x = self.encoder(input_ids)
        for block in self.transformer_encoder:
            if self.config.activation_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(block, x, cos, sin, docs, use_reentrant=False)
            else:
                x = block(x, cos, sin, docs)
        return self.layer_norm(x)

    def _packed(self, input_ids, cu_seqlens, max_seqlen, position_ids, attention_mask):
        if cu_seqlens is None or max_seqlen is None or position_ids is None or attention_mask is not None:
            raise ValueError("packed input_ids (T,) needs cu_seqlens, max_seqlen and position_ids, and no attention_mask")
        if position_ids.shape != input_ids.shape:
            raise ValueError(f"position_ids {tuple(position_ids.shape)} must match input_ids {tuple(input_ids.shape)}")
        if max_seqlen > self.config.max_length:
            raise ValueError(f"max_seqlen {max_seqlen} exceeds config.max_length {self.config.max_length}")
        docs = PackedDocs.prepare(cu_seqlens, max_seqlen, input_ids.numel(), self.backend, input_ids.device)
        return docs, position_ids

    def _padded(self, input_ids, cu_seqlens, max_seqlen, position_ids, attention_mask):
        if cu_seqlens is not None or max_seqlen is not None:
            raise ValueError("padded input_ids (B, L) takes attention_mask=..., not cu_seqlens/max_seqlen")
        if input_ids.shape[1] > self.config.max_length:
            raise ValueError(f"rows of {input_ids.shape[1]} tokens exceed config.max_length {self.config.max_length}")
        if position_ids is None:
            position_ids = torch.arange(input_ids.shape[1], device=input_ids.device)
        keep = None
        if attention_mask is not None:
            if attention_mask.shape != input_ids.shape or attention_mask.is_floating_point():
                raise ValueError(
                    f"attention_mask must be a bool or 0/1 integer tensor shaped like input_ids "
                    f"{tuple(input_ids.shape)}, got {attention_mask.dtype} {tuple(attention_mask.shape)}"
                )
            keep = attention_mask.bool()[:, None, None, :]
        return PaddedRows(keep), position_ids


@dataclass
class MLMOutput:
    """Masked-LM result. With labels: loss over labelled positions only, and their count and hits."""

    loss: torch.Tensor | None
    num_masked: torch.Tensor | None
    num_correct: torch.Tensor | None
    logits: torch.Tensor | None = None
    hidden_states: torch.Tensor | None = None


class NeoBERTLMHead(nn.Module):
    """NeoBERT plus the untied MLM decoder, `Linear(C, vocab, bias=True)` on the final-normed states."""

    def __init__(self, config: NeoBERTConfig):
        super().__init__()
        self.config = config
        self.model = NeoBERT(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=True)
        init_weights(self.decoder, config)

    @property
    def backend(self) -> str:
        return self.model.backend

    def forward(self, input_ids: torch.Tensor, cu_seqlens: torch.Tensor | None = None,
                max_seqlen: int | None = None, position_ids: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, reduction: str = "mean", *,
                attention_mask: torch.Tensor | None = None) -> MLMOutput:
        """With `labels` (-100 = unlabelled) the decoder runs on labelled positions only and the
        result holds the loss ("mean" or "sum" cross-entropy), `num_masked` and `num_correct`
        (with "none": the loss and hits of each labelled position, in order, so a caller can
        bucket one forward by position); without, it holds logits for every token.
        `hidden_states` is always set."""
        hidden = self.model(input_ids, cu_seqlens, max_seqlen, position_ids, attention_mask=attention_mask)
        if labels is None:
            return MLMOutput(None, None, None, logits=self.decoder(hidden), hidden_states=hidden)
        if labels.shape != input_ids.shape:
            raise ValueError(f"labels {tuple(labels.shape)} must match input_ids {tuple(input_ids.shape)}")
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        labelled = labels.reshape(-1) != IGNORE_INDEX
        targets = labels.reshape(-1)[labelled]
        logits = self.decoder(hidden.reshape(-1, hidden.shape[-1])[labelled]).float()
        num_masked = labelled.sum()
        hits = logits.argmax(dim=-1) == targets
        if reduction == "none":
            return MLMOutput(F.cross_entropy(logits, targets, reduction="none"), num_masked, hits,
                             hidden_states=hidden)
        loss = F.cross_entropy(logits, targets, reduction="sum")
        if reduction == "mean":
            loss = loss / num_masked.clamp(min=1)  # 0, not NaN, when nothing is labelled
        return MLMOutput(loss, num_masked, hits.sum(), hidden_states=hidden)


@torch.no_grad()
def init_weights(module: nn.Module, config: NeoBERTConfig) -> None:
    """The published init: every Linear weight ~ U(±decoder_init_range), every Embedding weight
    ~ U(±embedding_init_range) — the padding row included, exactly as published (nn.Embedding's
    zeroed padding row is overwritten; padding_idx only stops its gradient) — biases zero, norms one."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            m.weight.uniform_(-config.decoder_init_range, config.decoder_init_range)
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, nn.Embedding):
            m.weight.uniform_(-config.embedding_init_range, config.embedding_init_range)
        elif isinstance(m, nn.RMSNorm):
            m.weight.fill_(1.0)
