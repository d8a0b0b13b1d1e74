"""`python -m training export RUN_OR_CKPT OUT`: a folder that loads offline with stock `transformers`.

OUT holds `config.json` (its `auto_map` names the two source files copied beside it), the
published-layout `model.safetensors` (so `neobert.checkpoint.load_pretrained` reads it too), the
run's tokenizer (`tokenizer.json`, `tokenizer_config.json`, `special_tokens_map.json`) and a model
card `README.md`.

Invariants: the tokenizer written is byte-for-byte the `tokenizer.json` whose sha256 the run's
data manifest records (any other is refused); every number on the card is read from the
checkpoint, the manifest or the run's `metrics.jsonl`.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch
import yaml

from neobert import NeoBERTConfig, NeoBERTLMHead
from neobert.checkpoint import CONFIG_NAME, save_pretrained
from shards import manifest as manifest_io
from shards.card import source_dataset, span
from shards.layout import BERT_TOKENIZER
from shards.tokenizer import tokenizer_file, tokenizer_sha256
from training import checkpoint
from training.metrics import METRICS

SOURCES = Path(__file__).parent
CODE_FILES = ("configuration_neobert.py", "modeling_neobert.py")
AUTO_MAP = {
    "AutoConfig": "configuration_neobert.NeoBERTConfig",
    "AutoModel": "modeling_neobert.NeoBERT",
    "AutoModelForMaskedLM": "modeling_neobert.NeoBERTLMHead",
    "AutoModelForSequenceClassification": "modeling_neobert.NeoBERTForSequenceClassification",
}
LICENSE = "apache-2.0"  # the project's; the training data's own terms are named on the card
TOKEN_NAMES = {"pad": "pad_token", "unk": "unk_token", "cls": "cls_token", "sep": "sep_token", "mask": "mask_token"}

log = logging.getLogger(__name__)


def export(spec: str | Path, out_dir: str | Path, dtype: torch.dtype | None = None,
           tokenizer: str | Path | None = None) -> tuple[Path, dict]:
    """Write the folder; returns it and the checkpoint state's counters (`step`, `tokens`).

    `tokenizer` is a `tokenizer.json` (or a folder with one) to use when the one the manifest
    names is not found here; it must still have the manifest's sha256.
    """
    path = checkpoint.resolve(spec)
    state = checkpoint.load(path)
    run = state["config"]
    manifest = _manifest(run["data"]["root"], path)
    tok_path = find_tokenizer(manifest["tokenizer"], tokenizer)

    model = NeoBERTLMHead(NeoBERTConfig.from_dict(state["model_config"]))
    model.load_state_dict(state["model"])
    out = save_pretrained(model, out_dir, dtype=dtype)
    config = json.loads((out / CONFIG_NAME).read_text())
    config["auto_map"] = dict(AUTO_MAP)
    (out / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    for name in CODE_FILES:
        shutil.copyfile(SOURCES / name, out / name)
    special = write_tokenizer(tok_path, manifest["tokenizer"], model.config.max_length, out)
    val = last_validation(path.parent.parent, state["step"])
    (out / "README.md").write_text(model_card(state, manifest, val, special["mask_token"]))
    return out, {"step": state["step"], "tokens": state["tokens"]}


def _manifest(root: str, ckpt: Path) -> dict:
    try:
        return manifest_io.read(root)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{ckpt} was trained on data.root={root!r}, whose manifest.json is not reachable from here; "
            "export where that path resolves (the tokenizer and the card come from the manifest)"
        ) from None


def find_tokenizer(record: dict, override: str | Path | None = None) -> Path:
    """The local `tokenizer.json` with the manifest's sha256: `override`, else the path the
    manifest records, the bundled BERT one, or the recorded name (a folder or a Hub download)."""
    if override is not None:
        found = tokenizer_file(override)
        if (got := tokenizer_sha256(found)) != record["sha256"]:
            raise ValueError(f"--tokenizer {override}: sha256 {got} differs from the manifest's "
                             f"{record['sha256']} ({record['name']}); pass the tokenizer the shards were made with")
        return found
    candidates = [record.get("path"), BERT_TOKENIZER, record["name"]]
    for spec in candidates:
        if not spec:
            continue
        try:
            found = tokenizer_file(spec)
        except (ValueError, OSError):
            continue
        if tokenizer_sha256(found) == record["sha256"]:
            return found
    raise ValueError(f"no tokenizer.json with the manifest's sha256 {record['sha256']} ({record['name']}) found "
                     f"among {[str(c) for c in candidates if c]}; pass it with --tokenizer PATH")


def write_tokenizer(path: Path, record: dict, max_length: int, out: Path) -> dict[str, str]:
    """`tokenizer.json` (copied unchanged), `tokenizer_config.json`, `special_tokens_map.json`;
    returns the special tokens by Hugging Face name (`mask_token`: "[MASK]", ...)."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer.from_file(str(path))
    special = {TOKEN_NAMES[k]: backend.id_to_token(i) for k, i in record["special_tokens"].items()}
    fast = PreTrainedTokenizerFast(tokenizer_file=str(path), model_max_length=max_length,
                                   model_input_names=["input_ids", "attention_mask"], **special)
    fast.save_pretrained(str(out))
    shutil.copyfile(path, out / "tokenizer.json")  # the exact bytes the manifest's sha256 names
    return special


def last_validation(run_dir: Path, step: int) -> dict | None:
    """The run's last `kind: "val"` record at or before `step` (none without metrics.jsonl)."""
    metrics = run_dir / METRICS
    if not metrics.is_file():
        return None
    records = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    vals = [r for r in records if r.get("kind") == "val" and r.get("step", 0) <= step]
    return vals[-1] if vals else None


def model_card(state: dict, manifest: dict, val: dict | None, mask_token: str = "[MASK]") -> str:
    """Hugging Face YAML metadata plus what the model was trained on, for how long, and how it scores."""
    run, model_cfg, tok = state["config"], state["model_config"], manifest["tokenizer"]
    source = manifest.get("source", {})
    dataset = source_dataset(source.get("url", ""))
    header = {"library_name": "transformers", "pipeline_tag": "fill-mask", "license": LICENSE,
              "language": ["en"], "datasets": [dataset],
              "tags": ["neobert", "fill-mask", "masked-lm", "encoder", "custom_code"]}
    buckets = manifest["buckets"]
    documents = sum(b["documents"] for b in buckets.values())
    tokens = sum(b["tokens"] for b in buckets.values())
    lines = [
        "---", yaml.safe_dump(header, sort_keys=False).strip(), "---", "",
        "# NeoBERT", "",
        f"A NeoBERT encoder ({model_cfg['num_hidden_layers']} layers, hidden {model_cfg['hidden_size']}, "
        f"{model_cfg['num_attention_heads']} heads, vocabulary {model_cfg['vocab_size']:,}) pretrained with masked "
        "language modelling. Load it with `trust_remote_code=True` (the modeling code is in this folder):", "",
        "```python",
        "from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline",
        'model = AutoModelForMaskedLM.from_pretrained(".", trust_remote_code=True)',
        'tokenizer = AutoTokenizer.from_pretrained(".")',
        'print(pipeline("fill-mask", model=".", trust_remote_code=True)("Paris is the [MASK] of France."))',
        "```", "",
        "## Training", "",
        f"- steps: {state['step']:,}",
        f"- tokens seen: {state['tokens']:,}",
        f"- context length: {run['data']['context_length']:,} tokens (model max_length {model_cfg['max_length']:,})",
        f"- global batch: {run['global_batch_tokens']:,} tokens; peak lr {run['optim']['lr']}; "
        f"masking rate {run['data']['masking']['rate']}",
        f"- mixture: `{run['data']['mixture']}`", "",
        "## Training data", "",
        f"[{dataset}](https://huggingface.co/datasets/{dataset}) read from `{source.get('url', '?')}`: "
        f"{documents:,} training documents, {tokens:,} tokens, tokenized with `{tok['name']}` "
        f"(sha256 `{tok['sha256']}`).", "",
        "| bucket | tokens per document | documents | tokens |", "|---|---|---|---|",
        *[f"| {n} | {span(b)} | {b['documents']:,} | {b['tokens']:,} |"
          for n, b in buckets.items()],
        f"| validation | | {manifest['validation']['documents']:,} | {manifest['validation']['tokens']:,} |",
        "", "## Evaluation", "",
    ]
    if val is None:
        lines.append("No validation was recorded for this checkpoint.")
    else:
        pll = f"; pseudo-perplexity over {val['pll_positions']:,} positions, each masked alone" \
            if val.get("pll_positions") else ""
        lines += [f"Validation on the held-out split at step {val['step']:,} "
                  f"(MLM: {val.get('masked_tokens', 0):,} masked tokens{pll}):", "",
                  "| metric | value |", "|---|---|",
                  *[f"| {k} | {v:.4f} |" for k, v in val.items()
                    if k not in ("kind", "step", "masked_tokens", "pll_positions") and isinstance(v, (int, float))]]
    return "\n".join(lines) + "\n"
