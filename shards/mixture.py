"""Mixture math: per-bucket sampling proportions from the manifest's document counts.

A mixture is a JSON list of `{"path": <bucket path under OUT>, "proportion": p}`; proportions are
fractions of *documents* (samples), which is what `streaming.Stream(proportion=…)` means, and they
sum to 1.

Stage 2 of NeoBERT picks, for each batch, one of several datasets — all documents, documents with
≥ 1024 tokens, documents with ≥ 2048 tokens — with probabilities 0.2/0.4/0.4, then a document
uniformly inside it. Because buckets partition the documents, that is exactly a per-document
mixture over buckets: P(bucket b) = Σ_choices p_c · n_b / N_c over the choices whose range holds b.
No document is copied.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from shards.layout import Bucket

STAGE2_CHOICES: tuple[tuple[int, float], ...] = ((0, 0.2), (1024, 0.4), (2048, 0.4))


def natural(doc_counts: Mapping[Bucket, int]) -> dict[Bucket, float]:
    """Every bucket by its share of documents (stage 1: plain uniform sampling over the corpus)."""
    total = sum(doc_counts.values())
    if total == 0:
        raise ValueError("cannot build a mixture: every bucket is empty")
    return {b: n / total for b, n in doc_counts.items()}


def long_context(
    doc_counts: Mapping[Bucket, int],
    choices: Sequence[tuple[int, float]] = STAGE2_CHOICES,
) -> dict[Bucket, float]:
    """Per-bucket proportions equal to choosing `documents with >= min_tokens` with probability p.

    Each `min_tokens` must be a bucket edge (or 0), otherwise a bucket would straddle the
    threshold and the conversion would not be exact. An empty choice has its probability
    spread over the others in proportion (reported by the caller through the manifest).
    """
    probs = [p for _, p in choices]
    if any(p < 0 for p in probs) or abs(sum(probs) - 1.0) > 1e-9:
        raise ValueError(f"mixture choice probabilities must be >= 0 and sum to 1, got {probs}")
    lows = {b.lo for b in doc_counts}
    out = {b: 0.0 for b in doc_counts}
    live = []
    for min_tokens, p in choices:
        if min_tokens not in lows:
            raise ValueError(
                f"mixture threshold {min_tokens} is not a bucket edge (edges start at {sorted(lows)}); "
                "add it to --bucket-edges so the mixture can be built without copying"
            )
        members = {b: n for b, n in doc_counts.items() if b.lo >= min_tokens}
        total = sum(members.values())
        if total and p:
            live.append((members, total, p))
    if not live:
        raise ValueError("cannot build a mixture: every choice selects no document")
    norm = sum(p for _, _, p in live)
    for members, total, p in live:
        for b, n in members.items():
            out[b] += (p / norm) * n / total
    return out


def to_json(proportions: Mapping[Bucket, float]) -> list[dict]:
    return [
        {"bucket": b.name, "path": b.path, "proportion": p}
        for b, p in sorted(proportions.items(), key=lambda kv: kv[0].lo)
        if p > 0
    ]


def read(text: str, where: str = "mixture") -> list[dict]:
    """Parse and check a mixture file's text."""
    try:
        items = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{where}: not valid JSON ({e})") from None
    if not isinstance(items, list) or not items:
        raise ValueError(f"{where}: expected a non-empty JSON list of {{path, proportion}} objects")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "path" not in item or "proportion" not in item:
            raise ValueError(f"{where}: item {i} needs 'path' and 'proportion', got {item!r}")
        if not 0 < float(item["proportion"]) <= 1:
            raise ValueError(f"{where}: item {i} has proportion {item['proportion']}, expected (0, 1]")
    total = sum(float(i["proportion"]) for i in items)
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"{where}: proportions sum to {total}, expected 1")
    return items
