"""NeoBERT with the published sequence-classification head (torch only).

Tensor names are the published `NeoBERTForSequenceClassification`'s (and those of
`training/hf/modeling_neobert.py`): `model.*` the encoder, `dense.*`, `classifier.*`, so a state
dict here is a state dict there. The head reads the first token ([CLS]) of each row, or of each
document of a packed batch: dropout → dense → tanh → dropout → classifier. Dense and classifier
weights ~ N(0, `classifier_init_range`), biases zero, as published.
"""

from __future__ import annotations

import torch
from torch import nn

from neobert.config import NeoBERTConfig
from neobert.model import NeoBERT


class NeoBERTForSequenceClassification(nn.Module):
    def __init__(self, config: NeoBERTConfig, num_labels: int, dropout: float = 0.1):
        super().__init__()
        if num_labels < 1:
            raise ValueError(f"num_labels must be >= 1 (1 = regression), got {num_labels}")
        if not 0 <= dropout < 1:
            raise ValueError(f"classifier dropout must lie in [0, 1), got {dropout}")
        self.config, self.num_labels = config, num_labels
        self.model = NeoBERT(config)
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, num_labels)
        with torch.no_grad():
            for layer in (self.dense, self.classifier):
                layer.weight.normal_(0.0, config.classifier_init_range)
                layer.bias.zero_()

    @property
    def backend(self) -> str:
        return self.model.backend

    def forward(self, input_ids: torch.Tensor, cu_seqlens: torch.Tensor | None = None,
                max_seqlen: int | None = None, position_ids: torch.Tensor | None = None, *,
                attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (N, num_labels): one row per padded row, or per packed document."""
        hidden = self.model(input_ids, cu_seqlens, max_seqlen, position_ids, attention_mask=attention_mask)
        first = hidden[:, 0] if input_ids.dim() == 2 else hidden[cu_seqlens[:-1].to(hidden.device).long()]
        x = self.dropout(torch.tanh(self.dense(self.dropout(first))))
        return self.classifier(x)
