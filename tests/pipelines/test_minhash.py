"""`--dedup minhash` (opt-in): near-duplicate removal across tasks, exact copies included, the same for any
`--dedup-tasks`."""

from __future__ import annotations

import collections
import random
import string
import struct
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.config import DEFAULT_FILTERS
from shards import manifest as manifest_io

pytestmark = pytest.mark.slow


def test_minhash_removes_copies_across_tasks(tmp_path, refinedweb):
    out = tmp_path / "out"
    proc = refinedweb("all", "--input", "sample", "--output", str(out), "--dedup", "minhash", "--tasks", "2", "--limit-files", "2")
    assert "minhash_dedup" in proc.stdout
    m = manifest_io.read(str(out))
    assert m["dedup"]["method"].startswith("MinHash") and m["dedup"]["removed"] > 0
    kept = [r for f in sorted(Path(out, "filtered").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    removed = pq.read_table(out / "removed" / "minhash_dedup").to_pylist()
    assert len(removed) == m["dedup"]["removed"]
    texts = collections.Counter(" ".join(r["text"].lower().split()) for r in kept)
    assert max(texts.values()) == 1
    assert all(" ".join(r["text"].lower().split()) in texts for r in removed)  # one copy of each was kept
    assert m["documents"]["kept"] == len(kept) == sum(b["documents"] for b in m["buckets"].values()) + \
        m["validation"]["documents"]


def near_duplicate_corpus(raw: Path, files: int = 3, clusters: int = 40, seed: int = 0) -> None:
    """RefinedWeb-schema parquet: clusters of 6 documents, each a 60-word window of one text shifted
    by 4 words from the last (neighbours share ~87 % of their 5-grams, the ends ~47 %: chains A~B,
    B~C, A≁C), members spread over the files; plus exact copies and unrelated documents."""
    rng = random.Random(seed)
    vocab = ["".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 9))) for _ in range(3000)]
    docs = []
    for _ in range(clusters):
        words = rng.choices(vocab, k=60 + 5 * 4)
        docs += [" ".join(words[4 * i:4 * i + 60]) for i in range(6)]
    docs += [" ".join(rng.choices(vocab, k=60)) for _ in range(60)]
    docs += rng.sample(docs, 20)
    rng.shuffle(docs)
    raw.mkdir(parents=True)
    for f in range(files):
        part = docs[f::files]
        pq.write_table(pa.table({"content": part, "url": [f"https://example.org/{f}/{i}" for i in range(len(part))],
                                 "timestamp": ["2023-01-01T00:00:00Z"] * len(part), "dump": ["CC-MAIN-2023"] * len(part),
                                 "segment": ["0"] * len(part)}), raw / f"part-{f}.parquet")


def components(pairs: list[tuple[tuple[int, int], tuple[int, int]]]) -> list[set]:
    graph = collections.defaultdict(set)
    for a, b in pairs:
        graph[a].add(b)
        graph[b].add(a)
    seen, found = set(), []
    for start in graph:
        if start not in seen:
            todo, members = [start], set()
            while todo:
                x = todo.pop()
                if x not in members:
                    members.add(x)
                    todo += graph[x]
            seen |= members
            found.append(members)
    return [(c, {(a, b) for a in c for b in graph[a]}) for c in found]


def test_three_dedup_tasks_give_the_output_of_one(tmp_path, refinedweb):
    outs = {}
    for tasks in (1, 3):
        out = tmp_path / f"out{tasks}"
        near_duplicate_corpus(out / "raw")
        refinedweb("filter", "--output", str(out), "--tasks", "3", "--workers", "1", "--dedup", "minhash",
                   "--dedup-tasks", str(tasks), *(a for f in DEFAULT_FILTERS for a in ("--disable", f)))
        outs[tasks] = out
    rows = {t: {d: sorted((r["id"], r["text"]) for f in sorted(Path(o, d).glob("*.parquet"))
                          for r in pq.read_table(f).to_pylist())
                for d in ("filtered", "removed/minhash_dedup")} for t, o in outs.items()}
    assert rows[3] == rows[1]
    assert len(rows[1]["removed/minhash_dedup"]) > 150 and len(rows[1]["filtered"]) > 100
    pairs = [((a, b), (c, d)) for f in Path(outs[1], "dedup", "buckets").glob("*.dups")
             for a, b, c, d in struct.iter_unpack("<4I", f.read_bytes())]
    chains = [c for c, edges in components(pairs)
              if len({rank for rank, _ in c}) == 3 and any((a, b) not in edges for a in c for b in c if a != b)]
    assert len(chains) > 10, "the case under test: chains A~B~C with A≁C spanning the three tasks' filter ranks"
    rounds = list(Path(outs[3], "logs", "minhash_cluster").glob("round_*"))
    assert len(rounds) > 2 and len(list(Path(outs[3], "dedup", "buckets").glob("*.dups"))) == 14 * 3
