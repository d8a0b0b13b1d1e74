"""Which `tokenizer.json` a tokenizer spec names, and its fingerprint (what manifests record).

Kept apart from `shards.api` so that light tools (the dataset card) need no torch.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def tokenizer_file(spec: str | Path) -> Path:
    """A `tokenizer.json` path, a folder holding one, or a Hugging Face Hub repo name → the file."""
    path = Path(spec)
    if path.is_dir():
        path = path / "tokenizer.json"
    if path.is_file():
        return path
    if Path(spec).exists() or str(spec).endswith(".json"):
        raise ValueError(f"tokenizer {spec}: no tokenizer.json there")
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(str(spec), "tokenizer.json"))
    except Exception as e:
        raise ValueError(f"tokenizer {spec}: not a local tokenizer.json and not loadable from the Hub ({e})") from None


def tokenizer_sha256(spec: str | Path) -> str:
    """The fingerprint the manifest records: sha256 of the `tokenizer.json` bytes."""
    return hashlib.sha256(tokenizer_file(spec).read_bytes()).hexdigest()
