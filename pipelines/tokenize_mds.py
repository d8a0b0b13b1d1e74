"""`tokenize`: filtered documents → whole-document token sequences in length-bucketed MDS shards.

Invariants: every document lands in exactly one place — `OUT/mds/val/` if
`shards.layout.is_validation(id)`, else the bucket holding its token count; task r writes only
`<bucket>/<r:05d>/` and clears those folders when it starts, so a rerun of a crashed task rewrites
them from scratch; a task calls `MDSWriter.finish()` (which writes its `index.json`) only when all
its documents are written, and `MergeIndexes` lists only tasks with a Datatrove completion marker,
each only when its indexes hold the documents its stats counted (else it names the marker to delete).

Memory: `MDSWriter` keeps its open shard in memory until it reaches `shard_size` (uncompressed), so a
task's peak RSS is bounded by its start-up RSS + `writer_memory_bound(edges, shard_size)`, whatever the
task's input size.
"""

from __future__ import annotations

import resource

import fsspec
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.batching import batched
from tqdm import tqdm

from pipelines.stats import stats_file, task_stats
from pipelines.tokenizer import load_tokenizer
from shards import mds
from shards.layout import MDS, VALIDATION, bucket_for, buckets, is_validation, join


def histogram_bin(num_tokens: int) -> int:
    """Exclusive upper edge of the power-of-two bin holding `num_tokens`: bins [2^(k-1), 2^k), half-open
    like the length buckets, so a power-of-two bucket edge never splits a bin."""
    return 1 << num_tokens.bit_length()


def targets(out: str, edges: tuple[int, ...]) -> dict[str, str]:
    """Name → folder of every place a document can go (the buckets, then validation)."""
    return {b.name: join(out, b.path) for b in buckets(edges)} | {VALIDATION: join(out, MDS, VALIDATION)}


def writer_memory_bound(edges: tuple[int, ...], shard_size: str) -> int:
    """Bytes a task's MDS writers hold at most: one open shard per target (buckets and validation),
    plus the one being joined and compressed at a flush."""
    from streaming.base.util import bytes_to_int

    return (len(buckets(edges)) + 2) * bytes_to_int(shard_size)


def completion_marker(logging_dir: str, rank: int) -> str:
    return join(logging_dir, "completions", f"{rank:05d}")


def completed_tasks(logging_dir: str) -> set[int]:
    """Tasks with a Datatrove completion marker (`<logging_dir>/completions/<rank:05d>`)."""
    fs, path = fsspec.core.url_to_fs(join(logging_dir, "completions"))
    if not fs.exists(path):
        return set()
    return {int(p.rsplit("/", 1)[-1]) for p in fs.ls(path, detail=False)}


class TokenizeToMDS(PipelineStep):
    name = "🔢 tokenize → MDS"
    type = "💾 - WRITER"

    def __init__(self, out: str, tokenizer: str, edges: tuple[int, ...], val_fraction: float,
                 batch_size: int, shard_size: str):
        super().__init__()
        self.out, self.tokenizer, self.edges = out, tokenizer, tuple(edges)
        self.val_fraction, self.batch_size, self.shard_size = val_fraction, batch_size, shard_size

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from streaming import MDSWriter

        tok = load_tokenizer(self.tokenizer)  # here, not in __init__: the pickled step stays light
        folders = {name: mds.task_folder(folder, rank) for name, folder in targets(self.out, self.edges).items()}
        for folder in folders.values():  # leftovers of a crashed attempt of this task
            fs, path = fsspec.core.url_to_fs(folder)
            if fs.exists(path):
                fs.rm(path, recursive=True)
        writers: dict[str, MDSWriter] = {}
        with tqdm(desc=f"tokenize (task {rank})", unit="doc") as progress:
            for batch in batched(data, self.batch_size):
                with self.track_time("batch"):
                    for doc, ids in zip(batch, tok.encode_batch([d.text for d in batch])):
                        n = len(ids)
                        target = VALIDATION if is_validation(doc.id, self.val_fraction) else bucket_for(n, self.edges).name
                        if target not in writers:
                            writers[target] = MDSWriter(
                                out=folders[target], columns=mds.columns(tok.dtype.name),
                                compression=mds.COMPRESSION, hashes=mds.HASHES, size_limit=self.shard_size,
                            )
                        writers[target].write({"input_ids": ids, "id": doc.id, "num_tokens": n})
                        self.stat_update(f"{target}/documents")
                        self.stat_update(f"{target}/tokens", value=n)
                        self.stat_update(f"{target}/hist/{histogram_bin(n)}")
                progress.update(len(batch))
        for writer in writers.values():
            writer.finish()
        self.stat_update("peak_rss_mb", value=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, unit="task")
        yield from ()


def disagreements(out: str, edges: tuple[int, ...], logging_dir: str, rank: int) -> list[str]:
    """How a completed tokenize task's indexes differ from its stats (`<target>/documents`); [] if they agree."""
    steps = task_stats(logging_dir, rank)
    if steps is None:
        return [f"it left no stats ({stats_file(logging_dir, rank)})"]
    writer = next((s for s in steps if s.name.endswith(TokenizeToMDS.name)), None)
    if writer is None:
        return [f"its stats ({stats_file(logging_dir, rank)}) have no `{TokenizeToMDS.name}` step"]
    problems = []
    for name, folder in targets(out, edges).items():
        counted, index = writer.get(f"{name}/documents"), join(mds.task_folder(folder, rank), mds.INDEX)
        fs, path = fsspec.core.url_to_fs(index)
        if not fs.exists(path):
            if counted:
                problems.append(f"{index} is missing, its stats count {counted} documents there")
            continue
        listed, _ = mds.summary(mds.read_index(mds.task_folder(folder, rank)))
        if listed != counted:
            problems.append(f"{index} lists {listed} documents, its stats count {counted}")
    return problems


class MergeIndexes(PipelineStep):
    """One `index.json` per bucket (and validation) over the completed tokenize tasks, each checked
    against its stats first: a completion marker is trusted only when the task's output is there."""

    name = "🗂️ merge MDS indexes"
    type = "💾 - WRITER"

    def __init__(self, out: str, edges: tuple[int, ...], tokenize_logs: str, tasks: int):
        super().__init__()
        self.out, self.edges, self.tokenize_logs, self.tasks = out, tuple(edges), tokenize_logs, tasks

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        done = completed_tasks(self.tokenize_logs)
        missing = sorted(set(range(self.tasks)) - done)
        if missing:
            raise ValueError(f"tokenize tasks {missing} did not complete; rerun the same command to resume them")
        bad = {r: p for r in sorted(done) if (p := disagreements(self.out, self.edges, self.tokenize_logs, r))}
        if bad:
            markers = [completion_marker(self.tokenize_logs, r) for r in bad]
            desc = "; ".join(f"task {r}: {', '.join(p)}" for r, p in bad.items())
            raise ValueError(f"tokenize tasks {sorted(bad)} have a completion marker but not the output their stats "
                             f"count ({desc}). Delete {' and '.join(markers)}, then rerun the same command: "
                             f"{'those tasks are' if len(bad) > 1 else 'that task is'} redone from scratch")
        for name, folder in targets(self.out, self.edges).items():
            fs, path = fsspec.core.url_to_fs(folder)
            present = [r for r in sorted(done) if fs.exists(f"{path}/{r:05d}/{mds.INDEX}")]
            _, shards = mds.summary(mds.merge(folder, present))
            self.stat_update(f"{name}/shards", value=shards)
        yield from ()
