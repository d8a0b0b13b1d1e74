"""Tokenizer loading: whole-document framing, special ids, and the shard dtype the vocabulary needs."""

from __future__ import annotations

import numpy as np
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from pipelines.tokenizer import load_tokenizer
from shards.layout import BERT_TOKENIZER


def word_level(tmp_path, size: int, specials=("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")) -> str:
    vocab = {t: i for i, t in enumerate(specials)} | {f"w{i}": i for i in range(len(specials), size)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=specials[1]))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    return str(path)


def test_bundled_bert_frames_whole_documents():
    tok = load_tokenizer(str(BERT_TOKENIZER))
    assert tok.special_tokens == {"pad": 0, "unk": 100, "cls": 101, "sep": 102, "mask": 103}
    long_text = "word " * 5000
    (ids,) = tok.encode_batch([long_text])
    assert ids.dtype == np.uint16 and len(ids) == 5002 and ids[0] == 101 and ids[-1] == 102
    assert ids.tolist() == Tokenizer.from_file(str(BERT_TOKENIZER)).encode(long_text).ids


def test_large_vocabulary_uses_uint32(tmp_path):
    tok = load_tokenizer(word_level(tmp_path, 70_000))
    (ids,) = tok.encode_batch(["w69999 w5"])
    assert tok.describe()["dtype"] == "uint32" and ids.tolist() == [2, 69999, 5, 3] and ids.dtype == np.uint32


def test_missing_special_token_is_explained(tmp_path):
    with pytest.raises(ValueError, match="no cls token"):
        load_tokenizer(word_level(tmp_path, 100, specials=("[PAD]", "[UNK]", "[X]", "[SEP]", "[MASK]")))
    with pytest.raises(ValueError, match="no tokenizer.json"):
        load_tokenizer(str(tmp_path / "missing.json"))
