"""NeoBERT's configuration: defaults are the published `chandar-lab/NeoBERT` (245,136,954 parameters).

`to_dict`/`from_dict` speak the published `config.json`, so a checkpoint we save loads with the
published code (`trust_remote_code`) and a published checkpoint loads here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

BACKENDS = ("flash_attn", "torch_varlen", "sdpa")

AUTO_MAP = {
    "AutoConfig": "chandar-lab/NeoBERT--model.NeoBERTConfig",
    "AutoModel": "chandar-lab/NeoBERT--model.NeoBERT",
    "AutoModelForMaskedLM": "chandar-lab/NeoBERT--model.NeoBERTLMHead",
}

# Settings chosen at run time, never written to config.json.
RUNTIME_FIELDS = ("attention_backend", "activation_checkpointing")

# Keys the published code may write that would describe another architecture than this one:
# accepted only with the value NeoBERT uses.
FIXED_ARCHITECTURE = {
    "model_type": "neobert",
    "rope": True,
    "rms_norm": True,
    "hidden_act": "swiglu",
    "dropout": 0,
    "ngpt": False,
    "tie_word_embeddings": False,
}


@dataclass
class NeoBERTConfig:
    """Architecture of a NeoBERT encoder plus two run-time choices (backend, checkpointing)."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 28
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    """Nominal FFN width; the SwiGLU hidden width is `swiglu_hidden_size` (2048 for 3072)."""
    max_length: int = 4096
    """Longest document the model is meant for (stage 1 trains at 1024)."""
    norm_eps: float = 1e-5
    pad_token_id: int = 0
    embedding_init_range: float = 0.02
    decoder_init_range: float = 0.02
    """Range of every Linear weight (the published code uses this name for all of them)."""
    classifier_init_range: float = 0.02
    """Std of the sequence-classification head's weights (`neobert.classification`)."""
    attention_backend: str | None = None
    """None picks the fastest available (see `neobert.attention.select_backend`)."""
    activation_checkpointing: bool = False
    """Recompute each block in backward while training: less memory, ~1/3 more compute."""

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} must be a multiple of num_attention_heads "
                f"{self.num_attention_heads}; change one of them"
            )
        if self.dim_head % 2:
            raise ValueError(f"head dimension {self.dim_head} must be even for rotary embeddings; "
                             "change hidden_size or num_attention_heads")
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(f"pad_token_id {self.pad_token_id} must lie in [0, vocab_size={self.vocab_size})")
        for name in ("norm_eps", "embedding_init_range", "decoder_init_range", "classifier_init_range"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.attention_backend is not None and self.attention_backend not in BACKENDS:
            raise ValueError(
                f"attention_backend {self.attention_backend!r} is unknown; use one of {BACKENDS} "
                "or None to choose automatically"
            )

    @property
    def dim_head(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def swiglu_hidden_size(self) -> int:
        """Two thirds of `intermediate_size`, rounded up to a multiple of 8 (as published)."""
        return 8 * math.ceil(int(2 * self.intermediate_size / 3) / 8)

    @classmethod
    def tiny(cls, **overrides: Any) -> NeoBERTConfig:
        """A few-thousand-parameter-per-layer model with the full vocabulary, for demos and tests."""
        base = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=192,
                    max_length=4096)
        return cls(**{**base, **overrides})

    def with_overrides(self, overrides: dict[str, Any] | None) -> NeoBERTConfig:
        """A copy with `overrides` applied (validated); unknown names are refused."""
        if not overrides:
            return self
        unknown = sorted(set(overrides) - {f.name for f in fields(self)})
        if unknown:
            raise ValueError(f"unknown NeoBERTConfig fields {unknown}; valid: {[f.name for f in fields(self)]}")
        return replace(self, **overrides)

    def to_dict(self, torch_dtype: str = "float32", architecture: str = "NeoBERTLMHead") -> dict[str, Any]:
        """The published config.json: architecture fields plus the keys Hugging Face needs."""
        arch = {k: v for k, v in asdict(self).items() if k not in RUNTIME_FIELDS}
        return {
            "architectures": [architecture],
            "model_type": "neobert",
            "auto_map": dict(AUTO_MAP),
            **arch,
            "dim_head": self.dim_head,
            "torch_dtype": torch_dtype,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NeoBERTConfig:
        """Read a config.json dict (ours or the published one); bookkeeping keys are ignored.

        Keys that would mean a different architecture (e.g. `rope: false`) are refused, as is a
        `dim_head` that disagrees with hidden_size / num_attention_heads.
        """
        for key, expected in FIXED_ARCHITECTURE.items():
            value = data.get(key, expected)
            if (value.lower() if isinstance(value, str) else value) != expected:
                raise ValueError(f"config.json has {key}={value!r}; this model implements only {key}={expected!r}")
        names = {f.name for f in fields(cls)} - set(RUNTIME_FIELDS)
        config = cls(**{k: v for k, v in data.items() if k in names})
        if "dim_head" in data and data["dim_head"] != config.dim_head:
            raise ValueError(
                f"config.json has dim_head={data['dim_head']} but hidden_size/num_attention_heads = "
                f"{config.dim_head}; fix one of the three"
            )
        return config
