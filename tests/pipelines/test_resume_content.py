"""Resume compares content, not strings: the same tokenizer at another path, formatted otherwise or
named on the Hub resumes, a changed one is refused naming both hashes; recorded settings hold no path
of the checkout (another clone resumes); `--from` records its source; old records still resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipelines.config import JobConfig, check_resumable, recorded
from shards.layout import BERT_TOKENIZER, SAMPLE_DIR
from shards.tokenizer import BERT_BASE_UNCASED_COMMIT, content_sha256, pin, tokenizer_file

CHECKOUT = str(Path(__file__).resolve().parents[2])


def copies(tmp_path) -> dict[str, Path]:
    """The bundled tokenizer copied (as is, in a folder), re-formatted (other key order and indent),
    and changed (one vocabulary entry renamed)."""
    data = json.loads(BERT_TOKENIZER.read_text())
    (tmp_path / "a").mkdir()
    shutil.copy(BERT_TOKENIZER, tmp_path / "a" / "tokenizer.json")
    reordered = dict(reversed(list(data.items())))
    (tmp_path / "reformatted.json").write_text(json.dumps(reordered, indent=4))
    vocab = data["model"]["vocab"]
    vocab["zebra-changed"] = vocab.pop("zebra")
    (tmp_path / "changed.json").write_text(json.dumps(data))
    return {"folder": tmp_path / "a", "reformatted": tmp_path / "reformatted.json", "changed": tmp_path / "changed.json"}


def test_tokenizer_is_compared_by_its_normalised_content(tmp_path):
    tok = copies(tmp_path)
    out = str(tmp_path / "out")
    check_resumable(JobConfig(output=out, tokenizer=str(tok["folder"])), "tokenize")
    saved = recorded(JobConfig(output=out), "tokenize")
    assert saved["tokenizer_sha256"] == content_sha256(BERT_TOKENIZER) == content_sha256(tok["reformatted"])
    for same in (str(tok["folder"] / "tokenizer.json"), str(tok["reformatted"]), str(BERT_TOKENIZER)):
        check_resumable(JobConfig(output=out, tokenizer=same), "tokenize")  # resumes
    with pytest.raises(ValueError) as refused:
        check_resumable(JobConfig(output=out, tokenizer=str(tok["changed"])), "tokenize")
    old, new = content_sha256(BERT_TOKENIZER), content_sha256(tok["changed"])
    assert old != new and f"tokenizer_sha256: {old!r} ({tok['folder']}) -> {new!r} ({tok['changed']})" in str(refused.value)


def test_hub_name_resumes_a_local_copy_of_the_same_file(tmp_path, monkeypatch):
    from huggingface_hub import constants

    snapshot = tmp_path / "hub" / "models--bert-base-uncased" / "snapshots" / BERT_BASE_UNCASED_COMMIT
    snapshot.mkdir(parents=True)
    shutil.copy(BERT_TOKENIZER, snapshot / "tokenizer.json")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))  # offline: the cached commit
    assert pin("bert-base-uncased") == f"bert-base-uncased@{BERT_BASE_UNCASED_COMMIT}"  # no Hub call needed
    assert pin(str(BERT_TOKENIZER)) == str(BERT_TOKENIZER)
    assert tokenizer_file("bert-base-uncased") == snapshot / "tokenizer.json"
    out = str(tmp_path / "out")
    check_resumable(JobConfig(output=out), "tokenize")
    check_resumable(JobConfig(output=out, tokenizer=pin("bert-base-uncased")), "tokenize")  # resumes


def test_recorded_settings_hold_no_path_of_the_checkout(tmp_path):
    out = str(tmp_path / "out")
    for stage in ("download", "filter", "tokenize"):
        check_resumable(JobConfig(output=out, input="sample"), stage)
        text = (tmp_path / "out" / "logs" / stage / "settings.json").read_text()
        assert CHECKOUT not in text, text
    assert recorded(JobConfig(output=out), "download")["input"] == "shards/data/refinedweb-sample"
    assert recorded(JobConfig(output=out), "filter")["tokenizer"] == "shards/data/tokenizers/bert-base-uncased/tokenizer.json"


def test_old_records_without_hashes_resume_comparing_what_they_hold(tmp_path):
    out = tmp_path / "out"
    old = {"tokenizer": str(BERT_TOKENIZER), "bucket_edges": [1024, 2048], "val_fraction": 0.001, "shard_size": "64mb",
           "tasks": 2}  # as written before hashes, with this checkout's absolute path
    (out / "logs" / "tokenize").mkdir(parents=True)
    (out / "logs" / "tokenize" / "settings.json").write_text(json.dumps(old))
    (out / "logs" / "download").mkdir(parents=True)
    (out / "logs" / "download" / "settings.json").write_text(json.dumps(
        {"input": str(SAMPLE_DIR), "glob": "**/*.parquet", "limit_files": -1, "tasks": 2}))
    check_resumable(JobConfig(output=str(out)), "tokenize")
    check_resumable(JobConfig(output=str(out), input="sample"), "download")
    tok = copies(tmp_path)
    with pytest.raises(ValueError, match="tokenizer: "):  # no hash recorded: the name is what it has
        check_resumable(JobConfig(output=str(out), tokenizer=str(tok["folder"])), "tokenize")


def test_retokenization_records_its_source_by_content(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    tokenizer = {"name": "t", "sha256": "0", "vocab_size": 5, "dtype": "uint16",
                 "special_tokens": dict(zip(("pad", "unk", "cls", "sep", "mask"), range(5)))}
    manifest = {"format_version": 1, "tokenizer": tokenizer, "buckets": {}, "config": JobConfig(output=str(src)).to_dict(),
                "validation": {"path": "mds/val", "fraction": 0.2, "documents": 0, "tokens": 0, "shards": 0},
                "documents": {"read": 10, "kept": 8, "removed": 2, "bad_files": 0}, "filters": {}, "dedup": {}}
    (src / "manifest.json").write_text(json.dumps(manifest))
    moved = shutil.copytree(src, tmp_path / "moved")  # the same FROM at another path
    out = str(tmp_path / "new")
    check_resumable(JobConfig(output=out, retokenize_from=str(src)), "tokenize")
    saved = recorded(JobConfig(output=out), "tokenize")
    assert saved["source"] == str(src) and len(saved["source_sha256"]) == 64
    check_resumable(JobConfig(output=out, retokenize_from=str(moved)), "tokenize")  # resumes
    manifest["documents"]["kept"] = 7
    (moved / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="source_sha256: "):
        check_resumable(JobConfig(output=out, retokenize_from=str(moved)), "tokenize")
    with pytest.raises(ValueError, match="source_sha256: "):  # its own filtered documents are another source
        check_resumable(JobConfig(output=out), "tokenize")


@pytest.mark.slow
def test_tokenize_resumes_with_the_tokenizer_elsewhere_and_refuses_a_changed_one(sample_output, tmp_path, refinedweb):
    out = shutil.copytree(sample_output, tmp_path / "out", ignore=shutil.ignore_patterns(
        "mds", "tokenize", "merge", "mix", "manifest.json", "mixtures"))
    tok = copies(tmp_path)
    args = ["tokenize", "--output", str(out), "--tasks", "2", "--val-fraction", "0.05"]
    refinedweb(*args, "--tokenizer", str(tok["folder"]))
    resumed = refinedweb(*args)  # the repo-relative default: the same file
    assert "all 2 tasks have already been completed" in resumed.stderr  # resumed, nothing redone
    refused = refinedweb(*args, "--tokenizer", str(tok["changed"]), check=False)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert content_sha256(BERT_TOKENIZER) in refused.stderr and content_sha256(tok["changed"]) in refused.stderr
