"""`neobert` demo: builds, reports size and backend, fills a [MASK] with the tokenizer it is given."""

from __future__ import annotations

import pytest

from neobert.__main__ import main
from neobert.checkpoint import save_pretrained
from shards.layout import BERT_TOKENIZER

TOKENIZER = ["--tokenizer", str(BERT_TOKENIZER)]


def test_tiny_demo(capsys):
    main(["--tiny", "--text", "the [MASK] sat on the mat", *TOKENIZER])
    out = capsys.readouterr().out
    assert "parameters: 4,019,578" in out
    assert "attention backend: sdpa on cpu" in out
    assert "[MASK] at token 2:" in out
    assert "hidden states: packed (8, 64), padded (1, 8, 64)" in out


def test_demo_loads_a_checkpoint(tiny_model, tmp_path, capsys):
    save_pretrained(tiny_model, tmp_path)
    main(["--checkpoint", str(tmp_path), "--backend", "sdpa", *TOKENIZER])
    out = capsys.readouterr().out
    assert "2 layers, hidden 64" in out and "[MASK] at token 4:" in out


def test_the_tokenizer_is_the_callers_to_give(capsys):
    with pytest.raises(SystemExit):
        main(["--tiny"])
    assert "--tokenizer" in capsys.readouterr().err
    from training.__main__ import neobert_demo  # the `neobert` command: the bundled tokenizer by default

    neobert_demo(["--tiny"])
    assert "[MASK] at token 4:" in capsys.readouterr().out
