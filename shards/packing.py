"""Greedy packing of windows into micro-batches by token budget, for the model's varlen path.

Invariants: windows leave in stream order, none is cut, none is lost; a micro-batch holds at most
`budget` tokens; `cu_seqlens` are the window boundaries and `position_ids` restart at 0 in each
window, so attention and RoPE never cross documents. Windows not yet emitted (`carry`) are part
of the loader state saved in checkpoints.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass
class Packed:
    input_ids: np.ndarray  # (T,) int64
    cu_seqlens: np.ndarray  # (D+1,) int32
    max_seqlen: int
    position_ids: np.ndarray  # (T,) int64


def assemble(windows: list[np.ndarray]) -> Packed:
    lengths = np.fromiter((len(w) for w in windows), dtype=np.int64, count=len(windows))
    cu = np.zeros(len(windows) + 1, dtype=np.int32)
    np.cumsum(lengths, out=cu[1:])
    total = int(cu[-1])
    positions = np.arange(total, dtype=np.int64) - np.repeat(cu[:-1].astype(np.int64), lengths)
    return Packed(np.concatenate(windows).astype(np.int64), cu, int(lengths.max()), positions)


class Packer:
    def __init__(self, budget: int, carry: list[np.ndarray] = ()):
        self.budget = budget
        self.pending: deque[np.ndarray] = deque(carry)
        self.pending_tokens = sum(len(w) for w in self.pending)

    def push(self, windows: list[np.ndarray]) -> None:
        for w in windows:
            assert len(w) <= self.budget, "a window longer than the budget cannot be packed"
            self.pending.append(w)
            self.pending_tokens += len(w)

    def pop(self, final: bool = False) -> Packed | None:
        """The next micro-batch once it is known to be full (the next window would overflow it),
        or, with `final`, whatever is pending."""
        if not self.pending or (self.pending_tokens <= self.budget and not final):
            return None
        taken, n = [], 0
        while self.pending and n + len(self.pending[0]) <= self.budget:
            w = self.pending.popleft()
            taken.append(w)
            n += len(w)
        self.pending_tokens -= n
        return assemble(taken)

    @property
    def carry(self) -> list[np.ndarray]:
        return list(self.pending)
