"""The default config is the published NeoBERT: parameter count, tensor names/shapes, config.json."""

from __future__ import annotations

import pytest
import torch

from neobert import NeoBERTConfig, NeoBERTLMHead


def published_shapes() -> dict[str, tuple[int, ...]]:
    """The 172 tensors of chandar-lab/NeoBERT's model.safetensors, written out from the spec."""
    shapes = {"model.encoder.weight": (30522, 768)}
    for i in range(28):
        p = f"model.transformer_encoder.{i}."
        shapes |= {
            p + "qkv.weight": (2304, 768),
            p + "wo.weight": (768, 768),
            p + "ffn.w12.weight": (4096, 768),
            p + "ffn.w3.weight": (768, 2048),
            p + "attention_norm.weight": (768,),
            p + "ffn_norm.weight": (768,),
        }
    shapes |= {"model.layer_norm.weight": (768,), "decoder.weight": (30522, 768), "decoder.bias": (30522,)}
    return shapes


@pytest.fixture(scope="module")
def full_on_meta() -> NeoBERTLMHead:
    with torch.device("meta"):
        return NeoBERTLMHead(NeoBERTConfig())


def test_defaults_are_neobert():
    c = NeoBERTConfig()
    assert (c.vocab_size, c.hidden_size, c.num_hidden_layers, c.num_attention_heads) == (30522, 768, 28, 12)
    assert (c.intermediate_size, c.max_length, c.norm_eps, c.pad_token_id) == (3072, 4096, 1e-5, 0)
    assert (c.embedding_init_range, c.decoder_init_range, c.classifier_init_range) == (0.02, 0.02, 0.02)
    assert c.dim_head == 64
    assert c.swiglu_hidden_size == 2048


def test_parameter_count(full_on_meta):
    assert sum(p.numel() for p in full_on_meta.parameters()) == 245_136_954


def test_exactly_the_published_tensor_names_and_shapes(full_on_meta):
    ours = {name: tuple(t.shape) for name, t in full_on_meta.state_dict().items()}
    assert len(ours) == 172
    assert ours == published_shapes()


def test_only_the_decoder_has_a_bias(full_on_meta):
    biases = [n for n, _ in full_on_meta.named_parameters() if n.endswith("bias")]
    assert biases == ["decoder.bias"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(hidden_size=100), "multiple of num_attention_heads"),
        (dict(hidden_size=36, num_attention_heads=12), "must be even"),
        (dict(num_hidden_layers=0), "positive integer"),
        (dict(pad_token_id=30522), "pad_token_id"),
        (dict(norm_eps=0.0), "norm_eps"),
        (dict(attention_backend="xformers"), "unknown"),
    ],
)
def test_invalid_configs_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        NeoBERTConfig(**overrides)


def test_with_overrides_validates_and_refuses_unknown_fields():
    assert NeoBERTConfig().with_overrides({"max_length": 1024}).max_length == 1024
    with pytest.raises(ValueError, match="unknown NeoBERTConfig fields"):
        NeoBERTConfig().with_overrides({"num_layers": 2})
    with pytest.raises(ValueError, match="attention_backend"):
        NeoBERTConfig().with_overrides({"attention_backend": "flash"})


def test_config_json_has_the_published_keys():
    d = NeoBERTConfig().to_dict()
    assert set(d) == {
        "architectures", "model_type", "auto_map", "hidden_size", "num_hidden_layers", "num_attention_heads",
        "dim_head", "intermediate_size", "vocab_size", "max_length", "norm_eps", "pad_token_id",
        "embedding_init_range", "decoder_init_range", "classifier_init_range", "torch_dtype",
    }
    assert d["architectures"] == ["NeoBERTLMHead"] and d["model_type"] == "neobert"
    assert d["auto_map"] == {
        "AutoConfig": "chandar-lab/NeoBERT--model.NeoBERTConfig",
        "AutoModel": "chandar-lab/NeoBERT--model.NeoBERT",
        "AutoModelForMaskedLM": "chandar-lab/NeoBERT--model.NeoBERTLMHead",
    }
    assert d["dim_head"] == 64 and d["torch_dtype"] == "float32"


def test_round_trip_and_published_dict():
    c = NeoBERTConfig.tiny(max_length=1024)
    assert NeoBERTConfig.from_dict(c.to_dict()) == c
    published = {  # the hub's config.json carries bookkeeping keys besides the architecture
        **NeoBERTConfig().to_dict(), "transformers_version": "4.48.2", "trust_remote_code": True,
        "kwargs": {"classifier_init_range": 0.02}, "rope": True, "hidden_act": "SwiGLU",
        "auto_map": {"AutoConfig": "model.NeoBERTConfig"},
    }
    assert NeoBERTConfig.from_dict(published) == NeoBERTConfig()


@pytest.mark.parametrize("key, value", [("rope", False), ("hidden_act", "GELU"), ("model_type", "bert"), ("dim_head", 32)])
def test_other_architectures_are_refused(key, value):
    with pytest.raises(ValueError, match=key):
        NeoBERTConfig.from_dict({**NeoBERTConfig().to_dict(), key: value})
