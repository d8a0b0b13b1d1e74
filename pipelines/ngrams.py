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


def top_ngram_chars(w: Words, n: int) -> int:
    """len(" ".join(top n-gram)) * its count; needs len(w) >= n."""
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


def _substring_keys(w: Words, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """One key (< 2**61) per pair: the hash of words starts[k]..stops[k]-1 concatenated."""
    key = np.zeros(len(starts), dtype=np.int64)
    for p, prefix, up in _prefixes(w):
        key = key * p + (prefix[stops] - prefix[starts]) % p * up[stops] % p
    return key


def _concat_hashes(w: Words, n: int) -> np.ndarray:
    """One key per n-gram position: the hash of its words concatenated."""
    starts = np.arange(len(w) - n + 1)
    return _substring_keys(w, starts, starts + n)


def repeating_sizes(w: Words, sizes: list[int]) -> set[int]:
    """The n in `sizes` (at most 8 of them) for which some n-gram (words concatenated) occurs twice:
    the keys of every size in one sort, each key (< 2**61) times 8 plus the size's index."""
    sizes = [n for n in sizes if len(w) >= n]
    if not sizes:
        return set()
    positions = [len(w) - n + 1 for n in sizes]
    starts = np.concatenate([np.arange(m) for m in positions])
    key = _substring_keys(w, starts, starts + np.repeat(sizes, positions)).astype(np.uint64)
    key = np.sort(key * np.uint64(8) + np.repeat(np.arange(len(sizes), dtype=np.uint64), positions))
    return {sizes[i] for i in np.unique(key[1:][key[1:] == key[:-1]] & np.uint64(7)).tolist()}


def duplicated_chars(w: Words, n: int) -> int:
    """Characters in repeated n-grams, scanning greedily and jumping n words past each repeat."""
    if len(w) < n:
        return 0
    keys = _concat_hashes(w, n)
    order = np.argsort(keys)
    ordered = keys[order]
    same = ordered[1:] == ordered[:-1]
    if not same.any():  # most texts, at most n: nothing repeats
        return 0
    twice = np.zeros(len(keys), dtype=bool)  # by sorted position: its key occurs more than once
    twice[1:] |= same
    twice[:-1] |= same
    repeated = np.sort(order[twice])
    ends = _ends(w)
    chars, idx, seen = 0, 0, set()
    lengths = (ends[repeated + n] - ends[repeated]).tolist()
    for pos, key, length in zip(repeated.tolist(), keys[repeated].tolist(), lengths):
        if pos < idx:
            continue
        if key in seen:
            chars += length
            idx = pos + n
        else:
            seen.add(key)
            idx = pos + 1
    return chars
