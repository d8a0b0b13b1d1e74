"""Bounds on a document's token count that need no tokenizing, for WordPiece tokenizers like BERT's.

With a BERT normalizer (clean text, CJK spacing, NFD accent stripping, lowercasing), BERT's
pre-tokenizer (whitespace and punctuation splits) and a WordPiece model:
* every stretch between ASCII whitespace that holds an ASCII letter or digit gives at least one
  token of its own (those characters survive normalisation), so tokens >= such stretches;
* a word of k normalised characters gives at most k tokens (or one [UNK]), and normalising turns a
  character into at most 12 (NFD into 4, lowercasing each into 3; ASCII stays one), so
  tokens <= ASCII characters + 12 * the others <= len(text) + 11 * (UTF-8 bytes - len(text)).
Invariant: `lower(text) <= len(encode(text)) <= upper(text)` (+2 for [CLS] and [SEP] in both).
The token-length filter tokenizes only documents whose bounds straddle its limits.
"""

from __future__ import annotations

import json
import re
from itertools import islice

from tokenizers import Tokenizer

STRETCH = re.compile(r"[A-Za-z0-9][^ \t\n\r]*")  # from an ASCII alnum to the stretch's end: one per stretch


def applies(tok: Tokenizer) -> bool:
    """Whether the bounds hold for `tok` (BERT normaliser, pre-tokenizer and WordPiece; no added token
    with whitespace, which could join stretches)."""
    cfg = json.loads(tok.to_str())
    return ((cfg.get("normalizer") or {}).get("type") == "BertNormalizer"
            and (cfg.get("pre_tokenizer") or {}).get("type") == "BertPreTokenizer"
            and cfg["model"]["type"] == "WordPiece"
            and not any(any(c.isspace() for c in t["content"]) for t in cfg.get("added_tokens", [])))


def lower(text: str, enough: int) -> int:
    """A lower bound on the tokens of `text` with [CLS] and [SEP], counted up to `enough` at most."""
    return 2 + sum(1 for _ in islice(STRETCH.finditer(text), max(0, enough - 2)))


def upper(text: str) -> int:
    """An upper bound on the tokens of `text` with [CLS] and [SEP]."""
    return 2 + len(text) if text.isascii() else 2 + len(text) + 11 * (len(text.encode("utf-8")) - len(text))
