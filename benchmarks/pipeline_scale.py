"""The whole pipeline at 1x, 4x and 16x of a scale corpus, and what RefinedWeb would cost.

    python -m benchmarks.pipeline_scale [--base-tokens 10_000_000] [--scales 1 4 16] [--tasks 2]

For each scale: `benchmarks.scale_corpus` writes the input (RefinedWeb schema, lognormal lengths,
exact and near duplicates), then each step of `refinedweb all` runs as its own command so that
its peak RSS is its own (`RUSAGE_CHILDREN` of that command: the largest process of the step,
driver or task). Per step it prints documents/s and tokens/s per core (Datatrove step time summed
over tasks), peak RSS, bytes written under OUT. The RSS column must stay flat from 1x to 16x
(within ~15 %): that is the bounded-memory claim of every stage. `tokenize` is bounded by a formula
instead: each of a task's MDS writers (one per bucket and validation) holds its open shard in memory,
so its RSS grows until those shards fill, to at most its 1x RSS + (targets + 1) × --shard-size; the
benchmark prints that bound next to the measurement.

Then the cost model for RefinedWeb (600B tokens, ~968M documents, ~5,500 files), from the largest
scale's per-core rates: core-hours per step, wall-clock on K nodes of C cores, object-store
requests (files read and written, from the same run's file counts per token), and the same for
NeoBERT's reference preprocessing (one node, `datasets.map`, measured here on the 1x corpus) and
for Datatrove's default filter chain (`--filters datatrove`, measured on the 1x corpus) when this
checkout has the flag. The numbers are this machine's: state its cores when you quote them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq

from pipelines.config import FIELDS
from pipelines.stats import stage_stats
from pipelines.tokenize_mds import writer_memory_bound

REFINEDWEB_TOKENS, REFINEDWEB_DOCS, REFINEDWEB_FILES = 600e9, 968e6, 5_500
STEPS = ("download", "filter", "tokenize", "mix")
STAGES = {"download": ("download",), "filter": ("filter", "dedup_find", "dedup_filter"),
          "tokenize": ("tokenize", "merge"), "mix": ("mix",)}


def largest_rss_kb(root: int) -> int:
    """The largest resident set (KB) of any process in `root`'s process tree, from /proc (Linux):
    the driver, Datatrove's pool workers and whatever they start."""
    parent = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                parent[int(name)] = int(open(f"/proc/{name}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, grew = {root}, True
    while grew:
        grew = False
        for pid, ppid in parent.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    best = 0
    for pid in tree:
        try:
            best = max(best, next(int(line.split()[1]) for line in open(f"/proc/{pid}/status")
                                  if line.startswith("VmRSS:")))
        except (OSError, StopIteration):
            continue
    return best


def run(*args: str) -> tuple[float, float]:
    """(wall seconds, peak RSS GB of its largest process, sampled every 0.2 s) of `python ARGS`."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak, done = [0], threading.Event()

    def sample():
        while not done.wait(0.2):
            peak[0] = max(peak[0], largest_rss_kb(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode:
        sys.exit(f"{' '.join(args)} failed:\n{err[-3000:]}")
    return time.perf_counter() - t, peak[0] / 2**20  # KB -> GB


def folder_bytes(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def warm_url_lists() -> None:
    """Extract and hash the URL filter's block lists once, as each cluster node does before its first
    task (they are cached per machine): the first scale then times filtering, not that one-off."""
    from benchmarks.filter_throughput import chain

    chain("fast")


def measure(scale: int, base: int, tmp: Path, tasks: int, extra: list[str]) -> dict:
    src, out = tmp / f"src{scale}", tmp / f"out{scale}"
    run("-m", "benchmarks.scale_corpus", str(base * scale), str(src), "--file-mb", "100")
    docs = sum(pq.read_metadata(f).num_rows for f in src.glob("*.parquet"))
    common = ["--input", str(src), "--output", str(out), "--tasks", str(tasks), "--workers", str(tasks), *extra]
    steps = {}
    for step in STEPS:
        wall, rss = run("-m", "pipelines.refinedweb", step, *common)
        busy = sum(s.seconds for stage in STAGES[step] if (out / "logs" / stage / "stats").exists()
                   for s in stage_stats(str(out / "logs" / stage)))
        steps[step] = {"wall": wall, "busy": busy or wall * tasks, "rss": rss}
    counters = stage_stats(str(out / "logs" / "tokenize"))[1].counters
    tokens = int(sum(v for k, v in counters.items() if k.endswith("/tokens"))) or base * scale
    for step, folder in (("download", "raw"), ("filter", "filtered"), ("tokenize", "mds"), ("mix", "mixtures")):
        steps[step]["bytes"], steps[step]["files"] = folder_bytes(out / folder)
    return {"scale": scale, "documents": docs, "tokens": tokens, "steps": steps, "out": out, "src": src}


def reference_rate(src: Path, tmp: Path, cores: int) -> float:
    """NeoBERT's preprocessing, tokens/s per core: datasets.map with BertTokenizerFast, save_to_disk."""
    from benchmarks.pipeline_throughput import reference

    texts = [t for f in sorted(src.glob("*.parquet")) for t in pq.read_table(f, columns=["content"])["content"]
             .to_pylist()]
    from tokenizers import Tokenizer

    from shards.layout import BERT_TOKENIZER

    tokens = sum(len(e.ids) for e in Tokenizer.from_file(str(BERT_TOKENIZER)).encode_batch_fast(texts))
    return tokens / reference(texts, tmp, cores) / cores


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base-tokens", type=lambda s: int(s.replace("_", "")), default=10_000_000)
    p.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--tasks", type=int, default=os.cpu_count())
    p.add_argument("--nodes", type=int, default=16, help="cost model: K nodes ...")
    p.add_argument("--node-cores", type=int, default=32, help="... of C cores (c6i.8xlarge: 32 vCPUs)")
    p.add_argument("--model-tasks", type=int, default=2000, help="cost model: tasks per stage")
    a = p.parse_args()
    cores = a.tasks
    with tempfile.TemporaryDirectory(prefix="pipeline_scale_") as d:
        tmp = Path(d)
        warm_url_lists()
        runs = [measure(s, a.base_tokens, tmp, cores, []) for s in a.scales]
        print(f"\n{cores} cores, tasks = workers = {cores}; per core = Datatrove step time summed over tasks")
        print(f"{'scale':>5} {'step':<9} {'docs/s/core':>12} {'tokens/s/core':>14} {'peak RSS GB':>12} "
              f"{'MB written':>11} {'files':>6}")
        for r in runs:
            for step, s in r["steps"].items():
                print(f"{r['scale']:>4}x {step:<9} {r['documents'] / s['busy']:>12,.0f} {r['tokens'] / s['busy']:>14,.0f} "
                      f"{s['rss']:>12.2f} {s['bytes'] / 1e6:>11.1f} {s['files']:>6}")
        first, last = runs[0], runs[-1]
        print("\npeak RSS, largest / smallest scale (goal <= 1.15):  " + ", ".join(
            f"{step} {last['steps'][step]['rss'] / first['steps'][step]['rss']:.2f}" for step in STEPS))
        bound = first["steps"]["tokenize"]["rss"] + writer_memory_bound(FIELDS["bucket_edges"].default,
                                                                        FIELDS["shard_size"].default) / 1e9
        print(f"tokenize peak RSS bound (1x RSS + (targets + 1) x shard size): {bound:.2f} GB, largest scale "
              f"{last['steps']['tokenize']['rss']:.2f} GB: {'within' if last['steps']['tokenize']['rss'] <= bound else 'OVER'}")

        rates = {step: last["tokens"] / s["busy"] for step, s in last["steps"].items()}
        cluster = a.nodes * a.node_cores

        def objects(step: str) -> float:
            """PUTs: per-task files at --model-tasks tasks, or the bytes in 64 MB objects, whichever is more."""
            s = last["steps"][step]
            return max(s["files"] / cores * a.model_tasks, s["bytes"] / last["tokens"] * REFINEDWEB_TOKENS / 64e6)

        print(f"\ncost model, RefinedWeb ({REFINEDWEB_TOKENS / 1e9:.0f}B tokens, {REFINEDWEB_DOCS / 1e6:.0f}M documents, "
              f"{REFINEDWEB_FILES:,} files), at the {last['scale']}x rates:")
        print(f"{'step':<10} {'core-hours':>11} {'wall h on ' + str(a.nodes) + 'x' + str(a.node_cores):>16} "
              f"{'TB written':>11} {'PUTs (~GETs next step)':>23}")
        total = 0.0
        for step in STEPS:
            # mix reads indexes and stats, O(shards): a fixed cost, not a per-token one (without --materialize)
            ch = last["steps"][step]["busy"] / 3600 if step == "mix" else REFINEDWEB_TOKENS / rates[step] / 3600
            total += ch
            tb = last["steps"][step]["bytes"] / last["tokens"] * REFINEDWEB_TOKENS / 1e12
            print(f"{step:<10} {ch:>11,.0f} {ch / cluster:>16.1f} {tb:>11.2f} {objects(step):>23,.0f}")
        print(f"{'ours':<10} {total:>11,.0f} {total / cluster:>16.1f}   ({a.model_tasks:,} tasks per stage; "
              f"the {REFINEDWEB_FILES:,} source files are read once, by download)")
        ref = reference_rate(first["src"], tmp, cores)
        ch = REFINEDWEB_TOKENS / ref / 3600
        print(f"{'NeoBERT':<10} {ch:>11,.0f} {ch / a.node_cores:>16.1f}   (tokenize only, one node of "
              f"{a.node_cores} cores: datasets.map; no filtering, no dedup)")
        try:
            dt = measure(first["scale"], a.base_tokens, tmp / "datatrove", cores, ["--filters", "datatrove"])
            ch = REFINEDWEB_TOKENS / (dt["tokens"] / dt["steps"]["filter"]["busy"]) / 3600
            print(f"{'Datatrove':<10} {ch:>11,.0f} {ch / cluster:>16.1f}   (the filter step with Datatrove's own "
                  "filter chain)")
        except SystemExit as e:
            print(f"Datatrove's chain: not measured ({str(e).splitlines()[0]})")


if __name__ == "__main__":
    main()
