"""The position ranges every per-position metric is reported in (validation's MLM and pseudo-
perplexity, `python -m training pppl`, the plots): derived from the context length scored, never
fixed, so a 1,024-token model reports 0-1k and a 4,096-token one 0-1k/1k-2k/2k-4k (NeoBERT's
long-context curve). Edges double from 1,024; the last range ends at the context length.
"""

from __future__ import annotations

FIRST = 1024


def position_ranges(context_length: int) -> tuple[tuple[int, int, str], ...]:
    """(lo, hi, name) with lo <= position < hi, covering 0 .. context_length - 1 exactly once."""
    if context_length < 1:
        raise ValueError(f"a context length must be >= 1 to have position ranges, got {context_length}")
    edges, edge = [0], FIRST
    while edge < context_length:
        edges.append(edge)
        edge *= 2
    edges.append(context_length)
    return tuple((lo, hi, f"{_short(lo)}-{_short(hi)}") for lo, hi in zip(edges[:-1], edges[1:]))


def _short(n: int) -> str:
    return f"{n // 1024}k" if n and n % 1024 == 0 else str(n)
