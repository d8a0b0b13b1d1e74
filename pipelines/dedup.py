"""Deduplication across all tasks: exact on normalised content (default) or MinHash (opt-in).

    filter tasks:  … filters → candidates/<rank>.parquet + signatures
    exact:         1 task finds duplicate signatures (keeps the first copy)
    minhash:       one task per LSH bucket finds candidate pairs, then 1 task clusters them
    filter tasks:  candidates/<rank>.parquet → drop duplicates → OUT/filtered/<rank>.parquet

Invariant: of every group of duplicates (equal normalised content, or for MinHash near-equal word
5-grams, which includes equal content), exactly one reaches `OUT/filtered/`; the others go to
`OUT/removed/<method>_dedup/`. The last stage of rank r re-reads exactly the candidates rank r
wrote, in the same order, which is what the duplicate indexes refer to.
"""

from __future__ import annotations

import unicodedata

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.dedup.exact_dedup import (
    ExactDedupConfig,
    ExactDedupFilter,
    ExactDedupSignature,
    ExactFindDedups,
)
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.readers import ParquetReader

from shards.layout import DEDUP, join



def normalised_content(doc: Document) -> str:
    """What counts as "the same document": NFKC, lower case, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", doc.text).lower().split())


CONFIG = ExactDedupConfig(content_getter=normalised_content)
MINHASH = MinhashConfig()  # 5-grams, 14 buckets x 8 hashes (FineWeb's setting)


def folders(out: str) -> dict[str, str]:
    return {k: join(out, DEDUP, k) for k in ("candidates", "signatures", "buckets", "duplicates")}


class RankFileReader(ParquetReader):
    """Reads only `<rank:05d>.parquet`, the file the same rank wrote in the previous stage."""

    name = "📒 own candidates"

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        name = f"{rank:05d}.parquet"
        if self.data_folder.exists(name):
            for doc in self.read_files_shard([name]):
                self.update_doc_stats(doc)
                yield doc


def signature_step(out: str, method: str):
    f = folders(out)
    if method == "minhash":
        return MinhashDedupSignature(output_folder=f["signatures"], config=MINHASH)
    return ExactDedupSignature(output_folder=f["signatures"], config=CONFIG)


def find_stages(out: str, method: str) -> list[tuple[str, list, int]]:
    """(stage name, pipeline, tasks) that turn all signatures into per-rank duplicate lists."""
    f = folders(out)
    if method == "minhash":
        return [
            ("minhash_buckets", [MinhashDedupBuckets(f["signatures"], f["buckets"], config=MINHASH)],
             MINHASH.num_buckets),
            ("minhash_cluster", [MinhashDedupCluster(f["buckets"], f["duplicates"], config=MINHASH)], 1),
        ]
    return [("dedup_find", [ExactFindDedups(f["signatures"], f["duplicates"], config=CONFIG)], 1)]


def filter_steps(out: str, method: str, exclusion_writer) -> list:
    f = folders(out)
    drop = (MinhashDedupFilter(f["duplicates"], exclusion_writer=exclusion_writer) if method == "minhash"
            else ExactDedupFilter(f["duplicates"], config=CONFIG, exclusion_writer=exclusion_writer))
    return [RankFileReader(f["candidates"], text_key="text", id_key="id"), drop]
