"""MLM masking: choose `rate` of the non-special tokens, label them, replace them.

Invariants: special tokens are never chosen; labels are -100 everywhere except at chosen
positions, where they hold the original token; the randomness comes only from the key
(seed, rank, micro-batch index), so a resumed run draws exactly the masks of an uninterrupted one.
"""

from __future__ import annotations

import numpy as np

IGNORE = -100


def rng_for(seed: int, rank: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, rank, index]))


def mask_tokens(
    input_ids: np.ndarray,
    special_ids: np.ndarray,
    mask_id: int,
    vocab_size: int,
    rate: float,
    replace: tuple[float, float, float],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Returns (masked input_ids, labels), both int64 of the input's shape."""
    chosen = (rng.random(input_ids.shape) < rate) & ~np.isin(input_ids, special_ids)
    labels = np.where(chosen, input_ids, IGNORE).astype(np.int64)
    out = input_ids.astype(np.int64, copy=True)
    p_mask, p_random, _ = replace
    if p_mask >= 1.0:
        out[chosen] = mask_id
        return out, labels
    u = rng.random(input_ids.shape)
    out[chosen & (u < p_mask)] = mask_id
    randomised = chosen & (u >= p_mask) & (u < p_mask + p_random)
    out[randomised] = rng.integers(0, vocab_size, int(randomised.sum()))
    return out, labels
