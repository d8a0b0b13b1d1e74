"""Each converter's output, read back the way its consumer reads it, holds every token of every document."""

import json

import numpy as np
import pytest
from streaming import StreamingDataset
from tokenizers import Tokenizer

from shards import manifest as manifest_io
from shards.__main__ import main
from shards.layout import BERT_TOKENIZER, join

SEP = 102


@pytest.fixture(scope="module")
def stored(sample_output) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Split → [(id, input_ids)] in bucket, then index order, read with a stock StreamingDataset."""
    m = manifest_io.read(sample_output)
    out = {}
    for split, paths in (("train", [b["path"] for b in m["buckets"].values() if b["documents"]]),
                         ("val", [m["validation"]["path"]])):
        out[split] = []
        for path in paths:
            ds = StreamingDataset(local=join(sample_output, path), batch_size=1)
            out[split] += [(ds[i]["id"], ds[i]["input_ids"]) for i in range(len(ds))]
            del ds
    assert out["val"] and len({len(ids) for _, ids in out["train"]}) > 1
    return out


@pytest.fixture(scope="module")
def converted(sample_output, tmp_path_factory):
    def run(fmt, *extra):
        dest = str(tmp_path_factory.mktemp(fmt.replace("-", "_")) / "dest")
        assert main(["convert", sample_output, "--to", fmt, "--output", dest, *extra]) == 0
        record = json.loads(open(join(dest, "conversion.json")).read())
        assert record["format"] == fmt and record["source"]["root"] == sample_output
        assert record["source"]["tokenizer"]["sha256"] == manifest_io.read(sample_output)["tokenizer"]["sha256"]
        return dest, record

    return run


def read_mds(folder: str) -> list[dict]:
    ds = StreamingDataset(local=folder, batch_size=1)
    samples = [ds[i] for i in range(len(ds))]
    del ds
    return samples


def test_llm_foundry_chunks_reassemble_the_sep_joined_stream(converted, stored):
    dest, record = converted("llm-foundry", "--chunk-length", "100")
    for split, docs in stored.items():
        samples = read_mds(join(dest, split))
        assert all(set(s) == {"tokens"} and s["tokens"].dtype == np.int32 for s in samples)
        lengths = [len(s["tokens"]) for s in samples]
        assert set(lengths[:-1]) == {100} and 0 < lengths[-1] <= 100
        stream = np.concatenate([s["tokens"] for s in samples])
        expected = np.concatenate([ids[1:] for _, ids in docs])  # each document's content, then [SEP]
        np.testing.assert_array_equal(stream, expected)
        # cutting the stream at [SEP] gives back every document in order
        cuts = np.flatnonzero(stream == SEP)
        assert len(cuts) == len(docs)
        for (_, ids), piece in zip(docs, np.split(stream, cuts + 1)[:-1]):
            np.testing.assert_array_equal(piece[:-1], ids[1:-1])
        assert record["splits"][split]["samples"] == len(samples)
        assert record["splits"][split]["documents"] == len(docs)


def test_modernbert_is_uncompressed_int64_one_document_per_sample(converted, stored):
    dest, record = converted("modernbert")
    for split, docs in stored.items():
        index = json.loads(open(join(dest, split, "index.json")).read())
        assert all(shard["compression"] is None and shard["zip_data"] is None for shard in index["shards"])
        samples = read_mds(join(dest, split))
        assert [s["id"] for s in samples] == [i for i, _ in docs]
        for s, (_, ids) in zip(samples, docs):
            assert s["input_ids"].dtype == np.int64 and s["attention_mask"].dtype == np.int64
            np.testing.assert_array_equal(s["input_ids"], ids)
            assert (s["attention_mask"] == 1).all() and len(s["attention_mask"]) == len(ids)


def test_hf_parquet_loads_with_datasets(converted, stored, tmp_path):
    import datasets

    dest, record = converted("hf")
    files = {split: join(dest, split, "*.parquet") for split in stored}
    loaded = datasets.load_dataset("parquet", data_files=files, cache_dir=str(tmp_path))
    for split, docs in stored.items():
        ds = loaded[split]
        assert ds.features["input_ids"].feature.dtype == "int32" and ds.features["id"].dtype == "string"
        assert ds["id"] == [i for i, _ in docs]
        for row, (_, ids) in zip(ds.with_format("numpy"), docs):
            np.testing.assert_array_equal(row["input_ids"], ids)
    assert record["splits"]["train"]["tokens"] == sum(len(ids) for _, ids in stored["train"])


def test_text_retokenizes_to_the_stored_ids(converted, stored, tmp_path):
    import datasets

    dest, record = converted("text")
    ds = datasets.load_dataset("json", data_files=join(dest, "*.jsonl"), cache_dir=str(tmp_path))["train"]
    assert {"id", "text", "url"} <= set(ds.column_names)
    by_id = dict(zip(ds["id"], ds["text"]))
    everything = stored["train"] + stored["val"]
    assert set(by_id) == {i for i, _ in everything} and len(ds) == len(everything)
    tok = Tokenizer.from_file(str(BERT_TOKENIZER))
    for doc_id, ids in everything:
        again = [101, *tok.encode(by_id[doc_id], add_special_tokens=False).ids, SEP]
        np.testing.assert_array_equal(again, ids)


def test_unknown_format_and_bad_chunk_length_are_refused(sample_output, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["convert", sample_output, "--to", "megatron", "--output", str(tmp_path)])
    bad = ["convert", sample_output, "--to", "llm-foundry", "--output", str(tmp_path), "--chunk-length", "0"]
    assert main(bad) == 1
    assert "--chunk-length must be >= 1" in capsys.readouterr().err
