"""Checkpoint IO speaks the published Hugging Face layout and refuses anything else by name."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from neobert import NeoBERTConfig, NeoBERTLMHead
from neobert.checkpoint import load_pretrained, save_pretrained


@pytest.fixture
def trained_looking(tiny_model) -> NeoBERTLMHead:
    """The tiny model with every tensor (norms, bias) moved off its init, so nothing matches by luck."""
    with torch.no_grad():
        for p in tiny_model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return tiny_model


def write_published(directory, state: dict, config: dict) -> None:
    """A checkpoint directory as the hub serves it, written without our save function."""
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(directory / "model.safetensors"),
              metadata={"format": "pt"})
    (directory / "config.json").write_text(json.dumps(config))


def published_config(config: NeoBERTConfig) -> dict:
    return {**config.to_dict(), "transformers_version": "4.48.2", "trust_remote_code": True,
            "auto_map": {"AutoConfig": "model.NeoBERTConfig", "AutoModel": "model.NeoBERT"}}


def test_save_load_round_trips_bit_exactly(trained_looking, tmp_path, random_docs, packer):
    save_pretrained(trained_looking, tmp_path / "ckpt")
    loaded = load_pretrained(tmp_path / "ckpt").eval()
    original = trained_looking.state_dict()
    assert loaded.config == trained_looking.config
    assert loaded.state_dict().keys() == original.keys()
    assert all(torch.equal(loaded.state_dict()[k], original[k]) for k in original)
    with torch.no_grad():
        batch = packer(random_docs)
        assert torch.equal(loaded(**batch).logits, trained_looking(**batch).logits)


def test_saved_files_are_the_published_layout(trained_looking, tmp_path):
    save_pretrained(trained_looking, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["NeoBERTLMHead"] and config["torch_dtype"] == "float32"
    assert config["auto_map"]["AutoModelForMaskedLM"] == "chandar-lab/NeoBERT--model.NeoBERTLMHead"
    with safe_open(str(tmp_path / "model.safetensors"), framework="pt") as f:
        assert f.metadata() == {"format": "pt"}  # transformers refuses safetensors without it
        names = set(f.keys())
    assert names == set(trained_looking.state_dict())
    assert "model.transformer_encoder.1.ffn.w12.weight" in names and "decoder.bias" in names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]


def test_bf16_save(trained_looking, tmp_path):
    save_pretrained(trained_looking, tmp_path, dtype=torch.bfloat16)
    assert json.loads((tmp_path / "config.json").read_text())["torch_dtype"] == "bfloat16"
    with safe_open(str(tmp_path / "model.safetensors"), framework="pt") as f:
        assert f.get_tensor("decoder.weight").dtype == torch.bfloat16
    loaded = load_pretrained(tmp_path)
    w = trained_looking.decoder.weight
    assert loaded.decoder.weight.dtype == torch.float32
    assert torch.equal(loaded.decoder.weight, w.to(torch.bfloat16).float())


def test_loads_a_published_directory_in_one_call(trained_looking, tmp_path):
    state = trained_looking.state_dict()
    write_published(tmp_path, state, published_config(trained_looking.config))
    loaded = load_pretrained(tmp_path, config_overrides={"attention_backend": "sdpa"})
    assert loaded.config.attention_backend == "sdpa"
    assert all(torch.equal(loaded.state_dict()[k], state[k]) for k in state)


@pytest.mark.parametrize("prefixed", [True, False], ids=["model.-prefixed", "AutoModel-layout"])
def test_headless_encoder_loads_with_a_fresh_decoder(trained_looking, tmp_path, caplog, prefixed):
    if prefixed:
        state = {k: v for k, v in trained_looking.state_dict().items() if k.startswith("model.")}
        write_published(tmp_path, state, published_config(trained_looking.config))
    else:
        save_pretrained(trained_looking.model, tmp_path)  # a bare encoder saves as HF's AutoModel does
        with safe_open(str(tmp_path / "model.safetensors"), framework="pt") as f:
            assert "encoder.weight" in f.keys() and "decoder.weight" not in f.keys()
    with caplog.at_level(logging.WARNING, logger="neobert.checkpoint"):
        loaded = load_pretrained(tmp_path)
    assert "freshly initialised" in caplog.text and "decoder.weight" in caplog.text
    encoder = trained_looking.model.state_dict()
    assert all(torch.equal(loaded.model.state_dict()[k], encoder[k]) for k in encoder)
    assert torch.equal(loaded.decoder.bias, torch.zeros(30522))
    assert 0 < loaded.decoder.weight.abs().max() <= 0.02


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s.update({"model.pooler.weight": torch.zeros(2)}), "unknown tensors: model.pooler.weight"),
        (lambda s: s.pop("model.transformer_encoder.1.wo.weight"), "missing tensors: model.transformer_encoder.1.wo.weight"),
        (lambda s: s.pop("decoder.bias"), "missing tensors: decoder.bias"),
        (lambda s: s.update({"model.layer_norm.weight": torch.ones(65)}), r"mis-shaped tensors: model.layer_norm.weight \(65,\)"),
    ],
    ids=["unknown", "missing-encoder", "half-a-decoder", "mis-shaped"],
)
def test_mismatched_tensors_are_refused_by_name(trained_looking, tmp_path, edit, message):
    state = dict(trained_looking.state_dict())
    edit(state)
    write_published(tmp_path, state, published_config(trained_looking.config))
    with pytest.raises(ValueError, match=message):
        load_pretrained(tmp_path)


def test_architecture_override_that_disagrees_with_the_tensors_is_refused(trained_looking, tmp_path):
    save_pretrained(trained_looking, tmp_path)
    with pytest.raises(ValueError, match="unknown tensors: model.transformer_encoder.1"):
        load_pretrained(tmp_path, config_overrides={"num_hidden_layers": 1})


def test_never_unpickles(trained_looking, tmp_path, monkeypatch):
    torch.save(trained_looking.state_dict(), tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text(json.dumps(trained_looking.config.to_dict()))
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load was called"))
    with pytest.raises(ValueError, match="only safetensors"):
        load_pretrained(tmp_path)
    save_pretrained(trained_looking, tmp_path)
    load_pretrained(tmp_path)  # loads with torch.load unavailable
