"""Windows and packing: no token lost, budget and context respected, cu_seqlens = the windows."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from shards import packing, windows

CLS, SEP = 101, 102


def doc(n_content: int, start: int) -> np.ndarray:
    return np.array([CLS, *range(start, start + n_content), SEP], dtype=np.uint16)


@given(
    lengths=st.lists(st.integers(0, 700), min_size=1, max_size=40),
    context=st.integers(3, 300),
    extra=st.integers(0, 600),
)
@settings(max_examples=200, deadline=None)
def test_windows_then_packing_lose_nothing_and_respect_limits(lengths, context, extra):
    budget = context + extra
    docs = [doc(n, 1000 + 1000 * i) for i, n in enumerate(lengths)]
    packer = packing.Packer(budget)
    all_windows, batches = [], []
    for d in docs:
        ws = windows.split(d, context, CLS, SEP)
        assert all(w[0] == CLS and w[-1] == SEP and len(w) <= context for w in ws)
        # the content is covered exactly once, in order, tail kept
        assert np.array_equal(np.concatenate([w[1:-1] for w in ws]), d[1:-1])
        all_windows += ws
        packer.push(ws)
        while (b := packer.pop()) is not None:
            batches.append(b)
    while (b := packer.pop(final=True)) is not None:
        batches.append(b)
    assert sum(len(b.input_ids) for b in batches) == sum(len(w) for w in all_windows)
    emitted = []
    for b in batches:
        assert len(b.input_ids) <= budget
        assert b.cu_seqlens.dtype == np.int32 and b.cu_seqlens[0] == 0 and b.cu_seqlens[-1] == len(b.input_ids)
        seg = np.diff(b.cu_seqlens)
        assert (seg > 0).all() and b.max_seqlen == seg.max() <= context
        for a, z in zip(b.cu_seqlens[:-1], b.cu_seqlens[1:]):
            assert np.array_equal(b.position_ids[a:z], np.arange(z - a))
            emitted.append(b.input_ids[a:z])
    # stream order kept, every window intact
    assert len(emitted) == len(all_windows)
    assert all(np.array_equal(e, w) for e, w in zip(emitted, all_windows))


def test_greedy_packing_fills_until_the_next_window_would_overflow():
    packer = packing.Packer(10)
    packer.push([np.arange(4), np.arange(5), np.arange(3), np.arange(7)])
    first = packer.pop()
    assert list(np.diff(first.cu_seqlens)) == [4, 5]  # 4+5+3 > 10
    assert packer.pop() is None  # 3+7 fit exactly: not known to be full until more arrives or the end
    second = packer.pop(final=True)
    assert list(np.diff(second.cu_seqlens)) == [3, 7]
    assert packer.pop(final=True) is None


def test_truncate_keeps_only_the_first_window():
    d = doc(1000, 5)
    ws = windows.split(d, 128, CLS, SEP, truncate=True)
    assert len(ws) == 1 and len(ws[0]) == 128 and np.array_equal(ws[0][1:-1], d[1:127])
    assert len(windows.split(d, 128, CLS, SEP)) == int(np.ceil(1000 / 126))


def test_short_document_is_its_own_window():
    d = doc(10, 5)
    assert windows.split(d, 12, CLS, SEP)[0] is d
