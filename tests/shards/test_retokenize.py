"""Re-tokenization: a WordPiece tokenizer trained here re-tokenizes the sample's filtered documents
into a second shard set that records it, and the API refuses to pair those shards with BERT's."""

import glob
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from streaming import StreamingDataset
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from shards import manifest as manifest_io
from shards.api import open_dataset
from shards.layout import BERT_TOKENIZER, join
from shards.tokenizer import tokenizer_sha256

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
EXTRA = 66_000  # never-seen added tokens: the vocabulary needs uint32 ids


def filtered_documents(root: str) -> dict[str, str]:
    rows = [r for f in sorted(glob.glob(join(root, "filtered", "*.parquet"))) for r in pq.read_table(f).to_pylist()]
    return {r["id"]: r["text"] for r in rows}


@pytest.fixture(scope="module")
def other_tokenizer(sample_output, tmp_path_factory) -> str:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(filtered_documents(sample_output).values(),
                            trainers.WordPieceTrainer(vocab_size=3000, special_tokens=SPECIALS))
    tok.add_tokens([f"<extra_{i:05d}>" for i in range(EXTRA)])
    path = tmp_path_factory.mktemp("wordpiece") / "tokenizer.json"
    tok.save(str(path))
    return str(path)


@pytest.fixture(scope="module")
def retokenized(sample_output, other_tokenizer, tmp_path_factory) -> str:
    new = str(tmp_path_factory.mktemp("retokenized") / "out")
    before = open(join(sample_output, "manifest.json")).read()
    script = Path(__file__).parents[2] / "pipelines" / "refinedweb.py"  # as the issue names it
    proc = subprocess.run([sys.executable, str(script), "tokenize", "--from", sample_output, "--output", new,
                           "--tokenizer", other_tokenizer, "--tasks", "2", "--workers", "2"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"(was bert-base-uncased, in {sample_output})" in proc.stdout
    assert open(join(sample_output, "manifest.json")).read() == before, "FROM is never written to"
    return new


def test_manifest_records_the_new_tokenizer_and_the_source_counts(sample_output, retokenized, other_tokenizer):
    old, new = manifest_io.read(sample_output), manifest_io.read(retokenized)
    tok = new["tokenizer"]
    assert tok["sha256"] == tokenizer_sha256(other_tokenizer) != old["tokenizer"]["sha256"]
    assert tok["vocab_size"] > 65_535 and tok["dtype"] == "uint32"
    assert tok["special_tokens"] == {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
    assert new["retokenized_from"]["root"] == sample_output
    assert new["filters"] == old["filters"] and new["dedup"] == old["dedup"] and new["documents"] == old["documents"]
    assert new["source"] == old["source"]
    docs = lambda m: [b["documents"] for b in (*m["buckets"].values(), m["validation"])]  # noqa: E731
    assert sum(docs(new)) == sum(docs(old))


def test_inspect_names_the_source(retokenized, sample_output, capsys):
    from shards.__main__ import main

    assert main(["inspect", retokenized]) == 0
    assert f"re-tokenized from {sample_output} (tokenizer there: bert-base-uncased)" in capsys.readouterr().out


def test_every_document_is_the_new_tokenizers_encoding(sample_output, retokenized, other_tokenizer):
    texts = filtered_documents(sample_output)
    tok = Tokenizer.from_file(other_tokenizer)
    m = manifest_io.read(retokenized)
    seen = {}
    for part in (*m["buckets"].values(), m["validation"]):
        if part["documents"]:
            ds = StreamingDataset(local=join(retokenized, part["path"]), batch_size=1)
            for s in ds:
                assert s["input_ids"].dtype == np.uint32 and s["id"] not in seen
                seen[s["id"]] = s["input_ids"]
            del ds
    assert set(seen) == set(texts)
    for doc_id, text in texts.items():
        np.testing.assert_array_equal(seen[doc_id], [2, *tok.encode(text, add_special_tokens=False).ids, 3])


def test_the_api_pairs_the_shards_with_their_tokenizer_only(retokenized, other_tokenizer):
    with pytest.raises(ValueError, match=r"tokenized with 'wordpiece\d*'.*bert-base-uncased"):
        open_dataset(retokenized, tokenizer=BERT_TOKENIZER)
    ds = open_dataset(retokenized, tokenizer=other_tokenizer, context_length=256, shuffle=False)
    window = next(iter(ds))
    del ds
    assert window["input_ids"][0] == 2 and window["input_ids"][-1] == 3 and len(window["input_ids"]) <= 256


def test_refuses_to_write_over_its_source(sample_output, other_tokenizer, refinedweb):
    proc = refinedweb("tokenize", "--from", sample_output, "--output", sample_output + "/", "--tokenizer",
                      other_tokenizer, check=False)
    assert proc.returncode == 2 and "must differ from --from" in proc.stderr
    json.loads(open(join(sample_output, "manifest.json")).read())
