import numpy as np

from shards.masking import IGNORE, Masking, mask_tokens, rng_for

SPECIAL = np.array([0, 100, 101, 102, 103])
MASK, VOCAB = 103, 30522


def corpus(n: int, seed: int = 0) -> np.ndarray:
    ids = np.random.default_rng(seed).integers(1000, VOCAB, n)
    ids[::37] = 101  # plenty of special tokens, including [MASK] itself and [UNK]
    ids[5::37] = 102
    ids[9::91] = 100
    ids[11::97] = 103
    return ids


def test_rate_is_20_percent_of_non_special_tokens_and_never_special():
    ids = corpus(2_000_000)
    out, labels = mask_tokens(ids, SPECIAL, MASK, VOCAB, Masking(0.2, (1.0, 0.0, 0.0)), rng_for(0, 0, 0))
    special = np.isin(ids, SPECIAL)
    assert special.sum() > 50_000  # the case under test occurs
    chosen = labels != IGNORE
    assert not (chosen & special).any()
    rate = chosen.sum() / (~special).sum()
    assert abs(rate - 0.2) < 0.01
    assert np.array_equal(labels[chosen], ids[chosen])
    assert (out[chosen] == MASK).all() and np.array_equal(out[~chosen], ids[~chosen])


def test_bert_80_10_10_split():
    ids = corpus(1_000_000, seed=1)
    out, labels = mask_tokens(ids, SPECIAL, MASK, VOCAB, Masking(0.2, (0.8, 0.1, 0.1)), rng_for(0, 0, 0))
    chosen = labels != IGNORE
    as_mask = (out[chosen] == MASK).mean()
    kept = (out[chosen] == ids[chosen]).mean()
    assert abs(as_mask - 0.8) < 0.01 and abs(kept - 0.1) < 0.01


def test_masks_depend_only_on_the_key():
    ids = corpus(10_000)
    a = mask_tokens(ids, SPECIAL, MASK, VOCAB, Masking(0.2, (1.0, 0, 0)), rng_for(3, 1, 17))[1]
    b = mask_tokens(ids, SPECIAL, MASK, VOCAB, Masking(0.2, (1.0, 0, 0)), rng_for(3, 1, 17))[1]
    c = mask_tokens(ids, SPECIAL, MASK, VOCAB, Masking(0.2, (1.0, 0, 0)), rng_for(3, 0, 17))[1]
    assert np.array_equal(a, b) and not np.array_equal(a, c)
