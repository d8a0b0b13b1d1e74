"""Stage-2 mixtures beyond the closed form (tests/shards/test_mixture.py): any choice probabilities, per
document; and stock StreamingDataset drawing the pipeline's stage-2 streams in those proportions."""

from __future__ import annotations

import collections
import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st
from streaming import StreamingDataset

from shards import manifest as manifest_io
from shards import mds, mixture
from shards.layout import buckets
from shards.streams import mixture_streams

B = buckets((1024, 2048))


def per_document_neobert(counts: dict, choices) -> dict:
    """P(one given document of bucket b) under "pick a choice, then a document uniformly inside it"."""
    return {b: sum(p / sum(n for c, n in counts.items() if c.lo >= t) for t, p in choices if b.lo >= t)
            for b in counts}


@given(st.lists(st.integers(1, 10**9), min_size=3, max_size=3),
       st.lists(st.floats(0.01, 1.0), min_size=3, max_size=3))
def test_long_context_equals_per_batch_choice(ns, ws):
    counts = dict(zip(B, ns))
    choices = tuple(zip((0, 1024, 2048), (w / sum(ws) for w in ws)))
    props = mixture.long_context(counts, choices)
    assert sum(props.values()) == pytest.approx(1.0)
    neo = per_document_neobert(counts, choices)
    for b in B:
        assert props[b] / counts[b] == pytest.approx(neo[b], rel=1e-9)


def test_empty_choice_is_spread_and_bad_threshold_rejected():
    props = mixture.long_context(dict(zip(B, (10, 5, 0))))
    assert props[B[2]] == 0 and sum(props.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="bucket edge"):
        mixture.long_context(dict(zip(B, (1, 1, 1))), ((0, 0.5), (512, 0.5)))


def test_streaming_dataset_draws_stage2_proportions(sample_output, tmp_path):
    """Stock StreamingDataset over the stage-2 streams delivers documents in the mixture's proportions."""
    out = tmp_path / "out"
    shutil.copytree(sample_output, out)
    m = manifest_io.read(str(out))
    expected = m["mixtures"]["stage2"]["proportions"]
    ds = StreamingDataset(streams=mixture_streams(str(out), "stage2"), shuffle=True, shuffle_seed=1,
                          batch_size=1, epoch_size=20_000)
    ids = {name: set() for name in expected}
    for name in expected:
        folder = str(out / m["buckets"][name]["path"])
        for shard in mds.read_index(folder)["shards"]:
            ids[name] |= {s["id"] for s in mds.iter_samples(folder, shard, mds.read_shard(folder, shard))}
    drawn = collections.Counter(next(n for n, s in ids.items() if x["id"] in s) for x in ds)
    total = sum(drawn.values())
    assert total >= 19_000
    for name, p in expected.items():
        assert drawn[name] / total == pytest.approx(p, abs=0.01)
