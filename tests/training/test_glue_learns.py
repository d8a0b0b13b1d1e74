"""`python -m training glue` end to end on tasks made here: a tiny randomly initialised NeoBERT
learns a two-class task (does the sentence contain "banana"?) from a trainer checkpoint and CSV files,
and a regression task (how many "good"s?) from an exported Hugging Face folder and JSON files; the
results JSON and table are written, and the best fine-tune loads with stock transformers."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest
import torch

from neobert import NeoBERTConfig, NeoBERTLMHead
from pipelines.tokenizer import load_tokenizer
from shards.layout import BERT_TOKENIZER
from training import checkpoint
from training.__main__ import main
from training.config import Config, DataConfig

WORDS = "the a red blue big small dog cat runs sits on mat tree house green old".split()


def sentence(rng: random.Random, n: int, word: str | None = None) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    if word:
        words[rng.randrange(n)] = word
    return " ".join(words)


def contains_banana(rng: random.Random, n: int) -> pd.DataFrame:
    labels = [i % 2 for i in range(n)]
    return pd.DataFrame({"sentence": [sentence(rng, rng.randint(4, 8), "banana" if y else None) for y in labels],
                         "label": labels, "idx": range(n)})


def count_good(rng: random.Random, n: int) -> pd.DataFrame:
    rows = []
    for _ in range(n):
        a, b = rng.randint(0, 3), rng.randint(0, 3)  # "good"s in each 6-word sentence
        s1, s2 = ([rng.choice(WORDS) for _ in range(6)] for _ in range(2))
        for words, k in ((s1, a), (s2, b)):
            for i in rng.sample(range(6), k):
                words[i] = "good"
        rows.append({"sentence1": " ".join(s1), "sentence2": " ".join(s2), "label": float(a + b) * 5 / 6})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny trainer run (checkpoint + the manifest its tokenizer is recorded in) and its export."""
    tmp = tmp_path_factory.mktemp("glue")
    data_root, run = tmp / "data", tmp / "run"
    data_root.mkdir()
    bucket = {"path": "mds/lt1024", "min_tokens": 0, "max_tokens": 1024, "documents": 1, "tokens": 10, "shards": 1}
    (data_root / "manifest.json").write_text(json.dumps({
        "format_version": 1, "tokenizer": load_tokenizer(str(BERT_TOKENIZER)).describe(),
        "source": {"url": "sample", "files": []}, "buckets": {"lt1024": bucket},
        "validation": {"path": "mds/val", "fraction": 0.01, "documents": 1, "tokens": 10, "shards": 1}}))
    torch.manual_seed(0)
    model = NeoBERTLMHead(NeoBERTConfig.tiny(max_length=512))
    cfg = Config(run_dir=str(run), data=DataConfig(root=str(data_root), context_length=128, micro_batch_tokens=1024))
    state = checkpoint.training_state(step=1, tokens=1, skipped=0, model=model.state_dict(), optimizer={},
                                      rng=[{"torch": torch.get_rng_state(), "cuda": None}], loader=[{}],
                                      config=cfg.to_dict(), model_config=model.config.to_dict())
    checkpoint.save(run, 1, state, keep=1)
    assert main(["export", str(run), str(tmp / "hf")]) == 0
    return run, tmp / "hf"


@pytest.fixture
def one_thread():
    """One intra-op thread: on a loaded shared CPU this tiny model trains ~3x faster than with several."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


FAST = ["epochs=4", "eval_every=1000", "early_stopping=0", "max_length=32", "warmup=0.1", "point.lr=3e-3",
        "point.batch_size=32"]  # 8 steps per epoch: evaluated after each epoch


def glue(*args: str, settings: list[str]) -> int:
    return main(["glue", *args, *[a for s in [*FAST, *settings] for a in ("--set", s)]])


def test_learns_a_two_class_task_from_a_trainer_run_and_csv_files(pretrained, tmp_path, one_thread):
    run, _ = pretrained
    rng = random.Random(0)
    contains_banana(rng, 256).to_csv(tmp_path / "train.csv", index=False)
    contains_banana(rng, 128).to_csv(tmp_path / "dev.csv", index=False)
    out = tmp_path / "glue"
    assert glue(str(run), "--task", "sst2", "--train-file", str(tmp_path / "train.csv"),
                "--validation-file", str(tmp_path / "dev.csv"), settings=[f"run_dir={out}", "layout=packed"]) == 0
    results = json.loads((out / "results.json").read_text())["sst2"]
    assert results["examples"] == {"train": 256, "validation": 128}
    assert results["metrics"]["accuracy"] > 0.9  # chance: 0.5 (balanced)
    assert results["point"] == {"batch_size": 32, "lr": 3e-3, "weight_decay": 0.01} and len(results["grid"]) == 1
    assert results["checkpoint"] == str(run) == results["init_from"]
    assert "| sst2 | accuracy " in (out / "results.md").read_text()
    assert (out / "sst2" / "best" / "model.safetensors").is_file() and (out / "sst2" / "config.yaml").is_file()


def test_learns_a_regression_task_from_an_export_over_a_grid(pretrained, tmp_path, one_thread):
    _, hf = pretrained
    rng = random.Random(1)
    count_good(rng, 256).to_json(tmp_path / "train.jsonl", orient="records", lines=True)
    count_good(rng, 128).to_json(tmp_path / "dev.jsonl", orient="records", lines=True)
    out = tmp_path / "glue"
    assert glue(str(hf), "--task", "stsb", "--train-file", str(tmp_path / "train.jsonl"),
                "--validation-file", str(tmp_path / "dev.jsonl"), "--grid",
                settings=[f"run_dir={out}", "layout=padded", "grid.batch_size=[32]", "grid.lr=[1e-6, 3e-3]",
                          "grid.weight_decay=[0.01]"]) == 0
    results = json.loads((out / "results.json").read_text())["stsb"]
    assert [g["point"]["lr"] for g in results["grid"]] == [1e-6, 3e-3]
    assert results["point"]["lr"] == 3e-3 and results["score"] == max(g["score"] for g in results["grid"])
    assert results["metrics"]["pearson"] > 0.5 and results["metrics"]["spearman"] > 0.5
    table = (out / "results.md").read_text()
    assert "| stsb | pearson " in table and "spearman" in table

    # the best fine-tune is a Hugging Face folder: stock transformers gives our logits
    from transformers import AutoModelForSequenceClassification

    from training.glue import data, model, tasks

    config, tensors, _ = model.load_weights(out / "stsb" / "best")
    ours = model.build(config, tensors, tasks.get("stsb"), 0.1, None, "best").eval()
    theirs = AutoModelForSequenceClassification.from_pretrained(out / "stsb" / "best", trust_remote_code=True).eval()
    ex = data.Examples([torch.tensor([101, 2204, 2204, 102, 1996, 102]).numpy(), torch.tensor([101, 102]).numpy()],
                       torch.zeros(2).numpy())
    batch = next(data.batches(ex, 2, "padded", 0))
    with torch.no_grad():
        expected = ours(batch["input_ids"], attention_mask=batch["attention_mask"])
        got = theirs(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert got.shape == (2, 1) and (got - expected).abs().max() < 1e-5
