"""Every backend refuses bad `cu_seqlens`/`max_seqlen`: on the host when the collator's tensor is on
the CPU, on the device (asynchronously) otherwise; both checks accept and refuse the same inputs."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neobert.attention import BOUNDARIES_FIX, PackedDocs, assert_boundaries_async, check_boundaries

GOOD = ([0, 5, 22, 23, 53], 30, 53)  # bounds, max_seqlen, tokens: lengths 5, 17, 1, 30
BAD = {
    "does not start at 0": ([1, 5, 22, 23, 53], 30, 53),
    "does not end at the token count": ([0, 5, 22, 23, 50], 30, 53),
    "falls": ([0, 22, 5, 23, 53], 30, 53),
    "max_seqlen below the longest": ([0, 5, 22, 23, 53], 29, 53),
}


def cu(bounds: list[int]) -> torch.Tensor:
    return torch.tensor(bounds, dtype=torch.int32)


def test_good_boundaries_pass_both_checks():
    bounds, max_seqlen, tokens = GOOD
    assert check_boundaries(bounds, max_seqlen, tokens) == (5, 17, 1, 30)
    assert_boundaries_async(cu(bounds), max_seqlen, tokens)  # no exception


@pytest.mark.parametrize("case", sorted(BAD))
def test_host_check_refuses_with_a_value_error(case):
    bounds, max_seqlen, tokens = BAD[case]
    with pytest.raises(ValueError, match="rise from 0|below the longest"):
        check_boundaries(bounds, max_seqlen, tokens)


@pytest.mark.parametrize("case", sorted(BAD))
def test_device_check_refuses(case):
    """On CPU tensors `_assert_async` raises at once: the same ops the GPU runs without a sync."""
    bounds, max_seqlen, tokens = BAD[case]
    with pytest.raises(RuntimeError, match="cu_seqlens must rise from 0"):
        assert_boundaries_async(cu(bounds), max_seqlen, tokens)


@pytest.mark.parametrize("backend", ["torch_varlen", "flash_attn", "sdpa"])
@pytest.mark.parametrize("case", sorted(BAD))
def test_every_backend_checks_host_boundaries(backend, case):
    """Before this check only `sdpa` validated: the varlen kernels would have read out of bounds."""
    bounds, max_seqlen, tokens = BAD[case]
    with pytest.raises(ValueError):
        PackedDocs.prepare(cu(bounds), max_seqlen, tokens, backend, "cpu")


def test_varlen_prepare_keeps_no_host_lengths():
    bounds, max_seqlen, tokens = GOOD
    docs = PackedDocs.prepare(cu(bounds), max_seqlen, tokens, "torch_varlen", "cpu")
    assert docs.lengths is None and docs.cu_seqlens.tolist() == bounds
    assert PackedDocs.prepare(cu(bounds), max_seqlen, tokens, "sdpa", "cpu").lengths == (5, 17, 1, 30)


@settings(max_examples=200, deadline=None)
@given(bounds=st.lists(st.integers(-3, 40), min_size=2, max_size=8), max_seqlen=st.integers(1, 40),
       tokens=st.integers(0, 40))
def test_host_and_device_checks_agree(bounds, max_seqlen, tokens):
    try:
        check_boundaries(bounds, max_seqlen, tokens)
        host_ok = True
    except ValueError:
        host_ok = False
    try:
        assert_boundaries_async(cu(bounds), max_seqlen, tokens)
        device_ok = True
    except RuntimeError as e:
        assert BOUNDARIES_FIX in str(e)
        device_ok = False
    assert host_ok == device_ok
