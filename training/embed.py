"""`python -m training embed CKPT OUT`: a sentence-transformers model of a training checkpoint.

OUT is the Hugging Face export (`training.hf.export`: config, weights, modeling code, tokenizer,
card) plus sentence-transformers' modules (Transformer → Pooling [→ Normalize]), written by
sentence-transformers itself, so `SentenceTransformer(OUT, trust_remote_code=True)` loads it
offline (the architecture's code is in the folder, and sentence-transformers never lets a saved
config turn `trust_remote_code` on). `encode` is the same embedding computed by our own model
code, which the test compares with the loaded model. This is the pretrained encoder: the paper's
contrastive fine-tuning, which MTEB scores assume, is the next step and is not done here.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from neobert import NeoBERTConfig, NeoBERTLMHead
from neobert.pooling import POOLINGS, pool
from training import checkpoint

def install_hint(package: str) -> str:
    return f"{package} is not installed: pip install '.[eval]' (or uv sync --extra eval)"


def _sentence_transformers():
    try:
        import sentence_transformers
    except ImportError:
        raise ImportError(install_hint("sentence-transformers")) from None
    return sentence_transformers


def write(spec: str | Path, out_dir: str | Path, pooling: str = "mean", normalize: bool = False,
          max_seq_length: int | None = None, dtype: torch.dtype | None = None,
          tokenizer: str | Path | None = None) -> tuple[Path, dict]:
    """Write OUT; returns it and the checkpoint's counters (`step`, `tokens`)."""
    from training.hf.export import export

    if pooling not in POOLINGS:
        raise ValueError(f"--pooling must be one of {POOLINGS}, got {pooling!r}")
    st = _sentence_transformers()
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling
    from sentence_transformers.base.modules import Transformer

    out = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="neobert-embed-") as tmp:
        hf, counts = export(spec, Path(tmp) / "hf", dtype, tokenizer=tokenizer)
        limit = json.loads((hf / "config.json").read_text())["max_length"]
        length = max_seq_length or limit
        if length > limit:
            raise ValueError(f"--max-seq-length {length} exceeds the model's max_length {limit}")
        remote = {"trust_remote_code": True}
        encoder = Transformer(str(hf), model_kwargs=dict(remote), config_kwargs=dict(remote),
                              processor_kwargs={**remote, "model_max_length": length}, max_seq_length=length)
        modules = [encoder, Pooling(encoder.get_embedding_dimension(), pooling_mode=pooling)]
        if normalize:
            modules.append(Normalize())
        model = st.SentenceTransformer(modules=modules, device="cpu", similarity_fn_name="cosine")
        if out.exists():
            shutil.rmtree(out)
        model.save(str(out), create_model_card=False)
        shutil.copyfile(hf / "README.md", out / "README.md")  # our card: data, steps, validation
        shutil.copyfile(hf / "tokenizer.json", out / "tokenizer.json")  # the manifest's exact bytes
    return out, counts


@torch.no_grad()
def encode(spec: str | Path, texts: list[str], tokenizer: str | Path, pooling: str = "mean",
           normalize: bool = False, max_seq_length: int | None = None, batch_size: int = 32) -> np.ndarray:
    """Embeddings of `texts` (N, hidden) by `neobert`'s own encoder on padded rows, float32."""
    from tokenizers import Tokenizer

    state = checkpoint.load(checkpoint.resolve(spec))
    model = NeoBERTLMHead(NeoBERTConfig.from_dict(state["model_config"]))
    model.load_state_dict(state["model"])
    encoder = model.model.eval()
    tok = Tokenizer.from_file(str(tokenizer))
    tok.enable_truncation(max_seq_length or model.config.max_length)
    tok.enable_padding(pad_id=model.config.pad_token_id)
    out = []
    for i in range(0, len(texts), batch_size):
        rows = tok.encode_batch(texts[i:i + batch_size])
        ids = torch.tensor([r.ids for r in rows])
        mask = torch.tensor([r.attention_mask for r in rows])
        out.append(pool(encoder(ids, attention_mask=mask), mask, pooling, normalize).float())
    return torch.cat(out).numpy()
