"""End-to-end: the `all` job on the bundled sample (shared `sample_output` fixture)."""

from __future__ import annotations

import collections
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from streaming import StreamingDataset
from tokenizers import Tokenizer

from pipelines.dedup import normalised_content
from shards import manifest as manifest_io
from shards import mds, mixture
from shards.layout import BERT_TOKENIZER, SAMPLE_DIR, buckets
from shards.streams import mixture_streams, validation_streams

pytestmark = pytest.mark.slow


def rows(folder: Path) -> list[dict]:
    return [r for f in sorted(folder.glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def read_bucket(folder: Path, tmp_path: Path) -> dict[str, np.ndarray]:
    """Every sample of one MDS folder through stock `StreamingDataset` (on a copy: it unpacks shards)."""
    copy = tmp_path / folder.name
    shutil.copytree(folder, copy)
    ds = StreamingDataset(local=str(copy), shuffle=False, batch_size=1)
    out = {}
    for i in range(len(ds)):
        s = ds[i]
        assert s["id"] not in out, f"{s['id']} twice in {folder}"
        assert s["num_tokens"] == len(s["input_ids"]) and s["input_ids"].dtype == np.uint16
        out[s["id"]] = s["input_ids"]
    return out


@pytest.fixture(scope="module")
def contents(sample_output, tmp_path_factory) -> dict[str, dict[str, np.ndarray]]:
    tmp = tmp_path_factory.mktemp("read")
    names = [b.path for b in buckets()] + ["mds/val"]
    return {n: read_bucket(Path(sample_output, n), tmp) for n in names}


def test_summary_printed(sample_run):
    out, proc = sample_run
    for text in ("documents read 160", "gopher_repetition", "exact_dedup", "lt1024", "ge2048", "tokens", out):
        assert text in proc.stdout, f"{text!r} missing from the summary:\n{proc.stdout}"


def test_buckets_equal_independent_encoding_of_filtered(sample_output, contents):
    """Every bucket (and val) holds exactly the documents of OUT/filtered/, each encoded whole."""
    tok = Tokenizer.from_file(str(BERT_TOKENIZER))
    filtered = rows(Path(sample_output, "filtered"))
    expected = {r["id"]: tok.encode(r["text"]).ids for r in filtered}
    assert len(expected) == len(filtered) > 50
    got = {i: ids for bucket in contents.values() for i, ids in bucket.items()}
    assert set(got) == set(expected)
    for i, ids in expected.items():
        assert got[i].tolist() == ids, f"document {i} differs from an independent encoding"
    assert max(len(v) for v in expected.values()) > 2048  # whole documents: nothing truncated to 512/1024


def test_no_document_in_two_buckets(contents):
    seen = collections.Counter(i for bucket in contents.values() for i in bucket)
    assert seen and max(seen.values()) == 1
    for b in buckets():
        assert contents[b.path], f"bucket {b.name} is empty: the test would not show routing"
        assert all(b.contains(len(ids)) for ids in contents[b.path].values())
    assert contents["mds/val"], "validation split empty at --val-fraction 0.05"


def test_duplicates_removed_once(sample_output):
    kept = rows(Path(sample_output, "filtered"))
    removed = rows(Path(sample_output, "removed", "exact_dedup"))
    keys = collections.Counter(normalised_content_text(r["text"]) for r in kept)
    assert max(keys.values()) == 1, "two copies of a document survived"
    assert removed, "the sample has duplicates: some must have been removed"
    for r in removed:
        assert keys[normalised_content_text(r["text"])] == 1, "a duplicate was removed with all its copies"
    # the sample's raw duplicates are real: more raw rows than distinct contents
    raw = rows(SAMPLE_DIR)
    assert len({r["content"] for r in raw}) < len(raw)


def normalised_content_text(text: str) -> str:
    from datatrove.data import Document

    return normalised_content(Document(text=text, id="x"))


def test_manifest_records_everything(sample_output):
    m = manifest_io.read(sample_output)
    for key in ("source", "pipeline_version", "config", "tokenizer", "filters", "buckets", "dedup", "created",
                "validation", "mixtures", "documents"):
        assert key in m, key
    assert len(m["source"]["files"]) == 4
    assert m["tokenizer"]["special_tokens"] == {"pad": 0, "unk": 100, "cls": 101, "sep": 102, "mask": 103}
    assert m["tokenizer"]["vocab_size"] == 30522 and len(m["tokenizer"]["sha256"]) == 64
    assert m["documents"]["read"] == 160
    # every document is accounted for: kept + removed by exactly one filter or dedup
    removed = sum(f["removed"] for f in m["filters"].values()) + m["dedup"]["removed"]
    assert m["documents"]["kept"] + removed == 160
    assert m["filters"]["content"]["reasons"] == {"empty": 3}
    # audit folders hold exactly what each filter removed
    for name, f in m["filters"].items():
        folder = Path(sample_output, "removed", name)
        assert (len(rows(folder)) if folder.exists() else 0) == f["removed"], name
    total = sum(b["documents"] for b in m["buckets"].values()) + m["validation"]["documents"]
    assert total == m["documents"]["kept"] == len(rows(Path(sample_output, "filtered")))
    for b in m["buckets"].values():
        assert sum(b["histogram"]["counts"]) == b["documents"] and b["shards"] >= 1


def test_mixtures_from_manifest_counts(sample_output):
    m = manifest_io.read(sample_output)
    counts = {b: m["buckets"][b.name]["documents"] for b in buckets()}
    for name, expected in (("stage1", mixture.natural(counts)), ("stage2", mixture.long_context(counts))):
        items = json.loads(Path(sample_output, "mixtures", f"{name}.json").read_text())
        assert items == mixture.to_json(expected)
        streams = mixture_streams(sample_output, name)
        assert [s.remote for s in streams] == [str(Path(sample_output, i["path"])) for i in items]
    assert len(validation_streams(sample_output)) == 1


def test_materialized_mixture(sample_output, tmp_path):
    m = manifest_io.read(sample_output)
    info = m["mixtures"]["stage2"]["materialized"]
    assert info["tokens"] >= 20000
    got = read_bucket(Path(sample_output, info["path"]), tmp_path)
    assert sum(len(v) for v in got.values()) <= info["tokens"]  # repeats of a document collapse here
    assert info["documents"] >= len(got) > 0
    assert sum(info["per_bucket"].values()) == info["documents"]


def test_verify_passes_and_catches_a_flipped_byte(sample_output, tmp_path):
    ok = subprocess.run([sys.executable, "-m", "shards", "verify", sample_output], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "all hashes and counts match" in ok.stdout
    copy = tmp_path / "out"
    shutil.copytree(sample_output, copy)
    bucket = copy / "mds" / "1024to2048"
    shard = bucket / mds.stored_file(mds.read_index(str(bucket))["shards"][0])["basename"]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x01
    shard.write_bytes(bytes(data))
    bad = subprocess.run([sys.executable, "-m", "shards", "verify", str(copy)], capture_output=True, text=True)
    assert bad.returncode == 1
    assert str(shard) in bad.stderr and "mismatch" in bad.stderr


def test_inspect_prints_tables(sample_output):
    proc = subprocess.run([sys.executable, "-m", "shards", "inspect", sample_output], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for text in ("bucket", "documents", "lt1024", "1024to2048", "ge2048", "gopher_quality", "stage2"):
        assert text in proc.stdout


def test_runs_as_plain_script_and_console_script():
    script = Path(__file__).parents[2] / "pipelines" / "refinedweb.py"
    for cmd in ([sys.executable, str(script), "all", "--help"], [str(Path(sys.executable).parent / "refinedweb"), "--help"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd="/")
        assert proc.returncode == 0, proc.stderr
        assert "--output" in proc.stdout or "download" in proc.stdout


def test_materialize_is_deterministic_from_its_seed(sample_output, tmp_path):
    from pipelines.mix import materialize

    out = tmp_path / "out"
    shutil.copytree(sample_output, out, ignore=shutil.ignore_patterns("materialized"))
    items = json.loads((out / "mixtures" / "stage2.json").read_text())
    path = out / "mds" / "materialized" / "stage2"
    buckets = manifest_io.read(str(out))["buckets"]
    first = [materialize(str(out), "stage2", items, buckets, 5000, seed, "uint16") and mds.read_index(str(path))
             for seed in (7, 7, 8)]
    assert first[0] == first[1] != first[2]
