"""`neobert` demo: builds, reports size and backend, fills a [MASK] with the bundled tokenizer."""

from __future__ import annotations

from neobert.__main__ import main
from neobert.checkpoint import save_pretrained


def test_tiny_demo(capsys):
    main(["--tiny", "--text", "the [MASK] sat on the mat"])
    out = capsys.readouterr().out
    assert "parameters: 4,019,578" in out
    assert "attention backend: sdpa on cpu" in out
    assert "[MASK] at token 2:" in out
    assert "hidden states: packed (8, 64), padded (1, 8, 64)" in out


def test_demo_loads_a_checkpoint(tiny_model, tmp_path, capsys):
    save_pretrained(tiny_model, tmp_path)
    main(["--checkpoint", str(tmp_path), "--backend", "sdpa"])
    out = capsys.readouterr().out
    assert "2 layers, hidden 64" in out and "[MASK] at token 4:" in out
