"""Filter throughput, Datatrove's filters against ours (`--filters fast`), on the same documents and one core.

    python -m benchmarks.filter_throughput [--docs N] [--copies 1] [--step-copies 1] [--rss-copies 8]
        [--repeats 3] [--corpus DIR]   # also our filter step on a scale corpus (python -m benchmarks.scale_corpus)

Input: the bundled sample's non-empty documents (the first `--docs`), `--copies` times. Prints, in
bert tokens of the input documents per second of one core:
  * in process, the default chain (URL → Gopher repetition → Gopher quality → C4 quality →
    FineWeb quality) called directly: Datatrove's, ours with a cold tokenizer memo, ours warm (a
    second pass), and our ratio to Datatrove (goal >= 10x). The URL lists are loaded and each
    chain's word tokenizer is built beforehand (spaCy imported, then `spacy.blank("en")` for
    Datatrove's, ours with its rule tables; tldextract's suffix list parsed). That start-up, once
    per process, is measured in a new process for each implementation (spaCy imported and the
    chain built there first, nothing else loaded), printed on its own line, and added to each
    chain's time on the line after, since a sample-sized run is where it weighs most (a
    RefinedWeb task reads ~100 MB files, ~25M tokens, per start-up);
  * the pipeline's whole `filter` step (`refinedweb filter --tasks 1`: reading, every default
    filter, dedup signatures and writing; Datatrove step time summed) on `--step-copies` copies,
    each task starting cold (goal >= 300k tokens/s per core);
  * the peak RSS of our filter task at 1x and `--rss-copies` x input (goal: flat);
  * with `--corpus DIR`, our `filter` step on that corpus (one task: a RefinedWeb task reads whole
    ~100 MB files, so start-up and a cold memo weigh as they would there).
Each chain in process and each `filter` step runs `--repeats` times, the two implementations taking
turns, and the fastest pass counts (as `timeit` does): on a shared machine the slower passes measure
the neighbours.
"""

from __future__ import annotations

import argparse
import importlib.metadata  # noqa: F401  (datatrove's dependency check needs it imported)
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
from datatrove.data import Document
from tokenizers import Tokenizer

from benchmarks.pipeline_throughput import sample_rows, write_raw
from pipelines import words
from pipelines.config import JobConfig
from pipelines.filters import build_filters
from pipelines.stats import stage_stats
from shards.layout import BERT_TOKENIZER

CHAIN = ("url", "gopher_repetition", "gopher_quality", "c4_quality", "fineweb_quality")


def chain(impl: str) -> list:
    with tempfile.TemporaryDirectory() as d:
        filters = dict(build_filters(JobConfig(output=d, filter_impl=impl)))
    filters["url"].download_data()
    return [filters[name] for name in CHAIN]


def start_up(impl: str, filters: list) -> float:
    """Seconds to build the chain's shared word tokenizer, spaCy already imported: Datatrove's (`load_word_tokenizer`
    keeps one per language for every filter) or ours (`words.shared()`, fresh: its memo is empty, i.e. cold),
    and to parse tldextract's suffix list, which the URL filter otherwise does on its first document."""
    from datatrove.utils.typeshelper import Languages
    from datatrove.utils.word_tokenizers import load_word_tokenizer

    t = time.perf_counter()
    if impl == "datatrove":
        load_word_tokenizer(Languages.english).tokenizer
    else:
        words._shared = None
        words.shared()
    filters[CHAIN.index("url")].tldextractor("http://example.com/")
    return time.perf_counter() - t


def fresh_start_up(impl: str) -> float:
    """`start_up(impl, …)` in a new process (spaCy imported, the chain built): as a filter task pays it, with
    nothing loaded by the other implementation or a pass before it."""
    code = ("import importlib.metadata, spacy; from benchmarks.filter_throughput import chain, start_up; "
            f"f = chain({impl!r}); print(start_up({impl!r}, f))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def seconds(filters: list, rows: list[dict]) -> tuple[float, int]:
    """Seconds to pass every document through the chain, and the documents kept."""
    docs = [Document(text=r["content"], id=str(i), metadata={"url": r["url"]}) for i, r in enumerate(rows)]
    t, kept = time.perf_counter(), 0
    for doc in docs:
        kept += all(f.filter(doc) is True for f in filters)
    return time.perf_counter() - t, kept


def filter_step(impl: str, rows: list[dict], copies: int, tmp: Path, corpus: Path | None = None) -> tuple[float, float]:
    """(Datatrove step seconds summed, peak RSS in MB of the job's largest process) of one `filter` job
    on `copies` replicas of `rows`, or on the parquet files of `corpus`."""
    out = tmp / f"{impl}-x{copies}" if corpus is None else tmp / f"{impl}-{corpus.name}"
    if corpus is None:
        write_raw(out / "raw", rows, copies)
    else:
        (out / "raw").mkdir(parents=True)
        for f in sorted(corpus.glob("*.parquet")):
            (out / "raw" / f.name).symlink_to(f.resolve())
    job = [sys.executable, "-m", "pipelines.refinedweb", "filter", "--output", str(out), "--tasks", "1",
           "--workers", "1", "--filters", impl]
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.stderr.write(r.stderr[-3000:]); "
             "sys.exit(r.returncode)")
    proc = subprocess.run([sys.executable, "-c", probe, *job], capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"refinedweb filter --filters {impl} failed:\n{proc.stderr}")
    return sum(s.seconds for s in stage_stats(str(out / "logs" / "filter"))), int(proc.stdout) / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=None, help="take only the first N sample documents (quick runs)")
    p.add_argument("--copies", type=int, default=1, help="sample replicas for the in-process chains")
    p.add_argument("--step-copies", type=int, default=1, help="sample replicas for the `filter` steps")
    p.add_argument("--rss-copies", type=int, default=8, help="sample replicas for the larger RSS measurement")
    p.add_argument("--corpus", type=Path, default=None, help="a scale corpus folder: also our filter step on it")
    p.add_argument("--repeats", type=int, default=3,
                   help="passes of each in-process chain and filter step, interleaved; the fastest counts (as timeit)")
    a = p.parse_args()
    rows = sample_rows()[:a.docs]
    tok = Tokenizer.from_file(str(BERT_TOKENIZER))
    sample_tokens = sum(len(e.ids) for e in tok.encode_batch_fast([r["content"] for r in rows]))
    docs = rows * a.copies
    tokens = sample_tokens * a.copies
    print(f"input: {len(rows)} sample documents, {sample_tokens:,} bert tokens; in process x{a.copies}, "
          f"filter step x{a.step_copies}; one core")

    import spacy  # noqa: F401  (imported once for both: ~2 s that neither chain's timing should carry)

    ref, ours = chain("datatrove"), chain("fast")
    start_up("datatrove", ref)  # this process's tokenizers and suffix list, before any pass
    start_up("fast", ours)
    ref_start, ours_start = fresh_start_up("datatrove"), fresh_start_up("fast")
    ref_s, cold_s, warm_s, kept = [], [], [], set()
    for i in range(a.repeats):  # interleaved, so that a busy spell of the machine slows both chains
        for label, times in (("datatrove", ref_s), ("cold", cold_s), ("warm", warm_s)):
            if label == "cold" and i:
                start_up("fast", ours)  # a new tokenizer: an empty memo
            s, k = seconds(ref if label == "datatrove" else ours, docs)
            times.append(s)
            kept.add((label, k))
    if len({k for _, k in kept}) != 1:
        sys.exit(f"kept documents differ: {sorted(kept)}")
    ref_s, cold_s, warm_s = min(ref_s), min(cold_s), min(warm_s)
    ref_rate = tokens / ref_s
    print(f"{'':34}{'tokens/s per core':>18}{'ratio':>8}   (fastest of {a.repeats} interleaved passes)")
    print(f"{'filters in process, datatrove':34}{ref_rate:>18,.0f}{1:>8.1f}")
    for label, s in (("filters in process, fast (cold)", cold_s), ("filters in process, fast (warm)", warm_s)):
        print(f"{label:34}{tokens / s:>18,.0f}{ref_s / s:>8.1f}   (goal >= 10x)")
    both = ref_s + ref_start, cold_s + ours_start
    print(f"{'  cold, start-up included':34}{tokens / both[1]:>18,.0f}{both[0] / both[1]:>8.1f}")
    print(f"word tokenizer start-up, once per process (each in a new one): datatrove {ref_start:.2f} s, "
          f"fast {ours_start:.2f} s")

    with tempfile.TemporaryDirectory() as d:
        slow_s = fast_s = float("inf")
        for i in range(a.repeats):
            slow_s = min(slow_s, filter_step("datatrove", rows, a.step_copies, Path(d) / str(i))[0])
            step_s, rss = filter_step("fast", rows, a.step_copies, Path(d) / str(i))
            fast_s = min(fast_s, step_s)
        rss_1x = rss if a.step_copies == 1 else filter_step("fast", rows, 1, Path(d))[1]
        rss_nx = filter_step("fast", rows, a.rss_copies, Path(d))[1]
        if a.corpus:
            corpus_s, corpus_rss = filter_step("fast", rows, 1, Path(d), a.corpus)
    step_tokens = sample_tokens * a.step_copies
    print(f"{'filter step, datatrove':34}{step_tokens / slow_s:>18,.0f}{1:>8.1f}")
    print(f"{'filter step, fast (cold tasks)':34}{step_tokens / fast_s:>18,.0f}{slow_s / fast_s:>8.1f}"
          f"   (goal >= 300,000 tokens/s; fastest of {a.repeats})")
    print(f"peak RSS of the fast filter job: 1x {rss_1x:,.0f} MB, {a.rss_copies}x {rss_nx:,.0f} MB  (goal: flat)")
    if a.corpus:
        corpus_tokens = sum(len(e.ids) for f in sorted(a.corpus.glob("*.parquet"))
                            for e in tok.encode_batch_fast([t for t in pq.read_table(f, columns=["content"])["content"]
                                                            .to_pylist() if t]))
        print(f"{'filter step, fast, ' + a.corpus.name:34}{corpus_tokens / corpus_s:>18,.0f}{'':>8}"
              f"   ({corpus_tokens:,} tokens, one task; peak RSS {corpus_rss:,.0f} MB)")


if __name__ == "__main__":
    main()
