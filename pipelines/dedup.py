"""Deduplication across all tasks: exact on normalised content (default) or MinHash (opt-in).

    filter tasks:  … filters → candidates/<rank>.parquet + signatures (split into --dedup-tasks hash ranges)
    exact:         --dedup-tasks tasks, one per hash range, find duplicate signatures (first copy kept)
    minhash:       --dedup-tasks hash ranges of each LSH bucket find candidate pairs, then --dedup-tasks
                   tasks cluster them in rounds and write the removals (pipelines/minhash.py)
    filter tasks:  candidates/<rank>.parquet → drop duplicates → OUT/filtered/<rank>.parquet

Invariant: of every group of duplicates (equal normalised content, or for MinHash near-equal word
5-grams, which includes equal content), exactly one reaches `OUT/filtered/`; the others go to
`OUT/removed/<method>_dedup/`. The last stage of rank r re-reads exactly the candidates rank r
wrote, in the same order, which is what the duplicate indexes refer to. For exact dedup the copy
kept is the first in (filter rank, document) order, for MinHash the first of its cluster, whatever
the number of finder tasks.
"""

from __future__ import annotations

import heapq
import struct
import unicodedata

from datatrove.data import Document, DocumentsPipeline
from datatrove.io import DataFolderLike, get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.exact_dedup import ExactDedupConfig, ExactDedupFilter, ExactDedupSignature, read_sigs
from datatrove.utils.typeshelper import ExtensionHelperSD
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupFilter, MinhashDedupSignature
from datatrove.pipeline.readers import ParquetReader

from pipelines import minhash
from shards.layout import DEDUP, join


def normalised_content(doc: Document) -> str:
    """What counts as "the same document": NFKC, lower case, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", doc.text).lower().split())


CONFIG = ExactDedupConfig(content_getter=normalised_content)
MINHASH = MinhashConfig()  # 5-grams, 14 buckets x 8 hashes (FineWeb's setting)


def folders(out: str) -> dict[str, str]:
    return {k: join(out, DEDUP, k) for k in ("candidates", "signatures", "buckets", "cluster", "duplicates")}


class ExactFindDuplicates(PipelineStep):
    """Exact dedup, stage 2, for one hash range (task r of `--dedup-tasks` reads `signatures/r/`):
    merges the sorted signature files of every filter task in one total order — hash, highest
    priority, filter rank, document index — and marks every copy after the first as a duplicate.

    Datatrove's `ExactFindDedups` breaks ties between filter tasks by heap position, which depends
    on the other hashes in the heap; a total order makes the result independent of how many tasks
    split the ranges. Writes Datatrove's files (`duplicates/r/<filter rank>.c4_dup`, `.c4_counts`),
    which `ExactDedupFilter` reads. Memory: one buffered reader per filter task."""

    type = "🫂 - DEDUPS"
    name = "💥 exact dedup: find duplicates (one hash range)"

    def __init__(self, data_folder: DataFolderLike, output_folder: DataFolderLike, config: ExactDedupConfig):
        super().__init__()
        self.data_folder, self.output_folder = get_datafolder(data_folder), get_datafolder(output_folder)
        self.config = config

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        sig = ExtensionHelperSD.stage_1_signature
        files = self.data_folder.list_files(subdirectory=f"{rank:04d}", glob_pattern=f"*{sig}")
        streams = [((s.hash_value, -s.priority, int(s.file_stem), s.doc_id)
                    for s in read_sigs(f, i, self.config.hash_config))
                   for i, f in enumerate(self.data_folder.open_files(files))]
        doc_id, doc_count = struct.Struct("<I"), struct.Struct("<II")
        out = self.output_folder.get_output_file_manager(mode="wb")
        first, copies = None, 0

        def close_group():
            if first is not None and copies:
                out.write(f"{rank:05d}/{first[2]:05d}{ExtensionHelperSD.stage_2_counts}", doc_count.pack(first[3], copies))

        with self.stats.time_stats:
            for key in heapq.merge(*streams):
                self.stat_update("signatures")
                if first is not None and key[0] == first[0]:
                    out.write(f"{rank:05d}/{key[2]:05d}{ExtensionHelperSD.stage_2_duplicates}", doc_id.pack(key[3]))
                    copies += 1
                    self.stat_update("duplicates")
                else:
                    close_group()
                    first, copies = key, 0
            close_group()
        out.close()
        yield from ()


class RankFileReader(ParquetReader):
    """Reads only `<rank:05d>.parquet`, the file the same rank wrote in the previous stage."""

    name = "📒 own candidates"

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        name = f"{rank:05d}.parquet"
        if self.data_folder.exists(name):
            for doc in self.read_files_shard([name]):
                self.update_doc_stats(doc)
                yield doc


def signature_step(out: str, method: str, tasks: int):
    """`tasks`: how many finder tasks split the signatures by hash range (exact dedup; MinHash
    signatures are split when read)."""
    f = folders(out)
    if method == "minhash":
        return MinhashDedupSignature(output_folder=f["signatures"], config=MINHASH)
    return ExactDedupSignature(output_folder=f["signatures"], config=CONFIG, finder_workers=tasks)


def find_stages(out: str, method: str, tasks: int) -> list[tuple[str, list | minhash.Clustering, int]]:
    """(stage name, pipeline, tasks) that turn all signatures into per-rank duplicate lists;
    `tasks` (`--dedup-tasks`) splits each stage."""
    f = folders(out)
    if method == "minhash":
        clustering = minhash.Clustering(f["buckets"], f["cluster"], tasks)
        return [
            ("minhash_buckets", [minhash.MinhashBuckets(f["signatures"], f["buckets"], config=MINHASH)],
             MINHASH.num_buckets * tasks),
            ("minhash_cluster", clustering, tasks),
            ("minhash_removals", [minhash.Removals(clustering.files, f["signatures"], f["duplicates"])], tasks),
        ]
    return [("dedup_find", [ExactFindDuplicates(f["signatures"], f["duplicates"], config=CONFIG)], tasks)]


def filter_steps(out: str, method: str, exclusion_writer) -> list:
    f = folders(out)
    drop = (MinhashDedupFilter(f["duplicates"], exclusion_writer=exclusion_writer) if method == "minhash"
            else ExactDedupFilter(f["duplicates"], config=CONFIG, exclusion_writer=exclusion_writer))
    return [RankFileReader(f["candidates"], text_key="text", id_key="id"), drop]
