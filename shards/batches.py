"""The one batch maker: packed windows → the masked-LM micro-batch the model takes.

The trainer (`training.data`) and the reader API's collators (`shards.api`) both build their
batches here, with the one key scheme of `shards.masking`, so for the same seed, stream and batch
index a batch here is a batch there: tokens, document boundaries, positions and masks.
"""

from __future__ import annotations

import numpy as np
import torch

from shards.manifest import Vocab
from shards.masking import Masking, mask_tokens, rng_for
from shards.packing import Packed


def mlm_batch(packed: Packed, vocab: Vocab, masking: Masking, seed: int, stream: int, index: int) -> dict:
    """`input_ids`, `labels` (T,) int64, `cu_seqlens` (D+1,) int32, `max_seqlen`, `position_ids` (T,):
    labels hold the original token where masked, `IGNORE` elsewhere."""
    ids, labels = mask_tokens(packed.input_ids, np.asarray(vocab.special), vocab.mask, vocab.size, masking,
                              rng_for(seed, stream, index))
    return {
        "input_ids": torch.from_numpy(ids),
        "cu_seqlens": torch.from_numpy(packed.cu_seqlens),
        "max_seqlen": packed.max_seqlen,
        "position_ids": torch.from_numpy(packed.position_ids),
        "labels": torch.from_numpy(labels),
    }
