"""NeoBERT for Hugging Face `transformers` (`trust_remote_code`): the published classes and tensor
names (`NeoBERT`, `NeoBERTLMHead`, `NeoBERTForSequenceClassification`), SDPA attention.

Self-contained: imports only torch and transformers, so an exported folder loads without this
project. The math is `neobert/model.py`'s padded path, operation for operation: RMSNorm pre-norm
blocks, head-interleaved qkv, LLaMA-1 rotary embeddings on adjacent pairs in float32, SwiGLU,
padding keys masked (padded queries still get outputs), untied decoder with bias.
Shape suffixes: B batch, L length, H heads, D head dim, C hidden.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput, MaskedLMOutput, SequenceClassifierOutput

from .configuration_neobert import NeoBERTConfig

ROPE_THETA = 10000.0


def rope_angles(position_ids, head_dim):
    """cos, sin of pos·θ^(−2i/D) for i < D/2, float32, shaped `position_ids.shape + (1, D/2)`."""
    inv_freq = 1.0 / (ROPE_THETA ** (torch.arange(0, head_dim, 2, device=position_ids.device).float() / head_dim))
    angles = position_ids.float()[..., None] * inv_freq
    return angles.cos()[..., None, :], angles.sin()[..., None, :]


def apply_rope(x, cos, sin):
    """Rotate adjacent pairs (x[2i], x[2i+1]) as complex numbers (LLaMA-1 layout), in float32."""
    x0, x1 = x.float().unflatten(-1, (-1, 2)).unbind(-1)
    rotated = torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1)
    return rotated.flatten(-2).type_as(x)


def swiglu_hidden_size(intermediate_size):
    return 8 * math.ceil(int(2 * intermediate_size / 3) / 8)


class SwiGLU(nn.Module):
    def __init__(self, config):
        super().__init__()
        hidden = swiglu_hidden_size(config.intermediate_size)
        self.w12 = nn.Linear(config.hidden_size, 2 * hidden, bias=False)
        self.w3 = nn.Linear(hidden, config.hidden_size, bias=False)

    def forward(self, x):
        x1, x2 = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(x1) * x2)


class EncoderBlock(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.dim_head = config.hidden_size // config.num_attention_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=False)
        self.wo = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.ffn = SwiGLU(config)
        self.attention_norm = nn.RMSNorm(config.hidden_size, eps=config.norm_eps)
        self.ffn_norm = nn.RMSNorm(config.hidden_size, eps=config.norm_eps)

    def forward(self, x_BLC, cos, sin, keep_B11L):
        # head h owns qkv rows [3Dh, 3Dh+D) for q, then k, then v
        qkv = self.qkv(self.attention_norm(x_BLC)).unflatten(-1, (self.num_heads, 3 * self.dim_head))
        q, k, v = qkv.chunk(3, dim=-1)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        out_BHLD = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                  attn_mask=keep_B11L)
        x_BLC = x_BLC + self.wo(out_BHLD.transpose(1, 2).flatten(-2))
        return x_BLC + self.ffn(self.ffn_norm(x_BLC))


class NeoBERTPreTrainedModel(PreTrainedModel):
    config_class = NeoBERTConfig
    base_model_prefix = "model"
    _no_split_modules = ["EncoderBlock"]
    _supports_sdpa = True

    def _init_weights(self, module):
        """The published init: Linear ~ U(±decoder_init_range), Embedding ~ U(±embedding_init_range),
        biases zero, norms one."""
        if isinstance(module, nn.Linear):
            module.weight.data.uniform_(-self.config.decoder_init_range, self.config.decoder_init_range)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.uniform_(-self.config.embedding_init_range, self.config.embedding_init_range)
        elif isinstance(module, nn.RMSNorm):
            module.weight.data.fill_(1.0)


class NeoBERT(NeoBERTPreTrainedModel):
    """The encoder: token embedding, blocks, final RMSNorm."""

    def __init__(self, config):
        super().__init__(config)
        self.encoder = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.transformer_encoder = nn.ModuleList(EncoderBlock(config) for _ in range(config.num_hidden_layers))
        self.layer_norm = nn.RMSNorm(config.hidden_size, eps=config.norm_eps)
        self.post_init()

    def get_input_embeddings(self):
        return self.encoder

    def set_input_embeddings(self, value):
        self.encoder = value

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, output_hidden_states=None,
                return_dict=None, **kwargs):
        """`input_ids (B, L)`, `attention_mask (B, L)` 1 = token, 0 = padding."""
        if input_ids is None or input_ids.dim() != 2:
            raise ValueError("input_ids must be a (batch, length) tensor")
        if input_ids.shape[1] > self.config.max_length:
            raise ValueError(f"rows of {input_ids.shape[1]} tokens exceed config.max_length {self.config.max_length}")
        if position_ids is None:
            position_ids = torch.arange(input_ids.shape[1], device=input_ids.device)
        keep = None if attention_mask is None else attention_mask.bool()[:, None, None, :]
        cos, sin = rope_angles(position_ids, self.config.hidden_size // self.config.num_attention_heads)
        x = self.encoder(input_ids)
        states = [x] if output_hidden_states else None
        for block in self.transformer_encoder:
            x = block(x, cos, sin, keep)
            if states is not None:
                states.append(x)
        x = self.layer_norm(x)
        if return_dict is False:
            return (x,) if states is None else (x, tuple(states))
        return BaseModelOutput(last_hidden_state=x, hidden_states=tuple(states) if states is not None else None)


class NeoBERTLMHead(NeoBERTPreTrainedModel):
    """NeoBERT plus the untied MLM decoder `Linear(C, vocab, bias=True)`."""

    def __init__(self, config):
        super().__init__(config)
        self.model = NeoBERT(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=True)
        self.post_init()

    def get_output_embeddings(self):
        return self.decoder

    def set_output_embeddings(self, value):
        self.decoder = value

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, labels=None,
                output_hidden_states=None, return_dict=None, **kwargs):
        """Logits for every token; with `labels` (-100 = ignored) the mean cross-entropy."""
        out = self.model(input_ids, attention_mask, position_ids, output_hidden_states=output_hidden_states)
        logits = self.decoder(out.last_hidden_state)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
        if return_dict is False:
            return (logits,) if loss is None else (loss, logits)
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=out.hidden_states)


class NeoBERTForSequenceClassification(NeoBERTPreTrainedModel):
    """The published head: hidden[:, 0] → dropout → dense → tanh → dropout → classifier; weights
    ~ N(0, classifier_init_range). Loss: MSE for num_labels == 1 (or problem_type regression),
    cross-entropy for single-label, BCE for multi-label classification."""

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = NeoBERT(config)
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def _init_weights(self, module):
        if module is getattr(self, "dense", None) or module is getattr(self, "classifier", None):
            module.weight.data.normal_(mean=0.0, std=self.config.classifier_init_range)
            module.bias.data.zero_()
        else:
            super()._init_weights(module)

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, labels=None,
                output_hidden_states=None, return_dict=None, **kwargs):
        out = self.model(input_ids, attention_mask, position_ids, output_hidden_states=output_hidden_states)
        x = self.dropout(out.last_hidden_state[:, 0])
        x = self.dropout(torch.tanh(self.dense(x)))
        logits = self.classifier(x)
        loss = None
        if labels is not None:
            if self.config.problem_type is None:
                if self.num_labels == 1:
                    self.config.problem_type = "regression"
                elif labels.dtype in (torch.long, torch.int):
                    self.config.problem_type = "single_label_classification"
                else:
                    self.config.problem_type = "multi_label_classification"
            if self.config.problem_type == "regression":
                loss = F.mse_loss(logits.squeeze(-1).float(), labels.squeeze(-1).float()) if self.num_labels == 1 \
                    else F.mse_loss(logits.float(), labels.float())
            elif self.config.problem_type == "single_label_classification":
                loss = F.cross_entropy(logits.float().view(-1, self.num_labels), labels.view(-1))
            else:
                loss = F.binary_cross_entropy_with_logits(logits.float(), labels.float())
        if return_dict is False:
            return (logits,) if loss is None else (loss, logits)
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states)
