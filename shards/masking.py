"""MLM masking: choose `rate` of the non-special tokens, label them, replace them.

Invariants: special tokens are never chosen; labels are `IGNORE` everywhere except at chosen
positions, where they hold the original token; the randomness comes only from the key
(seed, stream, batch index), so a resumed run draws exactly the masks of an uninterrupted one.
A stream is one (rank, DataLoader worker) pair: `stream_id`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch.nn import CrossEntropyLoss

IGNORE = CrossEntropyLoss().ignore_index  # -100: the label of positions that are not scored
MAX_WORKERS = 1024  # DataLoader workers per rank that get distinct mask streams


@dataclass(frozen=True)
class Masking:
    """`rate` of the non-special tokens are chosen; each becomes `[MASK]`, a random token or stays,
    with probabilities `replace`. NeoBERT (the default): 0.2, (1, 0, 0); BERT/RoBERTa: 0.15,
    (0.8, 0.1, 0.1)."""

    rate: float = 0.2
    replace: tuple[float, float, float] = (1.0, 0.0, 0.0)

    def __post_init__(self):
        object.__setattr__(self, "replace", tuple(float(p) for p in self.replace))
        if not 0.0 < self.rate < 1.0:
            raise ValueError(f"masking rate must be in (0, 1), got {self.rate}")
        if len(self.replace) != 3 or min(self.replace) < 0 or abs(sum(self.replace) - 1) > 1e-6:
            raise ValueError(f"masking replace must be 3 probabilities ([MASK], random, keep) summing to 1, "
                             f"got {self.replace}")


def stream_id(rank: int, worker: int = 0) -> int:
    assert 0 <= worker < MAX_WORKERS, f"worker {worker} >= {MAX_WORKERS}"
    return rank * MAX_WORKERS + worker


def rng_for(seed: int, stream: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream, index]))


def mask_tokens(input_ids: np.ndarray, special_ids: np.ndarray, mask_id: int, vocab_size: int, masking: Masking,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Returns (masked input_ids, labels), both int64 of the input's shape."""
    chosen = (rng.random(input_ids.shape) < masking.rate) & ~np.isin(input_ids, special_ids)
    labels = np.where(chosen, input_ids, IGNORE).astype(np.int64)
    out = input_ids.astype(np.int64, copy=True)
    p_mask, p_random, _ = masking.replace
    if p_mask >= 1.0:
        out[chosen] = mask_id
        return out, labels
    u = rng.random(input_ids.shape)
    out[chosen & (u < p_mask)] = mask_id
    randomised = chosen & (u >= p_mask) & (u < p_mask + p_random)
    out[randomised] = rng.integers(0, vocab_size, int(randomised.sum()))
    return out, labels
