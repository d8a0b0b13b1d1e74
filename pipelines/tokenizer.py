"""Loading the job's HF `tokenizers` tokenizer and describing it for the manifest.

Invariant: every document is encoded whole as `[CLS] ids… [SEP]` (no truncation, no padding), with
the special ids looked up here, so any tokenizer with a cls/sep pair gives the same framing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from shards.tokenizer import tokenizer_file

# accepted spellings of each special token (BERT first, then RoBERTa/BPE style)
SPECIAL_NAMES = {
    "pad": ("[PAD]", "<pad>"),
    "unk": ("[UNK]", "<unk>"),
    "cls": ("[CLS]", "<s>"),
    "sep": ("[SEP]", "</s>"),
    "mask": ("[MASK]", "<mask>"),
}


@dataclass
class LoadedTokenizer:
    tokenizer: Tokenizer
    name: str
    path: str
    sha256: str
    vocab_size: int
    special_tokens: dict[str, int]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint16 if self.vocab_size <= 2**16 else np.uint32)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "path": self.path,
            "sha256": self.sha256,
            "vocab_size": self.vocab_size,
            "dtype": self.dtype.name,
            "special_tokens": self.special_tokens,
        }

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        """Each text as `[CLS] … [SEP]` in the shard dtype."""
        cls, sep = self.special_tokens["cls"], self.special_tokens["sep"]
        return [
            np.asarray([cls, *e.ids, sep], dtype=self.dtype)
            for e in self.tokenizer.encode_batch_fast(texts, add_special_tokens=False)
        ]


def load_tokenizer(spec: str) -> LoadedTokenizer:
    """`spec` is a `tokenizer.json` path, a folder holding one, or a Hugging Face Hub repo name."""
    try:
        path = tokenizer_file(spec)  # the one resolution shards.api checks against
    except ValueError as e:
        raise ValueError(f"--{e}") from None
    tok = Tokenizer.from_file(str(path))
    tok.no_truncation()
    tok.no_padding()
    special = {}
    for key, names in SPECIAL_NAMES.items():
        ids = [tok.token_to_id(n) for n in names if tok.token_to_id(n) is not None]
        if not ids:
            raise ValueError(f"--tokenizer {spec}: no {key} token (looked for {names}); use a BERT/RoBERTa-style tokenizer")
        special[key] = ids[0]
    return LoadedTokenizer(
        tokenizer=tok,
        name=spec if not Path(spec).exists() else path.parent.name,
        path=str(path),
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        vocab_size=tok.get_vocab_size(),
        special_tokens=special,
    )
