"""Pipeline throughput, measured side by side on the same documents and cores in one run.

    python -m benchmarks.pipeline_throughput [--copies 10] [--tasks 2]

Input: the bundled sample's non-empty documents, replicated `--copies` times with distinct ids
("1x"); "4x" is four times that. Prints:
  * raw `tokenizers.Tokenizer.encode_batch` tokens/s (all cores, in this process) on the 4x documents;
  * our `tokenize` step (`refinedweb tokenize`, --tasks/--workers = cores, wall time including start-up)
    tokens/s and its ratio to raw encode_batch (goal >= 0.8);
  * NeoBERT's reference approach — `datasets.Dataset.map(batched=True, num_proc=cores)` with
    `BertTokenizerFast`, truncation to 1024, `save_to_disk` — tokens/s and our ratio to it (goal > 1);
  * peak RSS per task of our tokenize job at 1x and 4x input (goal: flat, < 1.5 GB);
  * the `filter` step's tokens/s per core with the default filters, and each step's share of the
    filter time from Datatrove's stats.
Tokens/s always counts the tokens of the whole input documents, so truncation is not rewarded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tokenizers import Tokenizer

from pipelines.reader import SCHEMA
from pipelines.stats import stage_stats
from shards.layout import BERT_TOKENIZER, SAMPLE_DIR

FILES = 8  # input files per folder, so tasks get equal shares


def sample_rows() -> list[dict]:
    rows = [r for f in sorted(SAMPLE_DIR.glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    return [r for r in rows if r["content"] and r["content"].strip()]


def write_filtered(folder: Path, rows: list[dict], copies: int) -> list[str]:
    """`copies` replicas of the rows in OUT/filtered/ form (distinct ids); returns the texts."""
    folder.mkdir(parents=True)
    docs = [{"id": f"{k}-{i}", "text": r["content"], "url": r["url"], "timestamp": None, "dump": r["dump"],
             "segment": r["segment"], "reason": None} for k in range(copies) for i, r in enumerate(rows)]
    for f in range(FILES):
        pq.write_table(pa.Table.from_pylist(docs[f::FILES], schema=SCHEMA), folder / f"{f:05d}.parquet")
    return [d["text"] for d in docs]


def write_raw(folder: Path, rows: list[dict], copies: int) -> None:
    """`copies` replicas in the RefinedWeb source schema (urls made distinct)."""
    folder.mkdir(parents=True)
    docs = [{**r, "url": f"{r['url']}#{k}"} for k in range(copies) for r in rows]
    for f in range(FILES):
        pq.write_table(pa.Table.from_pylist(docs[f::FILES]), folder / f"part-{f:05d}.parquet")


def run_job(*args: str) -> float:
    """Wall seconds of one `refinedweb` command in a fresh process (start-up included)."""
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pipelines.refinedweb", *args], capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"refinedweb {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t


def peak_rss_gb(logging_dir: Path) -> float:
    """Largest `peak_rss_mb` a tokenize task recorded in its Datatrove stats."""
    peaks = [step["stats"]["peak_rss_mb"] for f in (logging_dir / "stats").glob("*.json")
             for step in json.loads(f.read_text()) if "peak_rss_mb" in step["stats"]]
    return max(p["total"] if isinstance(p, dict) else p for p in peaks) / 1024


def reference(texts: list[str], tmp: Path, cores: int) -> float:
    """NeoBERT's preprocessing: datasets map with a fast BERT tokenizer, truncate to 1024, save_to_disk."""
    import datasets
    from transformers import BertTokenizerFast

    datasets.disable_progress_bars()
    tok = BertTokenizerFast(vocab_file=str(BERT_TOKENIZER.parent / "vocab.txt"), tokenizer_file=str(BERT_TOKENIZER))
    t = time.perf_counter()
    ds = datasets.Dataset.from_dict({"text": texts})
    ds = ds.map(lambda b: tok(b["text"], truncation=True, max_length=1024), batched=True, num_proc=cores,
                remove_columns=["text"])
    ds.save_to_disk(str(tmp / "reference"))
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--copies", type=int, default=5, help="sample replicas in the 1x input")
    p.add_argument("--tasks", type=int, default=os.cpu_count(), help="tasks = workers = cores used")
    a = p.parse_args()
    cores = a.tasks
    rows = sample_rows()
    tok = Tokenizer.from_file(str(BERT_TOKENIZER))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        texts_1x = write_filtered(tmp / "x1" / "filtered", rows, a.copies)
        texts_4x = write_filtered(tmp / "x4" / "filtered", rows, 4 * a.copies)
        tokens_4x = sum(len(e.ids) for e in tok.encode_batch_fast(texts_4x))
        tokens_1x = tokens_4x // 4
        print(f"input: {len(rows)} sample documents x {a.copies} (1x: {len(texts_1x):,} docs, {tokens_1x:,} tokens;"
              f" 4x: {len(texts_4x):,} docs, {tokens_4x:,} tokens), {cores} cores")

        t = time.perf_counter()
        tok.encode_batch(texts_4x)
        raw = tokens_4x / (time.perf_counter() - t)
        print(f"raw Tokenizer.encode_batch (4x)            {raw:>12,.0f} tokens/s")

        job = ["--tasks", str(cores), "--workers", str(cores), "--val-fraction", "0.001"]
        run_job("tokenize", "--output", str(tmp / "x1"), *job)
        wall_4x = run_job("tokenize", "--output", str(tmp / "x4"), *job)
        rss_1x, rss_4x = (peak_rss_gb(tmp / x / "logs" / "tokenize") for x in ("x1", "x4"))
        ours = tokens_4x / wall_4x
        print(f"our tokenize step (4x, wall incl. start-up) {ours:>12,.0f} tokens/s   ratio to raw {ours / raw:.2f}"
              f"  (goal >= 0.8)")
        steps = stage_stats(str(tmp / "x4" / "logs" / "tokenize"))
        busy = tokens_4x / (sum(s.seconds for s in steps) / cores)
        print(f"  same, time inside the Datatrove steps     {busy:>12,.0f} tokens/s   ratio to raw {busy / raw:.2f}"
              "  (excludes per-task import of streaming/torch)")

        ref = tokens_4x / reference(texts_4x, tmp, cores)
        print(f"NeoBERT reference (datasets.map, 4x)       {ref:>12,.0f} tokens/s   ours / reference {ours / ref:.2f}"
              f"  (goal > 1); in-step / reference {busy / ref:.2f}")
        print(f"peak RSS per tokenize task: 1x {rss_1x:.2f} GB, 4x {rss_4x:.2f} GB  (goal: flat, < 1.5 GB)")

        write_raw(tmp / "f" / "raw", rows, a.copies)  # `filter` reads OUT/raw/
        wall_f = run_job("filter", "--output", str(tmp / "f"), *job)
        steps = stage_stats(str(tmp / "f" / "logs" / "filter"))
        total = sum(s.seconds for s in steps)
        print(f"filter step (default filters, 1x): {tokens_1x / total:,.0f} tokens/s per core "
              f"(Datatrove step time summed over tasks; `filter` wall {wall_f:.1f}s incl. start-up and dedup)")
        for s in sorted(steps, key=lambda s: -s.seconds):
            print(f"  {s.seconds / total:6.1%}  {s.name}")


if __name__ == "__main__":
    main()
