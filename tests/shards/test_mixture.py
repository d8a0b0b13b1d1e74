"""Mixture math: stage-2 bucket proportions reproduce NeoBERT's per-batch 0.2/0.4/0.4 choice."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shards import layout, mixture

LT, MID, LONG = layout.buckets((1024, 2048))


def test_natural_is_document_share():
    props = mixture.natural({LT: 6, MID: 3, LONG: 1})
    assert props == {LT: 0.6, MID: 0.3, LONG: 0.1}


def test_stage2_closed_form():
    counts = {LT: 700, MID: 200, LONG: 100}
    p = mixture.long_context(counts)
    # all: 0.2 * n/1000; >=1024: 0.4 * n/300; >=2048: 0.4 * n/100
    assert p[LT] == pytest.approx(0.2 * 0.7)
    assert p[MID] == pytest.approx(0.2 * 0.2 + 0.4 * 200 / 300)
    assert p[LONG] == pytest.approx(0.2 * 0.1 + 0.4 * 100 / 300 + 0.4)
    assert sum(p.values()) == pytest.approx(1.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 10_000), min_size=3, max_size=3))
def test_stage2_equals_choice_probabilities(ns):
    """P(document has >= t tokens) under the bucket mixture equals what the per-batch choice gives."""
    counts = dict(zip((LT, MID, LONG), ns))
    p = mixture.long_context(counts)
    n_all, n_1k, n_2k = sum(ns), ns[1] + ns[2], ns[2]
    assert p[LONG] == pytest.approx(0.2 * n_2k / n_all + 0.4 * n_2k / n_1k + 0.4)
    assert p[MID] + p[LONG] == pytest.approx(0.2 * n_1k / n_all + 0.4 + 0.4)
    assert sum(p.values()) == pytest.approx(1.0)


def test_stage2_sampling_matches_per_batch_choice():
    """Simulate NeoBERT's sampler and ours; the bucket frequencies agree."""
    rng = np.random.default_rng(0)
    counts = {LT: 500, MID: 300, LONG: 200}
    ours = mixture.long_context(counts)
    draws = 200_000
    choice = rng.choice(3, size=draws, p=[0.2, 0.4, 0.4])
    u = rng.random(draws)
    # within a choice, documents are uniform: map u to a bucket by cumulative counts
    sizes = np.array([500, 300, 200])
    seen = np.zeros(3)
    for c, start in enumerate((0, 1, 2)):
        sel = u[choice == c]
        cum = np.cumsum(sizes[start:]) / sizes[start:].sum()
        idx = np.searchsorted(cum, sel, side="right") + start
        seen += np.bincount(idx, minlength=3)
    freq = seen / draws
    for i, b in enumerate((LT, MID, LONG)):
        assert freq[i] == pytest.approx(ours[b], abs=0.005)


def test_threshold_must_be_an_edge():
    a, b = layout.buckets((512,))
    with pytest.raises(ValueError, match="not a bucket edge"):
        mixture.long_context({a: 1, b: 1})


def test_mixture_file_round_trip_and_checks():
    import json

    items = mixture.to_json(mixture.natural({LT: 1, MID: 1, LONG: 2}))
    assert [i["path"] for i in items] == ["mds/lt1024", "mds/1024to2048", "mds/ge2048"]
    assert mixture.read(json.dumps(items)) == items
    with pytest.raises(ValueError, match="sum to"):
        mixture.read(json.dumps([{"path": "mds/lt1024", "proportion": 0.5}]))
    with pytest.raises(ValueError, match="path"):
        mixture.read(json.dumps([{"proportion": 1.0}]))


def test_bucket_layout():
    assert [b.name for b in layout.buckets()] == ["lt1024", "1024to2048", "ge2048"]
    assert layout.bucket_for(1023).name == "lt1024"
    assert layout.bucket_for(1024).name == "1024to2048"
    assert layout.bucket_for(2048).name == "ge2048"
    with pytest.raises(ValueError):
        layout.buckets((2048, 1024))


def test_validation_split_is_stable_and_sized():
    ids = [f"doc-{i}" for i in range(20_000)]
    picked = [i for i in ids if layout.is_validation(i, 0.05)]
    assert picked == [i for i in ids if layout.is_validation(i, 0.05)]
    assert len(picked) / len(ids) == pytest.approx(0.05, abs=0.005)
    assert not any(layout.is_validation(i, 0.0) for i in ids)
