"""`python -m shards convert OUT --to FORMAT --output DEST`: our shards in another framework's layout.

    llm-foundry  DEST/{train,val}/  MDS, column `tokens` ndarray:int32: each document's content
                 followed by [SEP], concatenated in order and cut into `chunk_length` samples
                 (the last one may be shorter: no token is dropped)
    modernbert   DEST/{train,val}/  MDS, uncompressed, one document per sample: `input_ids` and
                 `attention_mask` ndarray:int64, `id` str
    hf           DEST/{train,val}/part-NNNNN.parquet: `input_ids` list<int32>, `id` string
    text         DEST/part-NNNNN.jsonl: the filtered documents (id, text, source metadata), for
                 re-tokenization elsewhere

`train` holds every bucket (in manifest order), `val` the held-out split. Documents are read one
shard at a time and written as they come, so memory stays bounded by one shard whatever the size
of OUT. Invariant: for every document, its ids and their order are those stored in OUT.
`DEST/conversion.json` is the output's manifest: format, columns, counts, and the source it came
from (root, its manifest's creation time and tokenizer).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone

import fsspec
import numpy as np
from tqdm import tqdm

from shards import manifest as manifest_io
from shards import atomic, mds
from shards.layout import CONVERSION, FILTERED, MANIFEST, join, join_within

FORMATS = ("llm-foundry", "modernbert", "hf", "text")
HF_ROWS_PER_FILE = 50_000
TEXT_ROWS_PER_FILE = 100_000


def split_folders(root: str, manifest: dict) -> dict[str, list[str]]:
    """Split name → the MDS folders it reads, in order."""
    where, val = join(root, MANIFEST), manifest["validation"]
    return {"train": [join_within(root, b["path"], where) for b in manifest["buckets"].values() if b["documents"]],
            "val": [join_within(root, val["path"], where)] if val["documents"] else []}


def documents(folders: list[str], progress: tqdm, validate_hash: str | None = None) -> Iterator[dict]:
    """Every stored document (`input_ids`, `id`, `num_tokens`), folder by folder, shard by shard;
    each shard's `validate_hash` checked against its index before it is decoded."""
    for folder in folders:
        for shard in mds.read_index(folder)["shards"]:
            stored = mds.read_shard(folder, shard)
            if validate_hash:
                info = mds.stored_file(shard)
                mds.check_hashes(join(folder, info["basename"]), stored, info, [validate_hash])
            for sample in mds.iter_samples(folder, shard, stored):
                progress.update(1)
                yield sample


def _mds_writer(dest: str, columns: dict, compression: str | None):
    from streaming import MDSWriter

    return MDSWriter(out=dest, columns=columns, compression=compression, hashes=mds.HASHES, exist_ok=True)


def to_llm_foundry(docs: Iterator[dict], dest: str, sep: int, chunk_length: int) -> dict:
    counts = {"documents": 0, "tokens": 0, "samples": 0}
    buffer = np.empty(0, dtype=np.int32)
    with _mds_writer(dest, {"tokens": "ndarray:int32"}, mds.COMPRESSION) as w:
        for doc in docs:
            ids = doc["input_ids"]
            assert ids[-1] == sep, "stored documents end with [SEP]"
            buffer = np.concatenate([buffer, ids[1:].astype(np.int32)])  # content + [SEP]
            counts["documents"] += 1
            counts["tokens"] += len(ids) - 1
            while len(buffer) >= chunk_length:
                w.write({"tokens": buffer[:chunk_length]})
                buffer = buffer[chunk_length:]
                counts["samples"] += 1
        if len(buffer):
            w.write({"tokens": buffer})
            counts["samples"] += 1
    return counts


def to_modernbert(docs: Iterator[dict], dest: str) -> dict:
    counts = {"documents": 0, "tokens": 0, "samples": 0}
    columns = {"input_ids": "ndarray:int64", "attention_mask": "ndarray:int64", "id": "str"}
    with _mds_writer(dest, columns, None) as w:
        for doc in docs:
            ids = doc["input_ids"].astype(np.int64)
            w.write({"input_ids": ids, "attention_mask": np.ones_like(ids), "id": doc["id"]})
            counts["documents"] += 1
            counts["samples"] += 1
            counts["tokens"] += len(ids)
    return counts


def to_hf(docs: Iterator[dict], dest: str, rows_per_file: int = HF_ROWS_PER_FILE, rows_per_group: int = 1024) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("input_ids", pa.list_(pa.int32())), ("id", pa.string())])
    counts = {"documents": 0, "tokens": 0, "files": 0}
    fs, path = fsspec.core.url_to_fs(dest)
    fs.makedirs(path, exist_ok=True)
    for stale in fs.glob(f"{path}/part-*.parquet"):  # a rerun replaces the output, as MDSWriter does
        fs.rm(stale)
    sink = writer = None
    rows: list[dict] = []

    def flush():
        if rows:
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
            rows.clear()

    for doc in docs:
        if counts["documents"] % rows_per_file == 0:
            if writer is not None:
                flush()
                writer.close()
                sink.close()
            sink = fs.open(f"{path}/part-{counts['files']:05d}.parquet", "wb")
            writer = pq.ParquetWriter(sink, schema, compression="zstd")
            counts["files"] += 1
        rows.append({"input_ids": doc["input_ids"].astype(np.int32), "id": doc["id"]})
        if len(rows) == rows_per_group:
            flush()
        counts["documents"] += 1
        counts["tokens"] += len(doc["input_ids"])
    if writer is not None:
        flush()
        writer.close()
        sink.close()
    return counts


def to_text(root: str, dest: str, progress: tqdm) -> dict:
    """The filtered parquet files, batch by batch, as JSON lines."""
    import pyarrow.parquet as pq

    fs, path = fsspec.core.url_to_fs(join(root, FILTERED))
    files = sorted(fs.glob(f"{path}/*.parquet"))
    if not files:
        raise FileNotFoundError(f"{join(root, FILTERED)} has no parquet files: the text format needs the "
                                "pipeline's filtered/ folder next to the shards")
    out_fs, out = fsspec.core.url_to_fs(dest)
    out_fs.makedirs(out, exist_ok=True)
    for stale in out_fs.glob(f"{out}/part-*.jsonl"):
        out_fs.rm(stale)
    counts = {"documents": 0, "files": 0}
    sink = None
    for file in files:
        with fs.open(file, "rb") as f:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=1024):
                for row in batch.to_pylist():
                    if counts["documents"] % TEXT_ROWS_PER_FILE == 0:
                        if sink is not None:
                            sink.close()
                        sink = out_fs.open(f"{out}/part-{counts['files']:05d}.jsonl", "w", encoding="utf-8")
                        counts["files"] += 1
                    row.pop("reason", None)  # the filter's note, always empty for kept documents
                    sink.write(json.dumps(row, ensure_ascii=False) + "\n")
                    counts["documents"] += 1
                    progress.update(1)
    if sink is not None:
        sink.close()
    return counts


def convert(root: str, to: str, dest: str, chunk_length: int = 1024, validate_hash: str | None = None) -> dict:
    """Write `root`'s shards to `dest` in format `to`; returns (and writes) the output's manifest.
    Reads OUT only (shards are decompressed in memory); `validate_hash` (`sha1`, `xxh64`) checks
    every shard file before its documents are written."""
    if to not in FORMATS:
        raise ValueError(f"unknown format {to!r}; choose one of {FORMATS}")
    if validate_hash not in (None, *mds.HASHES):
        raise ValueError(f"--validate-hash {validate_hash!r}: the shards record {mds.HASHES}; choose one of those")
    if validate_hash and to == "text":
        raise ValueError("--validate-hash checks MDS shards; the text format reads the filtered/ parquet files")
    if chunk_length < 1:
        raise ValueError(f"--chunk-length must be >= 1, got {chunk_length}")
    manifest = manifest_io.read(root)
    tok = manifest["tokenizer"]
    record = {
        "format": to,
        "source": {"root": str(root), "created": manifest.get("created"),
                   "pipeline_version": manifest.get("pipeline_version"),
                   "tokenizer": {k: tok[k] for k in ("name", "sha256", "vocab_size", "special_tokens")}},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if to == "text":
        with tqdm(total=manifest.get("documents", {}).get("kept"), desc="convert text", unit="doc") as progress:
            record["columns"] = "id, text and the source metadata (url, timestamp, dump, segment)"
            record["splits"] = {"all": {"path": ".", **to_text(root, dest, progress)}}
    else:
        folders = split_folders(root, manifest)
        total = sum(b["documents"] for b in manifest["buckets"].values()) + manifest["validation"]["documents"]
        record["splits"] = {}
        with tqdm(total=total, desc=f"convert {to}", unit="doc") as progress:
            for split, parts in folders.items():
                if not parts:
                    continue
                docs, out = documents(parts, progress, validate_hash), join(dest, split)
                if to == "llm-foundry":
                    counts = to_llm_foundry(docs, out, tok["special_tokens"]["sep"], chunk_length)
                elif to == "modernbert":
                    counts = to_modernbert(docs, out)
                else:
                    counts = to_hf(docs, out)
                record["splits"][split] = {"path": split, **counts}
        record["columns"] = {
            "llm-foundry": {"tokens": "ndarray:int32"},
            "modernbert": {"input_ids": "ndarray:int64", "attention_mask": "ndarray:int64", "id": "str"},
            "hf": {"input_ids": "list<int32>", "id": "string"},
        }[to]
        if to == "llm-foundry":
            record["chunk_length"] = chunk_length
            record["separator"] = {"token": "sep", "id": tok["special_tokens"]["sep"]}
    atomic.write_text(join(dest, CONVERSION), json.dumps(record, indent=2))
    return record


def summary(record: dict, dest: str) -> str:
    lines = [f"wrote {record['format']} to {dest} (from {record['source']['root']})"]
    for split, c in record["splits"].items():
        lines.append(f"  {split:<6} " + "  ".join(f"{k} {v:,}" for k, v in c.items() if k != "path"))
    lines.append(f"  manifest: {join(dest, CONVERSION)}")
    return "\n".join(lines)
