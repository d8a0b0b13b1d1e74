"""The token-count bounds hold for the bundled tokenizer, and the length filter decides as tokenizing would."""

from __future__ import annotations

import random

from datatrove.data import Document
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from pipelines import length_bounds
from pipelines.filters import TokenLengthFilter
from shards.layout import BERT_TOKENIZER

TOK = Tokenizer.from_file(str(BERT_TOKENIZER))
PIECES = ["word", "Straße", "ÉCOLE", "한국어", "ᾂ", "İstanbul", "中文字", "\u200b", "\x1c", "\xa0", "\u3000", "e\u0301",
          "…", "—", "[MASK]", "a.b,c", "x" * 120, "😀", " ", "  ", "\t", "\n", "\r\n", "12", "-", "'s"]


def count(text: str) -> int:
    return len(TOK.encode(text, add_special_tokens=False).ids) + 2


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=8)), max_size=40))
def test_bounds_hold(parts):
    text = "".join(parts)
    n = count(text)
    assert length_bounds.lower(text, 10**9) <= n <= length_bounds.upper(text), (text, n)


def test_applies_to_the_bundled_tokenizer_only_while_its_shape_allows():
    assert length_bounds.applies(TOK)
    bpe = Tokenizer.from_str(TOK.to_str().replace('"type":"BertPreTokenizer"', '"type":"Whitespace"'))
    assert not length_bounds.applies(bpe)


def test_filter_decides_as_tokenizing_would():
    rng = random.Random(0)
    words = PIECES + ["the", "cat", "sat", "on", "a", "mat"] * 6
    texts = ["".join(rng.choice(words) + rng.choice([" ", " ", " ", "", "\n"]) for _ in range(rng.choice([1, 3, 10, 20, 40, 100, 1500])))
             for _ in range(600)]
    f = TokenLengthFilter(str(BERT_TOKENIZER), min_tokens=16, max_tokens=1000)
    got = f.filter_batch([Document(text=t, id=str(i)) for i, t in enumerate(texts)])
    expect = [(False, "too_short") if count(t) < 16 else (False, "too_long") if count(t) > 1000 else True for t in texts]
    assert got == expect
    assert {"too_short", "too_long"} <= {r[1] for r in expect if r is not True} and True in expect
    # the case under test occurred: most documents were decided without tokenizing
    assert sum(f._inside(t) for t in texts) > len(texts) // 4
