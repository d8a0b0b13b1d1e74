"""One per-process word/sentence tokenizer giving exactly the tokens of Datatrove's English spaCy tokenizer.

spaCy splits a text into runs of whitespace and non-whitespace characters and tokenizes each run on
its own (a single ' ' between two runs becomes no token); only its special cases can join tokens of
neighbouring runs. So the tokens of a text are the concatenation of the tokens of its runs: we
tokenize each distinct run once with spaCy (inside a memory zone, so spaCy's vocabulary stays
bounded), remember it in a capped memo, and send to spaCy whole only the rare texts where a
multi-token special case could match across a space. As in Datatrove, a text whose tokens include
`IS_ALPHA` (a string spaCy's vocabulary breaks on) is tokenized with every `IS_ALPHA` removed.

Invariant: `analyze(text).ids` are the tokens `SpaCyTokenizer("en").word_tokenize(text)` returns
(stripped, whitespace tokens dropped, case kept) and `count_sentences(text)` is
`len(split_into_sentences(text))`, whatever the memo holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter

import numpy as np
from datatrove.utils.text import PUNCTUATION_SET

RUNS = re.compile(r"\S+|\s+")  # Python's \s is str.isspace, spaCy's split
SEPARATORS = re.compile(r"(\s{2,}|[^\S ])")  # whitespace runs other than one space
POISON = "IS_ALPHA"  # its lexeme breaks inside a memory zone; Datatrove then retries without it
MODULI = (2_147_483_647, 1_000_000_007)  # two primes: concatenation hashes of 62 bits
BASES = (1_000_003, 911_382_323)
TABLE_COLUMNS = ("length", "non_symbol", "has_alpha", "hash0", "hash1")
FIRST, SECOND = itemgetter(0), itemgetter(1)  # of a memo entry: word token ids, sentence classes


@dataclass
class Words:
    """The word tokens of one text as arrays, for the filters' statistics."""

    ids: np.ndarray  # token ids (int64), in order; equal ids = equal strings
    lengths: np.ndarray  # characters per token
    non_symbol: np.ndarray  # bool: has a character outside Datatrove's PUNCTUATION_SET
    has_alpha: np.ndarray  # bool: has an alphabetic character
    hashes: tuple[np.ndarray, np.ndarray]  # per token, polynomial string hash mod each of MODULI
    ranks: dict[int, np.ndarray] = field(default_factory=dict)  # n -> n-gram ranks (pipelines.ngrams)

    def __len__(self) -> int:
        return len(self.ids)


class _Poisoned(Exception):
    """A run whose tokens include POISON."""


POISONED = ((), "poisoned")  # the memo's entry for such a run (no real entry has that class string)


class WordTokenizer:
    """Memoised spaCy `en` tokenization: spaCy sees each distinct run once, until the memo is full.

    `memo_size` caps the runs (and tokens) remembered; a full memo is emptied, so memory stays
    bounded by the cap whatever the input size.
    """

    def __init__(self, memo_size: int = 200_000):
        if memo_size < 1:
            raise ValueError(f"memo_size must be >= 1, got {memo_size}")
        import spacy
        from spacy.pipeline import Sentencizer

        self.memo_size = memo_size
        self.nlp = spacy.blank("en")
        self.punct_chars = set(Sentencizer.default_punct_chars)
        self.cross_run = self._cross_run_pairs()
        self.clear()

    def clear(self) -> None:
        """Forget every run and token (the memo's cap was reached, or a test wants it cold)."""
        self.memo: dict[str, tuple[tuple[int, ...], str]] = {}  # run -> (word token ids, sentence classes)
        self.token_ids: dict[str, int] = {}
        self._table = np.zeros((1024, 5), dtype=np.int64)  # per token id: TABLE_COLUMNS
        self._pending: list[tuple[int, ...]] = []  # rows of new tokens not yet in _table
        self._last: dict[str, Words] = {}

    def _cross_run_pairs(self):
        """Aho-Corasick automaton of `a b` for neighbouring tokens a, b of spaCy's multi-token special cases.

        A special case matched across runs (even one that changes nothing, but blocks an overlapping
        special case inside a run) has, at some single space between runs, such a pair.
        """
        import ahocorasick
        from spacy.tokenizer import Tokenizer

        t = self.nlp.tokenizer
        plain = Tokenizer(self.nlp.vocab, rules={}, prefix_search=t.prefix_search, suffix_search=t.suffix_search,
                          infix_finditer=t.infix_finditer, token_match=t.token_match, url_match=t.url_match)
        automaton = ahocorasick.Automaton()
        for rule in t.rules:
            toks = [x.text for x in plain(rule)]
            for a, b in zip(toks, toks[1:]):
                automaton.add_word(f"{a} {b}", (a, b))
        automaton.make_automaton()
        return automaton

    def _crosses(self, text: str) -> bool:
        """Whether a pair of `cross_run` stands in `text`: a special case may then join runs.

        (Checking the runs' tokens would not narrow it: a run's own special cases may have merged
        the token a into a longer one.)
        """
        return next(self.cross_run.iter(text), None) is not None

    # --- tokens -------------------------------------------------------------------------------------

    def _intern(self, token: str) -> int:
        i = self.token_ids.get(token)
        if i is None:
            i = self.token_ids[token] = len(self.token_ids)
            hashes = []
            for p, b in zip(MODULI, BASES):
                v = 0
                for c in token:
                    v = (v * b + ord(c) + 1) % p
                hashes.append(v)
            self._pending.append((len(token), any(c not in PUNCTUATION_SET for c in token),
                                  any(c.isalpha() for c in token), *hashes))
        return i

    def _rows(self, ids: np.ndarray) -> np.ndarray:
        """TABLE_COLUMNS of the tokens `ids`."""
        if self._pending:
            n, new = len(self.token_ids) - len(self._pending), np.array(self._pending, dtype=np.int64)
            if len(self.token_ids) > len(self._table):
                grown = np.zeros((2 * len(self.token_ids), 5), dtype=np.int64)
                grown[:n] = self._table[:n]
                self._table = grown
            self._table[n:len(self.token_ids)] = new
            self._pending = []
        return self._table[ids]

    def _entry(self, tokens) -> tuple[tuple[int, ...], str]:
        """(ids of the non-whitespace tokens, sentencizer classes of all tokens: P ends, N starts, Q neither)."""
        ids, classes = [], []
        for tok in tokens:
            text = tok.text
            if text == POISON:
                raise _Poisoned
            if text.strip():
                ids.append(self._intern(text.strip()))
            if text in self.punct_chars:
                classes.append("P")
            elif not tok.is_punct:
                classes.append("N")
        return tuple(ids), "".join(classes)

    def _spacy(self, text: str) -> tuple[tuple[int, ...], str]:
        """Tokens of `text` by spaCy itself; call inside `nlp.memory_zone()`."""
        try:
            return self._entry(self.nlp.tokenizer(text))
        except Exception:  # spaCy's failures on POISON (AssertionError, KeyError: as Datatrove, any)
            if POISON in text:
                raise _Poisoned from None
            raise

    def _fill(self, runs: list[str]) -> None:
        """Tokenize the runs the memo lacks (a whitespace run keyed `' '+rest` stands for `rest`)."""
        todo = [r for r in dict.fromkeys(runs) if r not in self.memo]
        if len(self.memo) + len(todo) > self.memo_size or len(self.token_ids) > 4 * self.memo_size:
            self.clear()
            todo = list(dict.fromkeys(runs))
        with self.nlp.memory_zone():
            for run in todo:
                try:
                    self.memo[run] = self._spacy(run[1:] if run[0] == " " else run)
                except _Poisoned:
                    self.memo[run] = POISONED

    def _tokens(self, text: str) -> list[tuple[tuple[int, ...], str]]:
        """Memo entries whose word token ids and sentence classes, in order, are `text`'s (without
        Datatrove's IS_ALPHA retry)."""
        if not text:
            return []
        runs = RUNS.findall(text)
        if runs[0][0].isspace():  # a leading whitespace run is tokenized whole
            runs[0] = " " + runs[0]
        entries = list(map(self.memo.get, runs))
        if None in entries:
            self._fill(runs)
            entries = list(map(self.memo.__getitem__, runs))
        if POISONED in entries:
            raise _Poisoned
        return self._grouped(text) if self._crosses(text) else entries

    def _grouped(self, text: str) -> list[tuple[tuple[int, ...], str]]:
        """Entries of `text` whose runs may join: spaCy sees whole each group of runs joined by single
        spaces that has such a pair (special cases never span other whitespace); memo holds its runs.
        """
        parts = SEPARATORS.split(text)
        entries = []
        for k, part in enumerate(parts):
            if k % 2:  # a whitespace run
                entries.append(self.memo[" " + part if k == 1 and not parts[0] else part])
            elif part in self.memo:
                entries.append(self.memo[part])
            elif self._crosses(part):
                with self.nlp.memory_zone():
                    entries.append(self._spacy(part))
                if len(self.memo) < self.memo_size:
                    self.memo[part] = entries[-1]
            elif part:
                entries.extend(map(self.memo.__getitem__, RUNS.findall(part)))
        return entries

    def _retried(self, text: str) -> list[tuple[tuple[int, ...], str]]:
        """Memo entries of `text`, with Datatrove's IS_ALPHA retry."""
        try:
            return self._tokens(text)
        except _Poisoned:
            try:
                return self._tokens(text.replace(POISON, ""))
            except _Poisoned:
                raise ValueError(f"text still contains {POISON!r} after removing it: {text[:200]!r}") from None

    # --- what the filters ask -----------------------------------------------------------------------

    def analyze(self, text: str) -> Words:
        """The word tokens of `text` (the last few texts are cached: filters in a row share them)."""
        hit = self._last.get(text)
        if hit is not None:
            return hit
        ids = np.fromiter(chain.from_iterable(map(FIRST, self._retried(text))), dtype=np.int64)
        rows = self._rows(ids)
        words = Words(ids, rows[:, 0], rows[:, 1].astype(bool), rows[:, 2].astype(bool), (rows[:, 3], rows[:, 4]))
        if len(self._last) >= 4:
            self._last.pop(next(iter(self._last)))
        self._last[text] = words
        return words

    def count_sentences(self, text: str) -> int:
        """Sentences spaCy's sentencizer finds (1 for a text without tokens, as Datatrove counts).

        A sentence starts at every N token whose previous P-or-N token is a P.
        """
        return 1 + "".join(map(SECOND, self._retried(text))).count("PN")

    def ids_of(self, tokens) -> np.ndarray:
        """Ids of those `tokens` seen so far (to look words up in `Words.ids`)."""
        return np.array([self.token_ids[t] for t in tokens if t in self.token_ids], dtype=np.int64)


_shared: WordTokenizer | None = None


def shared() -> WordTokenizer:
    """The process's tokenizer, made on first use (so pickled pipelines stay light)."""
    global _shared
    if _shared is None:
        _shared = WordTokenizer()
    return _shared
