"""Gopher's n-gram statistics on token arrays, equal to Datatrove's string versions.

* top n-gram: n-grams are word tuples (joined with spaces in Datatrove, and words hold no spaces),
  compared exactly by ranking (previous rank, next word) pairs; the value is the character length
  of the most frequent one times its count, the first seen winning ties.
* duplicated n-grams: n-grams joined with no separator, so ("ab", "c") equals ("a", "bc"); they are
  compared by a polynomial hash of the concatenated characters modulo two primes (62 bits), and the
  greedy scan that jumps n words after a repeat runs only over n-grams that occur more than once.
"""

from __future__ import annotations

import numpy as np

from pipelines.words import POWERS, Words


def _ends(w: Words) -> np.ndarray:
    """ends[i] = characters in the first i words (cached on `w`)."""
    if "ends" not in w.cache:
        w.cache["ends"] = np.concatenate(([0], np.cumsum(w.lengths)))
    return w.cache["ends"]


def _ranks(w: Words, n: int) -> np.ndarray:
    """r[i] = r[j] iff words i..i+n-1 equal words j..j+n-1 (cached on `w`, built from n-1)."""
    if ("ranks", n) not in w.cache:
        prev = w.ids if n == 1 else _ranks(w, n - 1)
        m = len(w.ids) - n + 1
        key = prev[:m] * (int(w.ids.max()) + 1) + w.ids[n - 1:n - 1 + m]
        w.cache["ranks", n] = np.unique(key, return_inverse=True)[1].reshape(-1)
    return w.cache["ranks", n]


def top_ngram_bound(w: Words, n: int) -> int:
    """An upper bound of top_ngram_chars(w, n), from word counts alone: an n-gram occurs at most as
    often as each of its words, so count * (its words' characters + n - 1) <= n * max(count * len) +
    (n - 1) * max(count). The counts are summed by id buckets, which only raises them (cached on `w`)."""
    if "bound" not in w.cache:
        buckets = np.bitwise_and(w.ids, (1 << max(len(w) * 4, 1).bit_length()) - 1)
        w.cache["bound"] = (int(np.bincount(buckets, weights=w.lengths).max()), int(np.bincount(buckets).max()))
    chars, count = w.cache["bound"]
    return n * chars + (n - 1) * count


def top_ngram_chars(w: Words, n: int) -> int:
    """len(" ".join(top n-gram)) * its count; needs len(w) >= n. Filters first compare
    top_ngram_bound, which is cheap and rules out almost every text."""
    counts = np.bincount(_ranks(w, n))[_ranks(w, n)]
    top = int(counts.max())
    first = int(np.argmax(counts == top))
    ends = _ends(w)
    return (int(ends[first + n] - ends[first]) + n - 1) * top


def _prefixes(w: Words) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Per modulus p: (p, prefix, up) with prefix[i] = hash of the first i words concatenated, scaled
    by base**-chars so that a difference of two is a substring's hash times base**start (cached on `w`).
    """
    if "prefixes" not in w.cache:
        ends, out = _ends(w), []
        for h, powers in zip(w.hashes, POWERS):
            p = powers.p
            up, down = powers.upto(int(ends[-1]))
            out.append((p, np.concatenate(([0], np.cumsum(h * down[ends[1:]] % p) % p)), up[ends]))
        w.cache["prefixes"] = out
    return w.cache["prefixes"]


def _ngram_keys(w: Words, n: int) -> np.ndarray:
    """One key (< 2**61) per n-gram: the hash of its words concatenated. Slices of the prefix arrays,
    not gathers, and a sign fix-up instead of a second modulo: this is repeated_ngrams' main cost."""
    key = None
    for p, prefix, up in _prefixes(w):
        h = prefix[n:] - prefix[:-n]
        h += p & (h >> 63)  # (a - b) mod p, for a, b < p
        h *= up[n:]
        h %= p
        key = h if key is None else key * p + h
    return key


def repeated_ngrams(w: Words, sizes: list[int]) -> dict[int, tuple[list[int], list[int]]]:
    """Per n in `sizes` (at most 8) whose n-grams (words concatenated) repeat: (positions, keys) of
    the n-grams that occur more than once, in order. The keys of every size go through one sort,
    each key (< 2**61) times 8 plus the size's index, so equal keys are equal n-grams of one size."""
    sizes = [n for n in sizes if len(w) >= n]
    if not sizes:
        return {}
    offsets = np.cumsum([0, *(len(w) - n + 1 for n in sizes)])
    key = np.concatenate([_ngram_keys(w, n).view(np.uint64) * np.uint64(8) + np.uint64(i)
                          for i, n in enumerate(sizes)])
    order = np.argsort(key)
    ordered = key[order]
    same = ordered[1:] == ordered[:-1]
    twice = np.zeros(len(key), dtype=bool)  # by sorted position: its key occurs more than once
    twice[1:] |= same
    twice[:-1] |= same
    repeated = np.zeros(len(key), dtype=bool)
    repeated[order[twice]] = True
    hits = np.flatnonzero(repeated)  # by size, then position
    bounds = np.searchsorted(hits, offsets)
    return {n: ((hits[lo:hi] - off).tolist(), key[hits[lo:hi]].tolist())
            for n, off, lo, hi in zip(sizes, offsets.tolist(), bounds[:-1].tolist(), bounds[1:].tolist()) if hi > lo}


def duplicated_chars(w: Words, n: int, positions: list[int], keys: list[int]) -> int:
    """Characters in repeated n-grams, scanning greedily and jumping n words past each repeat; only
    the n-grams that occur more than once (`repeated_ngrams`) need scanning."""
    ends = _ends(w)
    lengths = (ends[np.add(positions, n)] - ends[positions]).tolist()
    chars, idx, seen = 0, 0, set()
    for pos, key, length in zip(positions, keys, lengths):
        if pos < idx:
            continue
        if key in seen:
            chars += length
            idx = pos + n
        else:
            seen.add(key)
            idx = pos + 1
    return chars
