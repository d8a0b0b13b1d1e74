"""Shared helpers for the model tests: a tiny config and packing of documents."""

from __future__ import annotations

import itertools

import pytest
import torch

from neobert import NeoBERTConfig, NeoBERTLMHead


def pack(docs: list[torch.Tensor]) -> dict:
    """Packed-path arguments for whole documents laid back to back."""
    lengths = [len(d) for d in docs]
    return dict(
        input_ids=torch.cat(docs),
        cu_seqlens=torch.tensor([0, *itertools.accumulate(lengths)], dtype=torch.int32),
        max_seqlen=max(lengths),
        position_ids=torch.cat([torch.arange(n) for n in lengths]),
    )


@pytest.fixture
def packer():
    return pack


@pytest.fixture
def tiny_model() -> NeoBERTLMHead:
    torch.manual_seed(0)
    return NeoBERTLMHead(NeoBERTConfig.tiny()).eval()


@pytest.fixture
def random_docs() -> list[torch.Tensor]:
    """Four documents of unequal lengths (one of a single token), avoiding the pad id."""
    g = torch.Generator().manual_seed(1)
    return [torch.randint(1, 30522, (n,), generator=g) for n in (5, 17, 1, 30)]
