"""RoPE: LLaMA-1 adjacent pairs, float32, and q·k depends only on the relative offset."""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neobert.model import apply_rope, rope_angles

HEAD_DIM = 64


def rotate(x: torch.Tensor, position: int) -> torch.Tensor:
    """One head vector (D,) at one position, through the model's functions."""
    cos, sin = rope_angles(torch.tensor([position]), HEAD_DIM)
    return apply_rope(x[None, None, :], cos, sin)[0, 0]


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    m=st.integers(0, 4095),
    n=st.integers(0, 4095),
    shift=st.integers(-4095, 4095),
)
def test_score_depends_only_on_relative_offset(seed, m, n, shift):
    shift = max(-min(m, n), min(shift, 4095 - max(m, n)))  # keep all positions inside [0, 4096)
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, HEAD_DIM, generator=g)
    q, k = q / q.norm(), k / k.norm()
    score = rotate(q, m) @ rotate(k, n)
    shifted = rotate(q, m + shift) @ rotate(k, n + shift)
    # float32 angles up to 4095 rad carry ~2.5e-4 rad of rounding; unit vectors bound the effect
    assert abs(score.item() - shifted.item()) < 2e-3


@settings(max_examples=50, deadline=None)
@given(i=st.integers(0, HEAD_DIM // 2 - 1), position=st.integers(0, 4095))
def test_adjacent_pairs_rotate_by_position_times_frequency(i, position):
    x = torch.zeros(HEAD_DIM)
    x[2 * i] = 1.0  # the real part of pair i
    out = rotate(x, position)
    angle = position * 10000.0 ** (-2 * i / HEAD_DIM)
    expected = torch.zeros(HEAD_DIM)
    expected[2 * i], expected[2 * i + 1] = math.cos(angle), math.sin(angle)
    assert torch.allclose(out, expected, atol=1e-3)
    assert out.abs().gt(1e-6).sum() <= 2  # only pair i moved


def test_position_zero_is_identity_and_dtype_is_kept():
    x = torch.randn(3, 12, HEAD_DIM, dtype=torch.bfloat16)
    cos, sin = rope_angles(torch.zeros(3, dtype=torch.long), HEAD_DIM)
    assert cos.dtype == torch.float32 and cos.shape == (3, 1, HEAD_DIM // 2)
    out = apply_rope(x, cos, sin)
    assert out.dtype == torch.bfloat16 and torch.equal(out, x)
