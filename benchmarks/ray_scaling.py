"""Ray executor scaling, measured side by side in one run on the same documents and cores.

    python -m benchmarks.ray_scaling [--copies 10] [--tasks 2] [--repeats 2]   # from the repository root
    python -m benchmarks.scale_corpus 40_000_000 /tmp/scale/4x --small-files 8
    python -m benchmarks.ray_scaling --corpus /tmp/scale/4x                    # the 4x scale corpus

Input: the bundled sample's non-empty documents replicated `--copies` times with distinct ids, in
`OUT/filtered/` form (see pipeline_throughput.py), or with `--corpus DIR` the `content` of a scale
corpus (files of equal share, so that the tasks are equal: `--small-files`, a multiple of --tasks). Prints:
  * the fixed start-up cost: `ray.init` of a local instance, and an empty one-task Ray stage;
  * the `tokenize` step's tokens/s on Ray with 1 worker and with 2 workers (the same `--tasks`,
    hence the same shards) and the ratio (goal >= 1.8 on 2 cores), with the local executor's
    2-worker tokens/s beside them for the Ray overhead.
Times are wall seconds of the stage's `run()` (actors, tokenizer loading and MDS writing included),
the best of `--repeats`; tokens are counted from the stage's Datatrove stats.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
from datatrove.pipeline.readers import ParquetReader

from benchmarks.pipeline_throughput import sample_rows, write_filtered
from pipelines.config import JobConfig
from pipelines.executors import make_executor
from pipelines.stats import stage_stats
from pipelines.tokenize_mds import TokenizeToMDS


def tokenize_stage(kind: str, filtered: Path, out: Path, tasks: int, workers: int, text_key: str = "text"
                   ) -> tuple[float, int]:
    """(wall seconds, tokens) of one fresh `tokenize` stage run on the parquet files of `filtered`, with
    the job's default settings (a scale corpus has no id column: Datatrove's ids, file/row, stand in)."""
    shutil.rmtree(out, ignore_errors=True)
    cfg = JobConfig(output=str(out), executor=kind, tasks=tasks, workers=workers, val_fraction=0.0)
    executor = make_executor(cfg, [
        ParquetReader(str(filtered), text_key=text_key, id_key="id", glob_pattern="*.parquet"),
        TokenizeToMDS(cfg.output, cfg.tokenizer, cfg.bucket_edges, cfg.val_fraction, cfg.batch_size, cfg.shard_size),
    ], logging_dir=str(out / "logs"), tasks=tasks, depends=None)
    t = time.perf_counter()
    executor.run()
    seconds = time.perf_counter() - t
    counters = stage_stats(str(out / "logs"))[1].counters
    return seconds, int(sum(v for k, v in counters.items() if k.endswith("/tokens")))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--copies", type=int, default=10, help="replicas of the sample (10: ~3.4M tokens)")
    p.add_argument("--tasks", type=int, default=2, help="tasks of the tokenize stage (same in every run)")
    p.add_argument("--repeats", type=int, default=2, help="runs per setting; the best counts")
    p.add_argument("--corpus", type=Path, default=None, help="a scale corpus folder instead of the sample")
    a = p.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import ray

    with tempfile.TemporaryDirectory(prefix="ray_scaling_") as tmp:
        tmp = Path(tmp)
        if a.corpus is None:
            source, text_key = tmp / "filtered", "text"
            texts = write_filtered(source, sample_rows(), a.copies)
            docs, chars = len(texts), sum(map(len, texts))
        else:
            source, text_key = a.corpus, "content"
            files = sorted(a.corpus.glob("*.parquet"))
            if not files:
                raise SystemExit(f"--corpus {a.corpus} has no .parquet files: write one with benchmarks.scale_corpus")
            docs = sum(pq.read_metadata(f).num_rows for f in files)
            chars = sum(pc.sum(pc.utf8_length(pq.read_table(f, columns=["content"])["content"])).as_py() for f in files)
            print(f"corpus {a.corpus}: {len(files)} files")
        print(f"input: {docs:,} documents, {chars / 1e6:.1f} MB of text, "
              f"{os.cpu_count()} cores, tokenize --tasks {a.tasks}")

        t = time.perf_counter()
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        init = time.perf_counter() - t
        t = time.perf_counter()
        empty_cfg = JobConfig(output=str(tmp / "empty"), executor="ray")
        make_executor(empty_cfg, [], logging_dir=empty_cfg.logs("empty"), tasks=1, depends=None).run()
        empty = time.perf_counter() - t

        runs = {("ray", 1): [], ("ray", 2): [], ("local", 2): []}
        for _ in range(a.repeats):  # interleaved, so load changes hit every setting alike
            for kind, workers in runs:
                runs[kind, workers].append(tokenize_stage(kind, source, tmp / "out", a.tasks, workers, text_key))
        ray.shutdown()

    best = {key: min(r)[0] for key, r in runs.items()}
    tokens = {r[1] for rs in runs.values() for r in rs}
    assert len(tokens) == 1, f"runs tokenized different inputs: {tokens}"
    n = tokens.pop()
    print(f"\nfixed start-up cost: ray.init (local instance) {init:.2f} s + empty 1-task Ray stage {empty:.2f} s "
          f"= {init + empty:.2f} s")
    print(f"tokenize, {n:,} tokens (best of {a.repeats}):")
    for (kind, workers), seconds in best.items():
        label = f"{kind} {workers} worker{'s' if workers > 1 else ''}"
        print(f"  {label:<16} {seconds:7.2f} s  {n / seconds:>12,.0f} tokens/s")
    ratio = best["ray", 1] / best["ray", 2]
    print(f"Ray 2 workers / 1 worker: {ratio:.2f}x (goal >= 1.8 on 2 cores)")
    print(f"Ray / local executor at 2 workers: {best['local', 2] / best['ray', 2]:.2f}x")
    print(f"load average at the end (other processes share these cores): {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
