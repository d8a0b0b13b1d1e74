"""Sharded MinHash clustering (pipelines/minhash.py) on hand-made pairs: for any number of tasks, every
connected component keeps exactly its smallest (filter rank, index) document."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from datatrove.data import Document
from datatrove.pipeline.dedup.minhash import MinhashDedupCluster, MinhashDedupSignature

from pipelines.dedup import MINHASH
from pipelines.minhash import ClusterRound, Clustering, MinhashBuckets, Removals
from tests.pipelines.test_minhash import near_duplicate_corpus

Doc = tuple[int, int]  # (filter rank, index)


def expected_removals(pairs: list[tuple[Doc, Doc]]) -> set[Doc]:
    """Plain union-find: every document of a component but its smallest."""
    parent: dict[Doc, Doc] = {}

    def root(x: Doc) -> Doc:
        parent.setdefault(x, x)
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = root(a), root(b)
        parent[max(ra, rb)] = min(ra, rb)
    return {x for x in parent if root(x) != x}


def cluster(pairs: list[tuple[Doc, Doc]], tasks: int, folder: Path, ranks: int) -> tuple[set[Doc], int]:
    """Run the stage as the executor would (every task of a round, round after round, then the
    removals); returns (removed documents, rounds run)."""
    buckets, signatures = folder / "buckets", folder / "signatures" / "bucket_000"
    buckets.mkdir(parents=True)
    signatures.mkdir(parents=True)
    for r in range(ranks):
        (signatures / f"{r:05d}.minhash.sig").touch()
    for i in range(14):  # pairs spread over the buckets' files, as Datatrove writes them
        rows = pairs[i::14]
        (buckets / f"{i:05d}_00.dups").write_bytes(b"".join(struct.pack("<4I", *a, *b) for a, b in rows))
    clustering = Clustering(str(buckets), str(folder / "cluster"), tasks)
    for r in range(100):
        for t in range(tasks):
            list(ClusterRound(clustering.files, r).run(None, t, tasks))
        if clustering.stable(r):
            break
    for t in range(tasks):
        list(Removals(clustering.files, str(folder / "signatures"), str(folder / "duplicates")).run(None, t, tasks))
    removed = set()
    for f in (folder / "duplicates").glob("*.remove"):
        data = f.read_bytes()
        ids = list(struct.unpack(f"<{len(data) // 4}I", data))
        assert ids == sorted(ids), "MinhashDedupFilter reads the indexes in order"
        removed |= {(int(f.stem), i) for i in ids}
    assert len(list((folder / "duplicates").glob("*.remove"))) == ranks, "one list per filter rank"
    return removed, r + 1


def chain(docs: list[Doc]) -> list[tuple[Doc, Doc]]:
    return list(zip(docs, docs[1:]))


def test_chains_across_ranks_keep_their_smallest_document(tmp_path):
    # A~B, B~C, A≁C, each in another filter rank; the smallest, (0, 7), is in the middle of the chain
    pairs = chain([(2, 1), (0, 7), (1, 4), (2, 9), (1, 0)]) + [((3, 2), (3, 5)), ((3, 5), (3, 2))]
    for tasks in (1, 2, 3, 4):
        removed, _ = cluster(pairs, tasks, tmp_path / str(tasks), ranks=4)
        assert removed == {(2, 1), (1, 4), (2, 9), (1, 0), (3, 5)}, tasks


def test_random_graphs_give_the_same_removals_for_any_number_of_tasks(tmp_path):
    rng = random.Random(0)
    docs = [(rng.randrange(6), rng.randrange(1000)) for _ in range(600)]
    pairs = chain(docs[:80])  # a long path: many rounds
    pairs += [(docs[100], d) for d in docs[101:160]]  # a large star around a document that is not the least
    pairs += [(rng.choice(docs[160:]), rng.choice(docs[160:])) for _ in range(300)]  # random, loops and repeats
    pairs += [(b, a) for a, b in pairs[:50]]  # pairs seen from both ends
    expected = expected_removals(pairs)
    assert len(expected) > 300
    rounds = {}
    for tasks in (1, 3, 5):
        removed, rounds[tasks] = cluster(pairs, tasks, tmp_path / str(tasks), ranks=6)
        assert removed == expected, tasks
    assert min(rounds.values()) > 3, "the case under test: components resolved over several rounds"
    MinhashDedupCluster(str(tmp_path / "1" / "buckets"), str(tmp_path / "datatrove")).run(None, 0, 1)
    datatrove = sum(f.stat().st_size // 4 for f in (tmp_path / "datatrove").glob("*.remove"))
    assert datatrove == len(expected), "Datatrove's single-task union-find finds the same clusters"


@pytest.mark.parametrize("tasks", [1, 3])
def test_no_pairs_remove_nothing(tmp_path, tasks):
    removed, rounds = cluster([], tasks, tmp_path, ranks=2)
    assert removed == set() and rounds == 2


def test_bucket_hash_ranges_find_the_pairs_of_one_range(tmp_path):
    """Filter rank 0 kept one document, fewer than the 3 workers of a bucket (Datatrove's own cut
    fails there); split or not, the bucket tasks find the same pairs."""
    near_duplicate_corpus(tmp_path / "raw", files=1, clusters=10)
    texts = pq.read_table(tmp_path / "raw" / "part-0.parquet").column("content").to_pylist()
    sig = MinhashDedupSignature(str(tmp_path / "sig"), config=MINHASH)
    for rank, part in enumerate((texts[:1], texts[1:])):
        sig.run((Document(text=t, id=str(i)) for i, t in enumerate(part)), rank, 2)
    found = {}
    for workers in (1, 3):
        for rank in range(14 * workers):
            MinhashBuckets(str(tmp_path / "sig"), str(tmp_path / f"dups{workers}"), config=MINHASH).run(None, rank, 14 * workers)
        found[workers] = sorted(p for f in (tmp_path / f"dups{workers}").glob("*.dups")
                                for p in struct.iter_unpack("<4I", f.read_bytes()))
        assert len(list((tmp_path / f"dups{workers}").glob("*.dups"))) == 14 * workers
    assert len(found[1]) > 0 and found[3] == found[1]
