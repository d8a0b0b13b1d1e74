"""Save and load the published Hugging Face layout: `config.json` + `model.safetensors`.

Invariants: the tensor names are exactly the published ones (172 for the full model: the
`model.`-prefixed encoder plus `decoder.weight`/`decoder.bias`); loading refuses unknown,
missing or mis-shaped tensors by name; nothing is ever unpickled (safetensors only).

Accepted on load: a full masked-LM checkpoint, a headless one (encoder tensors with or without
the `model.` prefix, as Hugging Face saves `AutoModel`); the decoder is then freshly initialised.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from neobert.config import NeoBERTConfig
from neobert.model import NeoBERT, NeoBERTLMHead

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
ENCODER_PREFIX = "model."

log = logging.getLogger(__name__)


def save_pretrained(model: NeoBERTLMHead | NeoBERT, directory: str | Path,
                    dtype: torch.dtype | None = None) -> Path:
    """Write `config.json` and `model.safetensors` into `directory` (created); returns it.

    `dtype` casts the saved tensors (e.g. torch.bfloat16); default keeps the model's. A bare
    `NeoBERT` is saved as Hugging Face saves `AutoModel`: unprefixed names, no decoder.
    """
    if not isinstance(model, (NeoBERTLMHead, NeoBERT)):
        raise ValueError(f"save_pretrained takes a NeoBERTLMHead or NeoBERT, got {type(model).__name__}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().to(device="cpu", dtype=dtype or t.dtype).contiguous()
               for name, t in model.state_dict().items()}
    saved_dtype = next(iter(tensors.values())).dtype
    config = model.config.to_dict(torch_dtype=str(saved_dtype).removeprefix("torch."),
                                  architecture=type(model).__name__)
    save_file(tensors, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    return directory


def load_pretrained(directory: str | Path, config_overrides: dict[str, Any] | None = None) -> NeoBERTLMHead:
    """Build a float32 `NeoBERTLMHead` from a published-layout directory (ours or chandar-lab's).

    `config_overrides` sets fields such as `attention_backend` or `max_length`; architecture
    fields must still match the tensors, which are checked by name and shape before any load.
    """
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    if not weights_path.is_file():
        found = sorted(p.name for p in directory.glob("*")) if directory.is_dir() else "no such directory"
        raise ValueError(
            f"{weights_path} not found (directory holds {found}); only safetensors checkpoints load, "
            "never pickles: convert a pytorch_model.bin with safetensors.torch.save_file first"
        )
    if not config_path.is_file():
        raise ValueError(f"{config_path} not found; a checkpoint directory needs config.json beside {WEIGHTS_NAME}")
    config = NeoBERTConfig.from_dict(json.loads(config_path.read_text())).with_overrides(config_overrides)
    model = NeoBERTLMHead(config)

    with safe_open(str(weights_path), framework="pt") as f:
        stored = list(f.keys())
        headless = not any(k.startswith(ENCODER_PREFIX) or k.startswith("decoder.") for k in stored)
        names = {(ENCODER_PREFIX + k if headless else k): k for k in stored}  # our name -> stored name
        _check_names_and_shapes(model, names, {k: tuple(f.get_slice(k).get_shape()) for k in stored}, weights_path)
        state = {ours: f.get_tensor(theirs) for ours, theirs in names.items()}

    missing_decoder = [n for n in model.state_dict() if n not in state]
    model.load_state_dict(state, strict=False)
    if missing_decoder:
        log.warning("%s has no MLM decoder (%s): it is freshly initialised, train it before using logits",
                    weights_path, ", ".join(missing_decoder))
    return model


def _check_names_and_shapes(model: NeoBERTLMHead, names: dict[str, str], shapes: dict[str, tuple],
                            path: Path) -> None:
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    decoder = {n for n in expected if not n.startswith(ENCODER_PREFIX)}
    unknown = sorted(theirs for ours, theirs in names.items() if ours not in expected)
    missing = sorted(n for n in expected if n not in names)
    if set(missing) == decoder:
        missing = []  # headless: the decoder is initialised instead
    wrong = sorted(f"{theirs} {shapes[theirs]} (expected {expected[ours]})"
                   for ours, theirs in names.items() if ours in expected and shapes[theirs] != expected[ours])
    problems = [f"{what}: {', '.join(items[:8])}{f' and {len(items) - 8} more' if len(items) > 8 else ''}"
                for what, items in (("unknown tensors", unknown), ("missing tensors", missing),
                                    ("mis-shaped tensors", wrong)) if items]
    if problems:
        raise ValueError(
            f"{path} does not match the NeoBERT layout of its config.json "
            f"({model.config.num_hidden_layers} layers, hidden {model.config.hidden_size}): " + "; ".join(problems)
        )
