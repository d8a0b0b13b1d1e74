"""Cut documents into windows the model can take.

Invariant: every window is framed `[CLS] … [SEP]` and holds at most `context` tokens; with
`split`, a document's content is covered exactly once, in order, by its windows (the tail is
kept); with `truncate`, only the first window is kept (the published recipe).
"""

from __future__ import annotations

import numpy as np

LONG_DOCS = ("split", "truncate")


def check(context_length: int, long_docs: str, prefix: str = "") -> None:
    """The window settings every reader takes; `prefix` names them as the caller's config does."""
    if long_docs not in LONG_DOCS:
        raise ValueError(f"{prefix}long_docs must be one of {LONG_DOCS}, got {long_docs!r}")
    if context_length < 3:
        raise ValueError(f"{prefix}context_length must be >= 3 ([CLS] x [SEP]), got {context_length}")


def split(doc: np.ndarray, context: int, cls_id: int, sep_id: int, truncate: bool = False) -> list[np.ndarray]:
    """`doc` is one stored document, `[CLS] content [SEP]`."""
    assert doc[0] == cls_id and doc[-1] == sep_id, "stored documents are framed [CLS] ... [SEP]"
    if len(doc) <= context:
        return [doc]
    content = doc[1:-1]
    step = context - 2
    starts = range(0, len(content), step)
    if truncate:
        starts = starts[:1]
    out = []
    for s in starts:
        w = np.empty(min(step, len(content) - s) + 2, dtype=doc.dtype)
        w[0], w[-1] = cls_id, sep_id
        w[1:-1] = content[s : s + step]
        out.append(w)
    return out
