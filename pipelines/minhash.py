"""MinHash clustering sharded over `--dedup-tasks` (N): no task holds the whole corpus's duplicate pairs.

    buckets   14×N tasks: Datatrove's `MinhashDedupBuckets`, N hash ranges per LSH bucket → pairs (`*.dups`)
    cluster   N tasks per round, rounds until stable: connected components of the pairs
    removals  N tasks: `duplicates/<filter rank:06d>.remove`, read by Datatrove's `MinhashDedupFilter`

Datatrove 0.9's `MinhashDedupCluster` is one task (`world_size == 1`) holding a union-find over every
pair of the corpus. Here the components are found by the alternating algorithm of Kiveris et al.,
"Connected Components in MapReduce and Beyond" (SoCC 2014): round 1, 3, … apply large-star, round
2, 4, … small-star, each a local operation on the edges of one node, until every component is a
star around its smallest document (O(log² n) rounds; a few in practice). A document is a node
`filter rank << 32 | index in that rank's candidates`, and cluster task t owns the nodes of filter
ranks r ≡ t (mod N): it receives, as one file per sending task, the edges at its nodes.

Invariant: the document kept of each cluster (connected component of the pairs) is its smallest
(filter rank, index), whatever N; every other member is removed. (Datatrove's union-by-size keeps
a root that depends on the order of the pairs, which N would change.)

Memory of a cluster or removals task: ≈ 130 bytes × the pairs at its documents (measured peak of a
round: 57 bytes per stored direction of a pair in a large-star round, 132 per pair in a small-star
round). The rounds never add pairs, so that is about 2·P/N for the P pairs of the buckets stage
(its `total_matches`; P ≤ 14 × near-duplicate documents) over N tasks, except that a cluster's
smallest document ends holding a pair to every member. A buckets task holds one buffered reader
per filter task.
"""

from __future__ import annotations

import numpy as np
from datatrove.data import DocumentsPipeline
from datatrove.io import DataFolderLike, get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import MinhashDedupBuckets, _mersenne_prime

from pipelines.executors import Rounds

PAIR = np.dtype("<u8")  # edges are stored as little-endian (node, node) uint64 pairs


def read(folder, name: str) -> bytes:
    with folder.open(name, "rb") as f:
        return f.read()


def node(rank: np.ndarray, index: np.ndarray) -> np.ndarray:
    return (rank.astype(np.uint64) << np.uint64(32)) | index.astype(np.uint64)


def owner(nodes: np.ndarray, tasks: int) -> np.ndarray:
    """The cluster task that holds a node's edges: its filter rank modulo the number of tasks."""
    return (nodes >> np.uint64(32)) % np.uint64(tasks)


def sorted_unique(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Directed edges (u → v) without repeats, sorted by (u, v)."""
    order = np.lexsort((v, u))
    u, v = u[order], v[order]
    keep = np.ones(len(u), bool)
    keep[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
    return u[keep], v[keep]


def groups(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start of each node's run, run index of each edge) for edges sorted by u."""
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    return starts, np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(u)]))


def large_star(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every node links its larger neighbours to the smallest of itself and its neighbours.
    Input: sorted unique edges holding both directions of every edge at this task's nodes."""
    if not len(u):
        return u, v
    starts, run = groups(u)
    smallest = np.minimum(u[starts], v[starts])[run]  # v is sorted within a run: v[start] is the least
    larger = v > u
    return v[larger], smallest[larger]


def small_star(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every node links itself and its smaller neighbours to the smallest of them.
    Input: sorted unique edges (u → v) with v < u, stored at u only."""
    if not len(u):
        return u, v
    starts, run = groups(u)
    smallest = v[starts]
    linked = v != smallest[run]
    return np.r_[v[linked], u[starts]], np.r_[smallest[run][linked], smallest]


def is_star_forest(u: np.ndarray, v: np.ndarray) -> bool:
    """Whether no node both has a smaller neighbour and another neighbour: then every component
    is a star whose centre is its smallest node (large-star input: both directions at each node)."""
    if not len(u):
        return True
    starts, _ = groups(u)
    smaller = np.add.reduceat((v < u).astype(np.int64), starts)
    degree = np.diff(np.r_[starts, len(u)])
    return not np.any((smaller > 0) & (degree > 1))


class MinhashBuckets(MinhashDedupBuckets):
    """Datatrove's bucket stage, with the hash ranges of a bucket's workers cut at quantiles of its
    largest signature file (Datatrove cuts at those of the first file, and fails when that filter
    task kept fewer documents than there are workers). Any cut gives the same pairs: equal signatures
    share their first hash, so they fall in one range."""

    def get_worker_hash_range(self, sig_files, rank, world_size):
        workers = world_size // self.config.num_buckets
        worker = rank % workers
        top = _mersenne_prime if self.config.hash_config.precision == 64 else self.config.hash_config.max
        fmt = np.dtype(f"<u{self.config.hash_config.precision // 8}")
        line = self.config.hashes_per_bucket * fmt.itemsize + 4
        sizes = [self.input_folder.size(f) for f in sig_files]
        lines = max(sizes, default=0) // line

        def cut(k: int) -> int:
            if k == 0:
                return 0
            if k == workers or not lines:
                return top
            with self.input_folder.open(sig_files[sizes.index(max(sizes))], "rb") as f:
                f.seek(line * (lines * k // workers))
                return int(np.frombuffer(f.read(fmt.itemsize), fmt)[0])

        return cut(worker), cut(worker + 1)


class ClusterFiles:
    """Where the rounds keep their edges and star checks, under one folder:
    `edges/<round>/<receiving task>/<sending task>.bin`, `stars/<round>/<task>` (b"1": star forest)."""

    def __init__(self, folder: DataFolderLike, pairs_folder: DataFolderLike, tasks: int):
        self.folder, self.pairs = get_datafolder(folder), get_datafolder(pairs_folder)
        self.tasks = tasks

    def read(self, round: int, task: int) -> tuple[np.ndarray, np.ndarray]:
        """Sorted unique edges (u → v) task `task` receives in `round` (round 0: the pairs of every
        N-th `.dups` file, as the bucket tasks wrote them, not yet sent to their owners)."""
        if round == 0:
            files = sorted(self.pairs.list_files(glob_pattern="*.dups"))[task::self.tasks]
            rows = [np.frombuffer(read(self.pairs, f), "<u4").reshape(-1, 4) for f in files]
            rows = np.concatenate(rows) if rows else np.empty((0, 4), "<u4")
            return node(rows[:, 0], rows[:, 1]), node(rows[:, 2], rows[:, 3])
        files = self.folder.list_files(subdirectory=f"edges/{round:03d}/{task:04d}")
        pairs = [np.frombuffer(read(self.folder, f), PAIR).reshape(-1, 2) for f in files]
        pairs = np.concatenate(pairs) if pairs else np.empty((0, 2), PAIR)
        return sorted_unique(pairs[:, 0], pairs[:, 1])

    def send(self, round: int, task: int, a: np.ndarray, b: np.ndarray) -> None:
        """Write undirected edges (a, b) to the tasks that need them in `round`: both directions for
        large-star (odd rounds), (larger → smaller) for small-star."""
        if round % 2:
            u, v = np.r_[a, b], np.r_[b, a]
        else:
            u, v = np.maximum(a, b), np.minimum(a, b)
        keep = u != v
        u, v = sorted_unique(u[keep], v[keep])
        to = owner(u, self.tasks)
        for dest in range(self.tasks):
            mine = to == dest
            with self.folder.open(f"edges/{round:03d}/{dest:04d}/{task:04d}.bin", "wb") as f:
                f.write(np.stack([u[mine], v[mine]], axis=1).astype(PAIR).tobytes())

    def mark(self, round: int, task: int, star: bool) -> None:
        with self.folder.open(f"stars/{round:03d}/{task:04d}", "wb") as f:
            f.write(b"1" if star else b"0")

    def stable(self, round: int) -> bool:
        """Every task found a star forest at its nodes in `round` (a large-star round)."""
        names = [f"stars/{round:03d}/{t:04d}" for t in range(self.tasks)]
        return bool(round % 2) and all(self.folder.exists(n) and read(self.folder, n) == b"1" for n in names)

    def last_round(self) -> int:
        """The first round that found stars everywhere: its edges are the final stars."""
        rounds = sorted({int(f.split("/")[1]) for f in self.folder.list_files(subdirectory="stars")})
        for r in rounds:
            if self.stable(r):
                return r
        raise FileNotFoundError(f"{self.folder.resolve_paths('stars')}: no round of the `minhash_cluster` stage "
                                "found stars at every task; rerun the `filter` step to finish it")


class ClusterRound(PipelineStep):
    """One round of one cluster task: read the edges at its nodes, apply the round's operation,
    send the result to the tasks that own its nodes (round 0 only routes Datatrove's pairs)."""

    type = "🫂 - DEDUP"
    name = "🎯 MinHash cluster round"

    def __init__(self, files: ClusterFiles, round: int):
        super().__init__()
        self.files, self.round = files, round

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        assert world_size == self.files.tasks, f"{world_size=} but the files are split for {self.files.tasks}"
        with self.track_time():
            u, v = self.files.read(self.round, rank)
            self.stat_update("edges", value=len(u))
            if self.round % 2:
                self.files.mark(self.round, rank, is_star_forest(u, v))
                u, v = large_star(u, v)
            elif self.round:
                u, v = small_star(u, v)
            self.files.send(self.round + 1, rank, u, v)
        yield from ()


class Clustering(Rounds):
    """The `minhash_cluster` stage: `ClusterRound` r for r = 0, 1, … until a large-star round finds
    stars at every task."""

    def __init__(self, pairs_folder: DataFolderLike, folder: DataFolderLike, tasks: int):
        self.files = ClusterFiles(folder, pairs_folder, tasks)

    def pipeline(self, round: int) -> list:
        return [ClusterRound(self.files, round)]

    def stable(self, round: int) -> bool:
        return self.files.stable(round)


class Removals(PipelineStep):
    """Task t writes, for every filter rank r ≡ t (mod N), the sorted indexes of rank r's documents
    that are not the smallest of their cluster (leaves of the final stars), as `<r:06d>.remove`."""

    type = "🫂 - DEDUP"
    name = "🎯 MinHash removals"

    def __init__(self, files: ClusterFiles, signatures: DataFolderLike, output_folder: DataFolderLike):
        super().__init__()
        self.files, self.signatures = files, get_datafolder(signatures)
        self.output_folder = get_datafolder(output_folder)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with self.track_time():
            assert world_size == self.files.tasks, f"{world_size=} but the files are split for {self.files.tasks}"
            u, v = self.files.read(self.files.last_round(), rank)
            leaves = u[v < u]
            assert len(np.unique(leaves)) == len(leaves), "a leaf of a star has one neighbour"
            ranks = {int(f.split("/")[-1].split(".")[0]) for f in self.signatures.list_files(subdirectory="bucket_000")}
            for r in sorted(r for r in ranks if r % world_size == rank):
                mine = np.sort(leaves[(leaves >> np.uint64(32)) == np.uint64(r)] & np.uint64(0xFFFFFFFF))
                with self.output_folder.open(f"{r:06d}.remove", "wb") as f:
                    f.write(mine.astype("<u4").tobytes())
                self.stat_update("to_remove", value=len(mine))
        yield from ()
