"""The classifier a fine-tune starts from, its tokenizer, and the folder the best fine-tune is saved as.

A start is a trainer checkpoint (a run folder or `RUN/checkpoints/step_N`: `training.checkpoint`), an
exported Hugging Face folder (`config.json` + `model.safetensors`, with or without the `model.`
prefix), or a fine-tune saved here (which also holds the head: `dense` always carries over,
`classifier` when the label count matches, else it starts fresh). The tokenizer always comes from the
pretrained CHECKPOINT, never from a fine-tune started from it. A saved fine-tune loads with
`AutoModelForSequenceClassification.from_pretrained(DIR, trust_remote_code=True)`.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from neobert import NeoBERTConfig, NeoBERTForSequenceClassification
from neobert.checkpoint import CONFIG_NAME, ENCODER_PREFIX, WEIGHTS_NAME
from shards import manifest as manifest_io
from training import checkpoint
from training.glue.data import Encoder
from training.glue.tasks import Task
from training.hf.export import AUTO_MAP, CODE_FILES, SOURCES, find_tokenizer

HEAD = ("dense.", "classifier.")
SPECIAL_MAP = "special_tokens_map.json"  # Hugging Face's names of the special tokens, when the folder has it
SPECIAL = {"cls": ("[CLS]", "<s>"), "sep": ("[SEP]", "</s>"), "pad": ("[PAD]", "<pad>")}  # else these
log = logging.getLogger("training")


def is_trainer_checkpoint(spec: str | Path) -> bool:
    path = Path(spec)
    return (path / checkpoint.STATE).is_file() or checkpoint.latest(path) is not None


def load_weights(spec: str | Path) -> tuple[NeoBERTConfig, dict[str, torch.Tensor], str | None]:
    """The config and the tensors of `spec`, named as in the classifier (`model.*`, head if any), and
    the data root a trainer checkpoint was trained on (None for a folder)."""
    if is_trainer_checkpoint(spec):
        state = checkpoint.load(checkpoint.resolve(spec))
        return NeoBERTConfig.from_dict(state["model_config"]), state["model"], state["config"]["data"]["root"]
    path = Path(spec)
    if not (path / CONFIG_NAME).is_file() or not (path / WEIGHTS_NAME).is_file():
        raise FileNotFoundError(f"{spec}: neither a trainer run/checkpoint (no {checkpoint.STATE}) nor a Hugging Face "
                                f"folder ({CONFIG_NAME} + {WEIGHTS_NAME}); point at RUN_DIR, a checkpoint or an "
                                "exported folder (python -m training export)")
    config = NeoBERTConfig.from_dict(json.loads((path / CONFIG_NAME).read_text()))
    tensors = load_file(str(path / WEIGHTS_NAME))
    prefixed = any(k.startswith(ENCODER_PREFIX) for k in tensors)
    return config, {k if prefixed or k.startswith(HEAD) or k.startswith("decoder.") else ENCODER_PREFIX + k: v
                    for k, v in tensors.items()}, None


def build(config: NeoBERTConfig, tensors: dict[str, torch.Tensor], task: Task, dropout: float,
          backend: str | None, where: str) -> NeoBERTForSequenceClassification:
    """A classifier for `task` with the encoder (and what fits of the head) of `tensors`."""
    model = NeoBERTForSequenceClassification(config.with_overrides({"attention_backend": backend}),
                                             task.num_labels, dropout)
    expected = model.state_dict()
    state = {k: v for k, v in tensors.items() if k in expected and not k.startswith("decoder.")}
    unknown = sorted(k for k in tensors if k not in expected and not k.startswith("decoder."))
    missing = sorted(k for k in expected if k not in state and not k.startswith(HEAD))
    if unknown or missing:
        raise ValueError(f"{where} does not fit a NeoBERT of its config ({config.num_hidden_layers} layers, hidden "
                         f"{config.hidden_size}): unknown tensors {unknown[:5]}, missing {missing[:5]}")
    for name in ("classifier.weight", "classifier.bias"):
        if name in state and state[name].shape != expected[name].shape:
            log.info(f"{where}: classifier has {state[name].shape[0]} labels, {task.name} {task.num_labels}: "
                     "a fresh classifier layer (the encoder and dense layer carry over)")
            del state[name]
    try:
        model.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise ValueError(f"{where}: its tensors do not fit its config ({e})") from None
    return model


def encoder_for(spec: str | Path, data_root: str | None, override: str | None = None) -> Encoder:
    """The tokenizer of the pretrained checkpoint `spec`: `override` (a tokenizer.json or its folder),
    else the one the data manifest of a trainer run records (`data_root`), else the folder's own."""
    from tokenizers import Tokenizer

    if override is None and data_root is not None:
        try:
            record = manifest_io.read(data_root)["tokenizer"]
        except FileNotFoundError:
            raise FileNotFoundError(f"{spec} was trained on data.root={data_root!r}, whose manifest (and tokenizer "
                                    "record) is not reachable here; pass --set tokenizer=FOLDER") from None
        ids = record["special_tokens"]
        return _encoder(Tokenizer.from_file(str(find_tokenizer(record))), ids["cls"], ids["sep"], ids["pad"])
    folder = Path(override or spec)
    folder = folder.parent if folder.is_file() else folder  # a tokenizer.json given itself
    path = folder / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no tokenizer.json; pass --set tokenizer=FOLDER (a Hugging Face tokenizer "
                                "folder, e.g. one written by python -m training export)")
    tokenizer = Tokenizer.from_file(str(path))
    named = json.loads((folder / SPECIAL_MAP).read_text()) if (folder / SPECIAL_MAP).is_file() else {}

    def token_id(kind: str) -> int | None:
        token = named.get(f"{kind}_token")
        candidates = [token.get("content") if isinstance(token, dict) else token] if token else SPECIAL[kind]
        return next((tokenizer.token_to_id(t) for t in candidates if tokenizer.token_to_id(t) is not None), None)

    return _encoder(tokenizer, token_id("cls"), token_id("sep"), token_id("pad"))


def _encoder(tokenizer, cls: int | None, sep: int | None, pad: int | None) -> Encoder:
    """`tokenizer` (a `tokenizers.Tokenizer`, changed: no truncation, no padding) framed by these ids."""
    if None in (cls, sep, pad):
        raise ValueError(f"the tokenizer needs [CLS], [SEP] and [PAD] tokens (got ids {cls}, {sep}, {pad})")
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return Encoder(tokenizer, cls, sep, pad)


def save(model: NeoBERTForSequenceClassification, directory: str | Path, task: Task, dropout: float) -> Path:
    """config.json (published layout + num_labels, auto_map to the code copied beside it) + model.safetensors."""
    directory = Path(directory)
    tmp = directory.with_name(f".tmp-{directory.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp / WEIGHTS_NAME),
              metadata={"format": "pt"})
    config = {**model.config.to_dict(architecture=type(model).__name__), "auto_map": dict(AUTO_MAP),
              "num_labels": task.num_labels, "classifier_dropout": dropout, "finetuning_task": task.name,
              "problem_type": "regression" if task.regression else "single_label_classification"}
    (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    for name in CODE_FILES:
        shutil.copyfile(SOURCES / name, tmp / name)
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)
    return directory
