"""`--dedup minhash` (opt-in): near-duplicate removal across tasks, exact copies included."""

from __future__ import annotations

import collections
from pathlib import Path

import pyarrow.parquet as pq
import pytest

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
