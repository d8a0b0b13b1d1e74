"""`python -m training export` writes a folder that stock `transformers` loads offline, with the
project not importable: same logits, same tokens, a working fill-mask pipeline and classifier."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from neobert import NeoBERTConfig, NeoBERTLMHead
from neobert.checkpoint import load_pretrained
from pipelines.tokenizer import load_tokenizer
from shards.layout import BERT_TOKENIZER
from training import checkpoint
from training.__main__ import main
from training.config import Config, DataConfig
from training.hf.export import find_tokenizer

STEP, TOKENS = 10, 123_456
TEXTS = ["Paris is the capital of France.", "Héllo, WORLD!  tokenizers\tsplit words-like this 123.",
         # > 20 tokens: PretrainedConfig's generation default max_length (20) must not replace the model's
         "A longer sentence, well past twenty tokens, which the loaded model accepts only while its config "
         "keeps the max_length of config.json: one two three four five six seven eight nine ten."]


def write_manifest(root: Path) -> dict:
    """A minimal manifest as the pipeline writes it, recording the bundled tokenizer."""
    root.mkdir(parents=True)
    bucket = {"path": "mds/lt1024", "min_tokens": 0, "max_tokens": 1024, "documents": 7, "tokens": 700, "shards": 1}
    manifest = {
        "format_version": 1,
        "tokenizer": load_tokenizer(str(BERT_TOKENIZER)).describe(),
        "source": {"url": "hf://datasets/tiiuae/falcon-refinedweb/data", "files": ["a.parquet"]},
        "buckets": {"lt1024": bucket, "ge1024": {**bucket, "min_tokens": 1024, "max_tokens": None, "documents": 1}},
        "validation": {"path": "mds/val", "fraction": 0.01, "documents": 2, "tokens": 90, "shards": 1},
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def tiny_run(tmp: Path) -> tuple[Path, NeoBERTLMHead]:
    """A tiny trained-looking run folder (checkpoint + metrics.jsonl) over `tmp/data` (a manifest)."""
    data, run = tmp / "data", tmp / "run"
    write_manifest(data)
    torch.manual_seed(0)
    model = NeoBERTLMHead(NeoBERTConfig.tiny()).eval()
    with torch.no_grad():  # move every tensor (norms, bias) off its init
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    cfg = Config(run_dir=str(run), data=DataConfig(root=str(data), context_length=1024, micro_batch_tokens=4096))
    state = checkpoint.training_state(
        step=STEP, tokens=TOKENS, skipped=0, model=model.state_dict(), optimizer={},
        rng=[{"torch": torch.get_rng_state(), "cuda": None}], loader=[{}], config=cfg.to_dict(),
        model_config=model.config.to_dict())
    checkpoint.save(run, STEP, state, keep=1)
    records = [{"kind": "val", "step": 5, "loss": 9.0, "accuracy": 0.01, "masked_tokens": 10},
               {"kind": "train", "step": STEP, "loss": 7.0},
               {"kind": "val", "step": STEP, "loss": 6.5, "accuracy": 0.125, "mlm_perplexity": 665.14,
                "pseudo_perplexity_0-1k": 812.5, "pll_positions": 64, "masked_tokens": 321},
               {"kind": "val", "step": STEP + 5, "loss": 1.0, "masked_tokens": 1}]  # after the checkpoint
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run, model


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path, NeoBERTLMHead]:
    """The tiny run, exported with the CLI."""
    tmp = tmp_path_factory.mktemp("hf_export")
    run, model = tiny_run(tmp)
    out = tmp / "hf"
    assert main(["export", str(run), str(out)]) == 0
    return tmp, out, model


SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path.append(sys.argv[1])  # site-packages only: no .pth files, so no editable install of the project
    try:
        import neobert  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("the project is importable in the subprocess: the test would prove nothing")
    import torch
    from safetensors.torch import save_file
    from transformers import (AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification,
                              AutoTokenizer, pipeline)

    folder, work = sys.argv[2], sys.argv[3]
    batch = torch.load(work + "/batch.pt")
    model = AutoModelForMaskedLM.from_pretrained(folder, trust_remote_code=True).eval()
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        base = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
        hidden = base(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    tok = AutoTokenizer.from_pretrained(folder)
    texts = json.load(open(work + "/texts.json"))
    fill = pipeline("fill-mask", model=folder, trust_remote_code=True)("paris is the [MASK] of france.")
    clf = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True, num_labels=2)
    enc = tok(texts, padding=True, return_tensors="pt")
    out = clf(**enc, labels=torch.arange(len(texts)) % 2)
    save_file({"logits": logits.contiguous(), "hidden": hidden.contiguous()}, work + "/logits.safetensors")
    save_file({k: v.contiguous() for k, v in clf.state_dict().items()}, work + "/clf.safetensors")
    json.dump({"ids": [tok(t)["input_ids"] for t in texts], "model_class": type(model).__name__,
               "base_class": type(base).__name__,
               "clf_class": type(clf).__name__, "clf_logits_shape": list(out.logits.shape),
               "clf_loss": float(out.loss), "fill": fill, "mask_token": tok.mask_token,
               "input_names": list(enc)}, open(work + "/result.json", "w"))
""")


@pytest.fixture(scope="module")
def loaded(exported) -> dict:
    """Run SCRIPT in a fresh interpreter, offline, in a temp dir, with the project not importable."""
    tmp, out, model = exported
    work = tmp / "work"
    work.mkdir()
    ids = [torch.as_tensor(x, dtype=torch.long) for x in load_tokenizer(str(BERT_TOKENIZER)).encode_batch(TEXTS)]
    length = max(len(x) for x in ids)
    input_ids = torch.zeros(len(ids), length, dtype=torch.long)
    mask = torch.zeros(len(ids), length, dtype=torch.long)
    for i, x in enumerate(ids):
        input_ids[i, : len(x)], mask[i, : len(x)] = x, 1
    assert (mask == 0).any(), "the batch must be padded to test the padded path"
    torch.save({"input_ids": input_ids, "attention_mask": mask}, work / "batch.pt")
    (work / "texts.json").write_text(json.dumps(TEXTS))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HOME=str(tmp / "hf_home"),
               HF_MODULES_CACHE=str(tmp / "hf_modules"), TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run([sys.executable, "-S", "-c", SCRIPT, sysconfig.get_paths()["purelib"], str(out), str(work)],
                          cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with torch.no_grad():
        expected = model(input_ids, attention_mask=mask)
    outputs = load_file(work / "logits.safetensors")
    return {**json.loads((work / "result.json").read_text()), "expected": expected.logits,
            "expected_hidden": expected.hidden_states, "logits": outputs["logits"], "hidden": outputs["hidden"],
            "ours": ids,
            "clf": load_file(work / "clf.safetensors")}


def test_folder_holds_code_tokenizer_and_card(exported):
    _, out, _ = exported
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "configuration_neobert.py", "modeling_neobert.py", "tokenizer.json",
            "tokenizer_config.json", "special_tokens_map.json", "README.md"} <= names
    config = json.loads((out / "config.json").read_text())
    assert config["auto_map"]["AutoModelForMaskedLM"] == "modeling_neobert.NeoBERTLMHead"
    assert (out / "tokenizer.json").read_bytes() == BERT_TOKENIZER.read_bytes()
    for name in ("configuration_neobert.py", "modeling_neobert.py"):
        imports = [line for line in (out / name).read_text().splitlines() if line.startswith(("import ", "from "))]
        assert all(line.split()[1].split(".")[0] in ("math", "torch", "transformers", "")
                   for line in imports), imports


def test_same_weights_still_load_with_our_loader(exported):
    _, out, model = exported
    reloaded = load_pretrained(out)
    for name, tensor in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], tensor), name


def test_masked_lm_logits_match_ours_on_a_padded_batch(loaded):
    assert loaded["model_class"] == "NeoBERTLMHead"
    assert loaded["logits"].shape == loaded["expected"].shape
    assert (loaded["logits"] - loaded["expected"]).abs().max() < 1e-5


def test_headless_auto_model_gives_our_hidden_states(loaded):
    assert loaded["base_class"] == "NeoBERT"
    assert (loaded["hidden"] - loaded["expected_hidden"]).abs().max() < 1e-5


def test_auto_tokenizer_tokenizes_like_ours(loaded):
    assert loaded["ids"] == [x.tolist() for x in loaded["ours"]]
    assert loaded["input_names"] == ["input_ids", "attention_mask"]
    assert loaded["mask_token"] == "[MASK]"


def test_fill_mask_pipeline_runs(loaded):
    assert len(loaded["fill"]) == 5 and all("token_str" in r and "score" in r for r in loaded["fill"])


def test_sequence_classification_loads_the_encoder(loaded, exported):
    _, _, model = exported
    assert loaded["clf_class"] == "NeoBERTForSequenceClassification"
    assert loaded["clf_logits_shape"] == [len(TEXTS), 2] and loaded["clf_loss"] > 0
    encoder = {k: v for k, v in model.state_dict().items() if k.startswith("model.")}
    assert encoder and all(torch.equal(loaded["clf"][k], v) for k, v in encoder.items())
    assert loaded["clf"]["classifier.weight"].shape == (2, model.config.hidden_size)
    assert loaded["clf"]["dense.weight"].shape == (model.config.hidden_size,) * 2


def test_card_carries_steps_tokens_and_the_checkpoints_validation(exported):
    _, out, _ = exported
    text = (out / "README.md").read_text()
    _, header, body = text.split("---\n", 2)
    meta = yaml.safe_load(header)
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "fill-mask"
    assert meta["datasets"] == ["tiiuae/falcon-refinedweb"] and meta["license"]
    assert f"steps: {STEP:,}" in body and f"tokens seen: {TOKENS:,}" in body
    assert "context length: 1,024" in body and "hf://datasets/tiiuae/falcon-refinedweb/data" in body
    assert "| loss | 6.5000 |" in body and "step 10" in body  # the last val record at or before the checkpoint
    assert "| mlm_perplexity | 665.1400 |" in body and "| pseudo_perplexity_0-1k | 812.5000 |" in body
    assert "pseudo-perplexity over 64 positions" in body and "| pll_positions" not in body
    assert "| lt1024 | 0 – 1,023 | 7 | 700 |" in body and "| ge1024 | ≥ 1,024 | 1 | 700 |" in body
    assert 'pipeline("fill-mask", model=".", trust_remote_code=True)("Paris is the [MASK] of France.")' in body


def test_a_tokenizer_with_another_sha256_is_refused(exported, tmp_path):
    tmp, _, _ = exported
    other = tmp_path / "tokenizer.json"
    other.write_text(BERT_TOKENIZER.read_text().replace("[MASK]", "[MASQ]", 1))
    assert main(["export", str(tmp / "run"), str(tmp_path / "out"), "--tokenizer", str(other)]) == 1
    assert not (tmp_path / "out").exists()


def test_tokenizer_is_found_by_sha256_when_the_recorded_path_moved(tmp_path):
    record = {**load_tokenizer(str(BERT_TOKENIZER)).describe(), "path": str(tmp_path / "gone" / "tokenizer.json"),
              "name": str(tmp_path / "gone.json")}
    assert not Path(record["path"]).exists()
    assert find_tokenizer(record) == BERT_TOKENIZER
    with pytest.raises(ValueError, match="--tokenizer"):
        find_tokenizer({**record, "sha256": "0" * 64})


@pytest.mark.parametrize("num_labels", [1, 3])
def test_classification_loss_is_regression_for_one_label_else_cross_entropy(num_labels):
    from training.hf.configuration_neobert import NeoBERTConfig as HFConfig
    from training.hf.modeling_neobert import NeoBERTForSequenceClassification

    torch.manual_seed(0)
    config = HFConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=96, num_labels=num_labels)
    clf = NeoBERTForSequenceClassification(config).eval()
    ids = torch.randint(1, 50, (4, 6))
    labels = torch.randn(4) if num_labels == 1 else torch.randint(0, num_labels, (4,))
    out = clf(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels)
    assert out.logits.shape == (4, num_labels)
    expected = (torch.nn.functional.mse_loss(out.logits.squeeze(-1), labels) if num_labels == 1
                else torch.nn.functional.cross_entropy(out.logits, labels))
    assert torch.allclose(out.loss, expected)
    assert config.problem_type == ("regression" if num_labels == 1 else "single_label_classification")
