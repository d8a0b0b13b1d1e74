"""`--materialize`: the mixture's exact per-bucket counts, uniform draws inside a bucket, and memory
that does not grow with the number of documents (it streams)."""

from __future__ import annotations

import tracemalloc
from collections import Counter

import numpy as np
from streaming import MDSWriter, StreamingDataset

from pipelines.mix import materialize, quotas
from shards import mds
from shards.layout import join

LENGTHS = {"mds/short": 6, "mds/long": 40}


def write_bucket(out: str, rel: str, documents: int, length: int) -> dict:
    with MDSWriter(out=join(out, rel, "00000"), columns=mds.columns("uint16"), compression=mds.COMPRESSION,
                   hashes=mds.HASHES, size_limit="64kb") as w:
        for i in range(documents):
            w.write({"input_ids": np.full(length, i % 60000, dtype=np.uint16), "id": f"{rel}-{i}",
                     "num_tokens": length})
    mds.merge(join(out, rel), [0])
    return {"path": rel, "documents": documents, "tokens": documents * length}


def synthetic(out: str, short_docs: int, long_docs: int = 200) -> dict:
    return {rel: write_bucket(out, rel, n, LENGTHS[rel]) for rel, n in (("mds/short", short_docs), ("mds/long", long_docs))}


def written_ids(out: str) -> list[str]:
    ds = StreamingDataset(local=join(out, "mds", "materialized", "mix"), batch_size=1, shuffle=False)
    ids = [ds[i]["id"] for i in range(len(ds))]
    del ds
    return ids


ITEMS = [{"path": "mds/short", "proportion": 0.25}, {"path": "mds/long", "proportion": 0.75}]


def test_counts_are_the_mixtures_and_draws_are_uniform(tmp_path):
    out = str(tmp_path / "out")
    info = synthetic(out, short_docs=1000)
    picks = Counter()
    for seed in range(20):
        record = materialize(out, "mix", ITEMS, info, 12000, seed, "uint16")
        ids = written_ids(out)
        per_bucket = Counter(i.rsplit("-", 1)[0] for i in ids)
        assert per_bucket == {"mds/short": record["per_bucket"]["mds/short"], "mds/long": record["per_bucket"]["mds/long"]}
        assert abs(per_bucket["mds/long"] / len(ids) - 0.75) <= 1 / len(ids)  # the proportion, to rounding
        assert record["tokens"] == sum(LENGTHS[i.rsplit("-", 1)[0]] for i in ids) >= 12000 * 0.95
        long = Counter(i for i in ids if i.startswith("mds/long"))
        assert set(long.values()) <= {1, 2} and len(long) == 200, "a bucket drawn past its size repeats evenly"
        picks.update(i for i in ids if i.startswith("mds/short"))
    # short documents are drawn without replacement, each with the same chance: counts over 20 seeds are
    # Binomial(20, q); a chi-square test of that against the observed spread
    q = record["per_bucket"]["mds/short"] / 1000
    observed = np.array([picks.get(f"mds/short-{i}", 0) for i in range(1000)])
    assert 0 < q < 1 and observed.sum() == 20 * record["per_bucket"]["mds/short"]
    chi2 = ((observed - 20 * q) ** 2 / (20 * q * (1 - q))).sum()
    assert 850 < chi2 < 1150, chi2  # ~ chi-square with 1000 degrees of freedom (sd ~45)


def test_quotas_are_exact_proportions():
    for props in ([0.2, 0.4, 0.4], [0.5, 0.5], [0.01, 0.99]):
        counts = quotas(props, [100.0] * len(props), 1_000_000)
        total = sum(counts)
        assert total == 10_000 and all(abs(c - p * total) < 1 for c, p in zip(counts, props))


def test_memory_does_not_grow_with_the_documents(tmp_path):
    peaks = []
    for n in (10_000, 100_000):
        out = str(tmp_path / f"out{n}")
        info = synthetic(out, short_docs=n)
        tracemalloc.start()
        record = materialize(out, "mix", [{"path": "mds/short", "proportion": 1.0}], info, 60_000, 0, "uint16")
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert record["documents"] == 10_000
    # holding a Python object per document (as a list of draws did) costs > 8 MB more at 100k documents
    assert peaks[1] < peaks[0] * 1.3 + 2**20, peaks
