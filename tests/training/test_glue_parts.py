"""GLUE's parts without training: metrics against hand-computed values, the task table and run
order, configs and grid points, truncation, data loading (the Hub call and local files), the head."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from neobert import NeoBERTConfig, NeoBERTForSequenceClassification
from training.glue import config as glue_config
from training.glue import data, metrics, model, tasks
from training.glue.grid import Grid, Point, parse_point, select
from training.glue.run import start_of


# -- metrics ---------------------------------------------------------------------------------------

PRED, LABEL = np.array([1, 1, 0, 0, 1]), np.array([1, 0, 0, 1, 1])  # tp 2, tn 1, fp 1, fn 1


def test_classification_metrics_by_hand():
    assert metrics.accuracy(PRED, LABEL) == pytest.approx(3 / 5)
    assert metrics.f1(PRED, LABEL) == pytest.approx(2 * 2 / (3 + 3))
    assert metrics.mcc(PRED, LABEL) == pytest.approx((2 * 1 - 1 * 1) / math.sqrt(3 * 3 * 2 * 2))
    assert metrics.mcc(LABEL, LABEL) == pytest.approx(1.0) and metrics.mcc(1 - LABEL, LABEL) == pytest.approx(-1.0)


def test_correlations_by_hand():
    x, y = np.array([1, 2, 3, 4]), np.array([2, 4, 5, 9])  # deviations (-1.5,-.5,.5,1.5), (-3,-1,0,4)
    assert metrics.pearson(x, y) == pytest.approx(11 / math.sqrt(5 * 26))
    assert metrics.spearman(x, y) == pytest.approx(1.0)  # monotone
    # ties get their mean rank: x ranks (1, 2.5, 2.5, 4), y ranks (1, 3, 2, 4)
    assert metrics.ranks(np.array([1, 2, 2, 3])).tolist() == [1, 2.5, 2.5, 4]
    assert metrics.spearman(np.array([1, 2, 2, 3]), np.array([1, 3, 2, 4])) == pytest.approx(4.5 / math.sqrt(4.5 * 5))


def test_degenerate_inputs_score_zero_not_nan():
    constant = np.zeros(5, dtype=int)
    assert metrics.mcc(constant, LABEL) == 0.0
    assert metrics.f1(constant, constant) == 0.0
    assert metrics.pearson(np.ones(4), np.arange(4)) == 0.0


def test_score_is_the_mean_of_the_tasks_metrics():
    out = metrics.evaluate(tasks.get("mrpc").metrics, PRED, LABEL)
    assert set(out) == {"f1", "accuracy", "score"}
    assert out["score"] == pytest.approx((2 / 3 + 3 / 5) / 2)


def test_each_task_has_its_official_metric():
    assert tasks.get("cola").metrics == ("mcc",)
    assert tasks.get("stsb").metrics == ("pearson", "spearman") and tasks.get("stsb").regression
    assert tasks.get("mrpc").metrics == tasks.get("qqp").metrics == ("f1", "accuracy")
    assert all(tasks.get(t).metrics == ("accuracy",) for t in ("sst2", "mnli", "qnli", "rte", "wnli", "snli"))
    assert tasks.get("mnli").num_labels == 3 and tasks.get("mnli").validation == "validation_matched"
    with pytest.raises(ValueError, match="unknown task 'glu'"):
        tasks.get("glu")


# -- configs, grid, run order ------------------------------------------------------------------------

def test_every_task_yaml_loads_with_the_published_protocol():
    for name in tasks.TASKS:
        cfg = glue_config.load(name)
        assert cfg.task == name
        assert (cfg.seed, cfg.epochs, cfg.eval_every, cfg.early_stopping) == (0, 10, 1000, 15)
        assert (cfg.warmup, cfg.decay_end, cfg.classifier_dropout) == (0.06, 0.9, 0.1)
        assert len(cfg.grid.points()) == 60
    starts = {name: glue_config.load(name).init_from for name in tasks.TASKS}
    assert (starts["mnli"], starts["qnli"], starts["wnli"]) == ("snli", "mnli", "mnli")
    assert all(starts[t] is None for t in ("cola", "sst2", "mrpc", "stsb", "qqp", "rte", "snli"))


def test_set_overrides_a_task_yaml():
    cfg = glue_config.load("cola", ["point.lr=1e-5", "epochs=3", "grid.batch_size=[8, 16]", "init_from=null"])
    assert (cfg.point.lr, cfg.epochs, cfg.grid.batch_size) == (1e-5, 3, (8, 16))
    with pytest.raises(ValueError, match="unknown key"):
        glue_config.load("cola", ["epoch=3"])
    with pytest.raises(ValueError, match="layout"):
        glue_config.load("cola", ["layout=ragged"])


def test_grid_single_point_parsing():
    default = Point(32, 2e-5, 0.01)
    assert parse_point("bs=16,lr=2e-5,wd=0.01", default) == Point(16, 2e-5, 0.01)
    assert parse_point("lr=5e-6", default) == Point(32, 5e-6, 0.01)  # the rest from the YAML's point
    for bad in ("bs=16;lr=2e-5", "batch=16", "lr=fast", "bs=0"):
        with pytest.raises(ValueError):
            parse_point(bad, default)
    assert select(None, Grid(), default) == [default]
    assert select("bs=2", Grid(), default) == [Point(2, 2e-5, 0.01)]
    everything = select("all", Grid(), default)
    assert len(everything) == 60 == len(set(everything))
    assert {p.batch_size for p in everything} == {2, 4, 8, 16, 32}
    assert {p.lr for p in everything} == {5e-6, 6e-6, 8e-6, 1e-5, 2e-5, 3e-5}
    assert {p.weight_decay for p in everything} == {0.01, 1e-5}


def test_all_runs_each_task_after_the_one_it_starts_from():
    starts = {name: glue_config.load(name).init_from for name in tasks.TASKS}
    order = tasks.run_order(tasks.GLUE, starts)
    assert sorted(order) == sorted([*tasks.GLUE, "snli"])  # snli added: mnli starts from it
    assert order.index("snli") < order.index("mnli") < order.index("qnli")
    assert order.index("mnli") < order.index("wnli")
    assert tasks.run_order(["qnli"], starts) == ["snli", "mnli", "qnli"]
    with pytest.raises(ValueError, match="cycle"):
        tasks.run_order(["mnli"], {"mnli": "snli", "snli": "mnli"})


def test_a_task_started_from_another_needs_that_fine_tune_first(tmp_path):
    cfg = glue_config.load("mnli", [f"run_dir={tmp_path}"])
    with pytest.raises(FileNotFoundError, match="run --task snli first"):
        start_of(cfg, "CKPT")
    (tmp_path / "snli" / "best").mkdir(parents=True)
    assert start_of(cfg, "CKPT") == str(tmp_path / "snli" / "best")
    assert start_of(glue_config.load("cola"), "CKPT") == "CKPT"


# -- data ----------------------------------------------------------------------------------------------

def test_longest_first_truncation_matches_cutting_one_token_at_a_time():
    def slow(la, lb, budget):
        while la + lb > budget:
            if la > lb:
                la -= 1
            else:
                lb -= 1
        return la, lb

    cases = [(la, lb, budget) for la in range(0, 12) for lb in range(0, 12) for budget in range(0, 14)]
    assert all(data.fit(*c) == slow(*c) for c in cases)


def test_hub_source_is_nyu_mll_glue_and_the_call_is_made(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    src = data.source(tasks.get("cola"))
    assert (src.path, src.name, src.data_files, src.validation) == ("nyu-mll/glue", "cola", None, "validation")
    assert data.source(tasks.get("mnli")).validation == "validation_matched"
    assert data.source(tasks.get("snli")).path == "stanfordnlp/snli"
    with pytest.raises(ValueError, match="nyu-mll/glue.*--train-file/--validation-file"):
        data.load_splits(src)  # offline: datasets.load_dataset itself says it cannot reach the Hub


@pytest.fixture
def encoder() -> data.Encoder:
    from tokenizers import Tokenizer

    from shards.layout import BERT_TOKENIZER

    return model._encoder(Tokenizer.from_file(str(BERT_TOKENIZER)), 101, 102, 0)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_local_files_go_through_the_same_load_dataset_call(tmp_path, encoder, suffix):
    import pandas as pd

    rows = pd.DataFrame({"sentence1": ["a cat sat", "dogs run fast", "x"], "sentence2": ["on a mat", "far", "y"],
                         "label": [1, 0, -1], "idx": [0, 1, 2]})
    path = tmp_path / f"train{suffix}"
    {".csv": lambda: rows.to_csv(path, index=False), ".jsonl": lambda: rows.to_json(path, orient="records", lines=True),
     ".parquet": lambda: rows.to_parquet(path)}[suffix]()
    src = data.source(tasks.get("rte"), str(path), str(path))
    assert src.data_files == {"train": str(path), "validation": str(path)}
    train, val = data.load_splits(src)
    ex = data.examples(train, tasks.get("rte"), encoder, 16, "train")
    assert ex.labels.tolist() == [1, 0]  # the -1 row (no gold label) is dropped
    assert ex.ids[0].tolist() == [101, *encoder.tokenizer.encode("a cat sat", add_special_tokens=False).ids, 102,
                                  *encoder.tokenizer.encode("on a mat", add_special_tokens=False).ids, 102]
    assert len(data.examples(val, tasks.get("rte"), encoder, 8, "validation").ids[0]) == 8  # 9 tokens, cut to 8
    with pytest.raises(ValueError, match=r"needs columns \['question1', 'question2', 'label'\]"):
        data.examples(train, tasks.get("qqp"), encoder, 8, str(path))


def test_local_file_mistakes_are_named(tmp_path, encoder):
    with pytest.raises(ValueError, match="go together"):
        data.source(tasks.get("rte"), "train.csv")
    with pytest.raises(ValueError, match="same format"):
        data.source(tasks.get("rte"), "train.csv", "val.json")
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps({"sentence": "s", "label": v}) + "\n" for v in (0, 5)))
    train, _ = data.load_splits(data.source(tasks.get("sst2"), str(path), str(path)))
    with pytest.raises(ValueError, match=r"labels \[5\] are outside 0..1"):
        data.examples(train, tasks.get("sst2"), encoder, 16, str(path))


def test_packed_and_padded_batches_hold_the_same_examples():
    ex = data.Examples([np.array([101, 5, 6, 102]), np.array([101, 7, 102]), np.array([101, 102])],
                       np.array([1, 0, 1]))
    packed = list(data.batches(ex, 2, "packed", 0, np.array([2, 0, 1])))
    padded = list(data.batches(ex, 2, "padded", 0, np.array([2, 0, 1])))
    assert [b["labels"].tolist() for b in packed] == [b["labels"].tolist() for b in padded] == [[1, 1], [0]]
    assert packed[0]["input_ids"].tolist() == [101, 102, 101, 5, 6, 102]
    assert packed[0]["cu_seqlens"].tolist() == [0, 2, 6] and packed[0]["position_ids"].tolist() == [0, 1, 0, 1, 2, 3]
    assert padded[0]["input_ids"].tolist() == [[101, 102, 0, 0], [101, 5, 6, 102]]
    assert padded[0]["attention_mask"].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]


# -- the head ------------------------------------------------------------------------------------------

def test_head_is_the_published_one_on_packed_and_padded_batches():
    from training.hf.configuration_neobert import NeoBERTConfig as HFConfig
    from training.hf.modeling_neobert import NeoBERTForSequenceClassification as HFClassifier

    torch.manual_seed(0)
    ours = NeoBERTForSequenceClassification(NeoBERTConfig.tiny(), num_labels=3).eval()
    assert ours.classifier.weight.std().item() == pytest.approx(0.02, rel=0.2)  # N(0, classifier_init_range)
    hf = HFClassifier(HFConfig(**{k: v for k, v in ours.config.to_dict().items() if k not in ("auto_map",)},
                               num_labels=3)).eval()
    hf.load_state_dict(ours.state_dict())  # same tensor names, strictly
    g = torch.Generator().manual_seed(1)
    docs = [torch.cat([torch.tensor([101]), torch.randint(1000, 30000, (n,), generator=g), torch.tensor([102])])
            for n in (3, 9, 5)]
    ex = data.Examples([d.numpy() for d in docs], np.zeros(3, dtype=np.int64))
    packed, padded = next(data.batches(ex, 3, "packed", 0)), next(data.batches(ex, 3, "padded", 0))
    with torch.no_grad():
        a = ours(packed["input_ids"], packed["cu_seqlens"], packed["max_seqlen"], packed["position_ids"])
        b = ours(padded["input_ids"], attention_mask=padded["attention_mask"])
        c = hf(input_ids=padded["input_ids"], attention_mask=padded["attention_mask"]).logits
    assert a.shape == (3, 3)
    assert (a - b).abs().max() < 1e-5 and (b - c).abs().max() < 1e-5


def test_a_fine_tune_carries_its_head_over_when_the_labels_fit(tmp_path):
    torch.manual_seed(0)
    snli = NeoBERTForSequenceClassification(NeoBERTConfig.tiny(), num_labels=3)
    model.save(snli, tmp_path / "snli", tasks.get("snli"), 0.1)
    config, tensors, root = model.load_weights(tmp_path / "snli")
    assert root is None and config.hidden_size == 64
    mnli = model.build(config, tensors, tasks.get("mnli"), 0.1, None, "snli")
    qnli = model.build(config, tensors, tasks.get("qnli"), 0.1, None, "snli")
    for name, t in snli.state_dict().items():
        assert torch.equal(mnli.state_dict()[name], t), name
        if not name.startswith("classifier."):
            assert torch.equal(qnli.state_dict()[name], t), name
    assert qnli.classifier.weight.shape == (2, 64)
    saved = json.loads((tmp_path / "snli" / "config.json").read_text())
    assert saved["num_labels"] == 3 and saved["auto_map"]["AutoModelForSequenceClassification"]
    assert (tmp_path / "snli" / "modeling_neobert.py").is_file()


# -- results and the command line ----------------------------------------------------------------------

def test_results_of_tasks_run_one_at_a_time_add_up(tmp_path):
    from training.glue import results
    from training.glue.finetune import Outcome

    for name, metric in (("cola", {"mcc": 0.25}), ("stsb", {"pearson": 0.5, "spearman": 0.7})):
        outcome = Outcome(Point(16, 2e-5, 0.01), {**metric, "score": float(np.mean(list(metric.values())))}, 7, 9,
                          False, {})
        results.write(tmp_path, name, results.task_entry(name, [outcome], "CKPT", "CKPT", "files", {"train": 1}))
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved) == {"cola", "stsb"} and saved["stsb"]["score"] == pytest.approx(0.6)
    table = (tmp_path / "results.md").read_text().splitlines()
    assert table[2] == "| cola | mcc 25.00 | 25.00 | 16 | 2e-05 | 0.01 | 7 | 1 |"
    assert table[3].startswith("| stsb | pearson 50.00, spearman 70.00 | 60.00 |")


def test_cli_says_what_to_run_first(tmp_path, capsys):
    import shutil

    from neobert import NeoBERTLMHead
    from neobert.checkpoint import save_pretrained
    from shards.layout import BERT_TOKENIZER
    from training.__main__ import main

    save_pretrained(NeoBERTLMHead(NeoBERTConfig.tiny()), tmp_path / "hf")
    shutil.copyfile(BERT_TOKENIZER, tmp_path / "hf" / "tokenizer.json")
    assert main(["glue", str(tmp_path / "hf"), "--task", "mnli", "--set", f"run_dir={tmp_path / 'glue'}"]) == 1
    assert "run --task snli first" in capsys.readouterr().err
    assert main(["glue", str(tmp_path / "hf"), "--task", "all", "--train-file", "t.csv"]) == 1
    assert "not all" in capsys.readouterr().err
    assert main(["glue", str(tmp_path / "hf"), "--task", "cola", "--set", "max_length=8192"]) == 1
    assert "--set max_length=4096" in capsys.readouterr().err


def test_plan_is_the_published_schedule():
    from training.glue.finetune import plan
    from training.schedule import lr_at

    cfg = glue_config.load("cola")
    p = plan(16_000, cfg, Point(16, 1e-5, 0.01))  # 1,000 steps per epoch
    assert (p.steps, p.eval_every) == (10_000, 1000)
    assert (p.schedule.kind, p.schedule.warmup_steps, p.schedule.decay_end) == ("linear", 600, 9000)
    lr = [lr_at(s, 1e-5, p.schedule) for s in (0, 300, 600, 4800, 9000, 10_000)]
    assert lr == pytest.approx([0, 5e-6, 1e-5, 5.5e-6, 1e-6, 1e-6])
    assert plan(100, cfg, Point(32, 1e-5, 0.01)).eval_every == 4  # small sets: at least once an epoch
