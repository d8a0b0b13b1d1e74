"""`python -m training embed` writes a sentence-transformers model that loads offline and gives
the embeddings our own code gives; `python -m training mteb` scores it with mteb."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from neobert.pooling import POOLINGS, pool
from shards.layout import BERT_TOKENIZER
from shards.tokenizer import tokenizer_file
from tests.training.test_hf_export import TEXTS, tiny_run
from training.__main__ import main
from training.embed import encode

VARIANTS = {"mean": [], "max16": ["--pooling", "max", "--normalize", "--max-seq-length", "16"]}

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from mteb.mocks.mock_tasks.classification import MockClassificationTask
    from mteb.mocks.mock_tasks.sts import MockSTSTask
    from sentence_transformers import SentenceTransformer
    from training.mteb_eval import run

    folders, texts, work = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
    for name, folder in folders.items():
        model = SentenceTransformer(folder, trust_remote_code=True, local_files_only=True, device="cpu")
        np.save(f"{work}/{name}.npy", model.encode(texts, batch_size=2, convert_to_numpy=True))
    scores = run(folders["mean"], [MockSTSTask(), MockClassificationTask()], work + "/mteb", batch_size=4,
                 device="cpu")
    json.dump(scores, open(work + "/scores.json", "w"))
""")


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("embed")
    run, _ = tiny_run(tmp)
    folders = {}
    for name, flags in VARIANTS.items():
        folders[name] = str(tmp / name)
        assert main(["embed", str(run), folders[name], *flags]) == 0
    work = tmp / "work"
    work.mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp / "hf_home"),
           "HF_MODULES_CACHE": str(tmp / "hf_modules"), "MTEB_CACHE": str(tmp / "mteb_home"),
           "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(folders), json.dumps(TEXTS), str(work)],
                          cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {"run": run, "folders": folders, "work": work}


def test_folder_is_the_export_plus_sentence_transformers_modules(embedded):
    out = Path(embedded["folders"]["mean"])
    names = {p.name for p in out.iterdir()}
    assert {"modules.json", "sentence_bert_config.json", "1_Pooling", "config.json", "modeling_neobert.py",
            "tokenizer.json", "README.md"} <= names
    assert (out / "tokenizer.json").read_bytes() == BERT_TOKENIZER.read_bytes()
    assert json.loads((out / "config.json").read_text())["auto_map"]["AutoModel"] == "modeling_neobert.NeoBERT"
    modules = [m["type"] for m in json.loads((Path(embedded["folders"]["max16"]) / "modules.json").read_text())]
    assert [m.rsplit(".", 1)[-1] for m in modules] == ["Transformer", "Pooling", "Normalize"]


@pytest.mark.parametrize("name,pooling,normalize,length", [("mean", "mean", False, None), ("max16", "max", True, 16)])
def test_sentence_transformers_gives_our_embeddings(embedded, name, pooling, normalize, length):
    loaded = np.load(embedded["work"] / f"{name}.npy")
    ours = encode(embedded["run"], TEXTS, tokenizer_file(BERT_TOKENIZER), pooling, normalize, length)
    assert loaded.shape == ours.shape == (len(TEXTS), 64)
    np.testing.assert_allclose(loaded, ours, atol=1e-5)
    if normalize:
        np.testing.assert_allclose(np.linalg.norm(loaded, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(ours[0], ours[1])  # the texts are told apart


def test_mteb_scores_the_model_and_files_its_results(embedded):
    scores = json.loads((embedded["work"] / "scores.json").read_text())
    assert set(scores) == {"MockSTSTask", "MockClassificationTask"}
    assert all(-1 <= s <= 1 for s in scores.values())
    files = sorted(p.name for p in (embedded["work"] / "mteb" / "results" / "mean").glob("*/*.json"))
    assert {"MockSTSTask.json", "MockClassificationTask.json"} <= set(files)


@pytest.mark.parametrize("mode", POOLINGS)
def test_pool_is_sentence_transformers_pooling(mode):
    from sentence_transformers.sentence_transformer.modules import Pooling

    torch.manual_seed(0)
    hidden = torch.randn(4, 7, 8)
    mask = torch.tensor([[1] * 7, [1] * 3 + [0] * 4, [1] + [0] * 6, [1] * 5 + [0] * 2])
    theirs = Pooling(8, pooling_mode=mode)({"token_embeddings": hidden, "attention_mask": mask})
    torch.testing.assert_close(pool(hidden, mask, mode), theirs["sentence_embedding"])


def test_embed_and_mteb_refuse_bad_settings_naming_them(embedded, tmp_path, capsys):
    assert main(["embed", str(embedded["run"]), str(tmp_path / "x"), "--max-seq-length", "99999"]) == 1
    assert "--max-seq-length 99999" in capsys.readouterr().err
    assert main(["mteb", embedded["folders"]["mean"], "--tasks", "STSBenchmark,NoSuchTask"]) == 1
    assert "NoSuchTask" in capsys.readouterr().err
    assert main(["mteb", embedded["folders"]["mean"]]) == 1
    assert "--tasks" in capsys.readouterr().err


def test_benchmark_names_its_tasks_and_unknown_ones_are_refused():
    from training.mteb_eval import tasks_named

    tasks = tasks_named(benchmark="MTEB(eng, v2)")
    assert len(tasks) > 10 and "STSBenchmark" in {t.metadata.name for t in tasks}
    with pytest.raises(ValueError, match="NoSuchBenchmark"):
        tasks_named(benchmark="NoSuchBenchmark")
