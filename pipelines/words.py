"""One per-process word/sentence tokenizer giving exactly the tokens of Datatrove's English spaCy tokenizer.

spaCy splits a text into runs of whitespace and non-whitespace characters and tokenizes each run on
its own (a single ' ' between two runs becomes no token); only its special cases can join tokens of
neighbouring runs. So the tokens of a text are the concatenation of the tokens of its runs: we
tokenize each distinct run once, remember it in a capped memo, and gather a text's word tokens from
the memo with numpy. spaCy sees the new runs of a text in one call (joined by newlines, which no
special case spans) through a tokenizer with Datatrove's rules and affix patterns but a vocabulary
that computes no lexical attributes (creating those is most of Datatrove's tokenizing time). Where a
multi-token special case could match across a space, spaCy tokenizes the runs around that space
together (a window of as many runs as the longest special case has tokens, on each side). As in
Datatrove, a text whose tokens include `IS_ALPHA` (a string spaCy's vocabulary breaks on) is
tokenized with every `IS_ALPHA` removed.

Invariant: `analyze(text).ids` are the tokens `SpaCyTokenizer("en").word_tokenize(text)` returns
(stripped, whitespace tokens dropped, case kept) and `count_sentences(text)` is
`len(split_into_sentences(text))`, whatever the memo holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import accumulate, chain
from operator import itemgetter

import numpy as np
from datatrove.utils.text import PUNCTUATION_SET
from spacy.attrs import ORTH

from pipelines import affixes

RUNS = re.compile(r"\S+|\s+")  # Python's \s is str.isspace, spaCy's split
OTHER_SPACE = re.compile(r"[^\S\n ]|  ")  # whitespace but a line break or a single space
ASCII_OTHER_SPACE = ("  ", "\t", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f")  # the same in ASCII
# a run spaCy cuts into: an opening bracket or quote; a stem: ASCII words joined by hyphens or by '/',
# or by underscores and ending in digits, or a word, '.' and a capitalised word (spaCy's infixes cut
# the hyphens, the '/' and that '.'), or lower-case words joined by '.' (one token), or digits joined
# by '.' or ':'; a possessive 's; up to three closing marks ('()' among them), one token each — when
# no special case applies (`_affixed`; tests/pipelines/test_words.py compares it with spaCy)
AFFIXED = re.compile(r"([(\"“'\[]?)"
                     r"([A-Za-z]+(?:-[A-Za-z]+)*|[A-Za-z]+(?:/[A-Za-z]+)+|[A-Za-z]+(?:_[A-Za-z]+)*[0-9]*"
                     r"|[a-z]+\.[A-Z][A-Za-z]*|[a-z]+(?:\.[a-z]+)+|[0-9]+(?:[.:][0-9]+)*)"
                     r"((?:['’][sS])?)((?:\(\)|[,;:!?\"”)\]'’.]){0,3})")
PERMALINK = re.compile(r"[A-Za-z0-9][A-Za-z0-9_()?!;]*¶")  # a heading with a documentation page's permalink
# mark: '¶' is no suffix and these characters form no prefix or infix, so spaCy keeps it whole
CLOSERS = set(",;:!?\"”)]'’")  # after one of these, spaCy cuts a '.' off whatever came before
DOT_AFTER = re.compile(r"(?:[a-z0-9]|[A-Z]{2})$")  # else spaCy's suffix rules keep a '.' on its word
SPACY_BATCH = 512  # runs per spaCy call: a Doc of one run per line grows by copying, cheap while it is small
INFIX = re.compile(r"(-|/|(?<=[a-z])\.(?=[A-Z]))")
POISON = "IS_ALPHA"  # its lexeme breaks inside a memory zone; Datatrove then retries without it
MODULI = (2_147_483_647, 1_000_000_007)  # two primes: concatenation hashes of 62 bits
BASES = (1_000_003, 911_382_323)
TABLE_COLUMNS = ("length", "non_symbol", "has_alpha", "hash0", "hash1")
FIRST, SECOND = itemgetter(0), itemgetter(1)  # of a memo entry: word token ids, sentence classes
EDGE_CLASS = {"": 0, "P": 1, "N": 2}  # an entry's first or last sentence class; 3: a line break
SPACES = np.array([chr(c).isspace() for c in range(0x3002)])  # str.isspace by code point (none above 0x3000)


def english_tokenizer() -> dict:
    """The arguments of the tokenizer `spacy.blank("en")` makes (Datatrove's): spaCy's tokenizer factory
    (`spacy.language.create_tokenizer`) on the English defaults, without making a pipeline and a
    vocabulary with lexical attributes, which the tokenizers here do not use (the test compares them)."""
    from spacy.lang.en import English
    from spacy.util import compile_infix_regex, compile_prefix_regex, compile_suffix_regex

    d = English.Defaults
    return {"rules": d.tokenizer_exceptions, "prefix_search": compile_prefix_regex(d.prefixes).search,
            "suffix_search": compile_suffix_regex(d.suffixes).search,
            "infix_finditer": compile_infix_regex(d.infixes).finditer, "token_match": d.token_match,
            "url_match": d.url_match}


def has_other_space(text: str) -> bool:
    """Whether OTHER_SPACE occurs in `text` (in ASCII text by substring searches, much faster than the regex)."""
    if text.isascii():
        return any(s in text for s in ASCII_OTHER_SPACE)
    return OTHER_SPACE.search(text) is not None


def _run_gaps(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, ends) of the non-whitespace runs of `text`, as `re.finditer(r"\\S+")` gives them, and
    per run but the last whether one ' ' alone parts it from the next."""
    points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    space = np.ones(len(points) + 2, dtype=bool)
    np.take(SPACES, np.minimum(points, len(SPACES) - 1), out=space[1:-1])  # the last entry: no space
    edges = np.flatnonzero(space[1:] != space[:-1])
    starts, ends = edges[0::2], edges[1::2]
    return starts, ends, (ends[:-1] + 1 == starts[1:]) & (points[ends[:-1]] == 32)


class Powers:
    """base**e and base**-e modulo p for e up to the longest text seen (grown by doubling)."""

    def __init__(self, p: int, base: int):
        self.p, self.base, self.inv = p, base, pow(base, p - 2, p)
        self.up = np.ones(1, dtype=np.int64)
        self.down = np.ones(1, dtype=np.int64)

    def upto(self, e: int) -> tuple[np.ndarray, np.ndarray]:
        while len(self.up) <= e:
            m = len(self.up)
            self.up = np.concatenate((self.up, self.up * pow(self.base, m, self.p) % self.p))
            self.down = np.concatenate((self.down, self.down * pow(self.inv, m, self.p) % self.p))
        return self.up, self.down


POWERS = [Powers(p, b) for p, b in zip(MODULI, BASES)]


def _token_rows(tokens: list[str]) -> np.ndarray:
    """TABLE_COLUMNS of these (non-empty) tokens; a token's hash mod p is sum((ord(c) + 1) *
    base**(characters after c)), the polynomial hash whose concatenation rule pipelines.ngrams uses."""
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    points = np.frombuffer("".join(tokens).encode("utf-32-le"), dtype=np.uint32).astype(np.int64) + 1
    ends = np.cumsum(lengths)
    after = np.repeat(ends, lengths) - 1 - np.arange(len(points))  # characters after each one, in its token
    rows = np.empty((len(tokens), 5), dtype=np.int64)
    rows[:, 0] = lengths
    rows[:, 1] = [not PUNCTUATION_SET.issuperset(t) for t in tokens]
    rows[:, 2] = [any(map(str.isalpha, t)) for t in tokens]
    for col, powers in zip((3, 4), POWERS):
        up = powers.upto(int(lengths.max()))[0]
        rows[:, col] = np.add.reduceat(points * up[after] % powers.p, ends - lengths) % powers.p
    return rows


@dataclass
class Words:
    """The word tokens of one text as arrays, for the filters' statistics."""

    ids: np.ndarray  # token ids (int64), in order; equal ids = equal strings
    lengths: np.ndarray  # characters per token
    non_symbol: np.ndarray  # bool: has a character outside Datatrove's PUNCTUATION_SET
    has_alpha: np.ndarray  # bool: has an alphabetic character
    hashes: tuple[np.ndarray, np.ndarray]  # per token, polynomial string hash mod each of MODULI
    cache: dict = field(default_factory=dict)  # what pipelines.ngrams derives once per text

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Runs:
    """The memo numbers of a text's runs (`text.split()`), valid while the memo is not emptied."""

    numbers: np.ndarray
    clears: int  # WordTokenizer._clears when they were taken
    pairs: bool  # whether some two neighbours may be joined by a special case (see `_pairs`)

    def select(self, counts: list[int], keep: list[bool]) -> Runs:
        """The runs of the kept lines: line k holds `counts[k]` runs and stays if `keep[k]`."""
        mask = np.repeat(np.array(keep, dtype=bool), np.array(counts, dtype=np.int64))
        assert len(mask) == len(self.numbers), "the lines' runs are not the text's"
        return Runs(self.numbers[mask], self.clears, self.pairs)


class _Poisoned(Exception):
    """A run whose tokens include POISON."""


POISONED = ((), "poisoned")  # the memo's entry for such a run (no real entry has that class string)


class _Column:
    """A growing int64 array (doubling, so appending stays amortised O(1))."""

    def __init__(self):
        self.data, self.size = np.zeros(1024, dtype=np.int64), 0

    def extend(self, values: list[int]) -> None:
        end = self.size + len(values)
        if end > len(self.data):
            grown = np.zeros(max(2 * len(self.data), end), dtype=np.int64)
            grown[:self.size] = self.data[:self.size]
            self.data = grown
        self.data[self.size:end] = values
        self.size = end


class WordTokenizer:
    """Memoised spaCy `en` tokenization: spaCy sees each distinct run once, until the memo is full.

    `memo_size` caps the runs (and tokens) remembered; a full memo is emptied, and so is the spaCy
    vocabulary behind it past 4 lexemes per run, so memory stays bounded by the cap whatever the input size.
    """

    def __init__(self, memo_size: int = 200_000):
        if memo_size < 1:
            raise ValueError(f"memo_size must be >= 1, got {memo_size}")
        from spacy.lang.lex_attrs import is_punct
        from spacy.pipeline import Sentencizer

        self.memo_size = memo_size
        self.settings = english_tokenizer()
        self.is_punct = is_punct  # spacy.blank("en").vocab's IS_PUNCT
        self.punct_chars = set(Sentencizer.default_punct_chars)
        self.reach = self._cross_run_pairs()
        self._clears = 0
        self.clear()

    def clear(self) -> None:
        """Forget every run and token (the memo's cap was reached, or a test wants it cold); the spaCy
        vocabulary behind them too once it outgrows the cap (making the tokenizers takes ~0.1 s)."""
        self._clears += 1  # count_sentences_in tells by it that entries were replaced
        if getattr(self, "tokenizer", None) is None or len(self.tokenizer.vocab) > self._fresh + 4 * self.memo_size:
            self.tokenizer, self.affixes = self._tokenizers()
            self._fresh = len(self.tokenizer.vocab)  # lexemes of the special cases alone
        self.memo: dict[str, int] = {}  # run -> its entry's number
        self.entries: list[tuple[tuple[int, ...], str]] = []  # (word token ids, sentence classes)
        self._starts, self._counts, self._flat = _Column(), _Column(), _Column()  # entries' ids, CSR
        self._lefts_of, self._rights_of = _Column(), _Column()  # per entry: its pair codes (below)
        self._pn, self._head, self._tail = _Column(), _Column(), _Column()  # per entry: "PN"s in its
        # classes, and its first and last class (EDGE_CLASS), so lines' sentences add up in numpy
        self._codes: list[tuple[int, int]] = []  # per entry: index of its first-pass (last token in
        # _lefts, first token in _rights), -1 if none: only such neighbours can start a cross-run match
        self.token_ids: dict[str, int] = {}
        self._classes: dict[str, str] = {}  # token -> sentencizer class
        strings = self.tokenizer.vocab.strings  # the same tokens by orth (spaCy's string key):
        self._orth_ids: dict[int, int] = {}  # their ids,
        self._orth_classes: dict[int, str] = {}  # sentencizer classes,
        self._orth_lefts: dict[int, int] = {}  # and indices in _lefts, _rights (-1: none)
        self._orth_rights: dict[int, int] = {}
        self._orth_edges: dict[int, int] = {}  # 1: first token of a special case, 2: last, 3: both
        self._newline, self._poison = strings.add("\n"), strings.add(POISON)
        self._table = np.zeros((1024, 5), dtype=np.int64)  # per token id: TABLE_COLUMNS
        self._pending: list[str] = []  # new tokens, not yet in _table
        self._last: dict[str, Words] = {}
        self._counted: tuple[str, int] = ("", 0)  # the last text count_sentences_in joined, its word tokens
        self._runs: tuple[str, Runs | None] = ("", None)  # the last text analyze read, its runs
        self._window_memo: dict[str, tuple[tuple[int, ...], str]] = {}

    def _tokenizers(self):
        """(Datatrove's tokenizer, the same without its last pass), over a vocabulary without lexical
        attributes (the tokens are the same; we need only their text) and with the affix searches of
        `pipelines.affixes` (the same matches), made anew with the memo.

        spaCy applies special cases in two passes: while splitting affixes off each run, then by a
        phrase matcher over the whole text, the only pass that can join runs. The second tokenizer
        stops after the first pass: its load sees no affix patterns, so its matcher stays empty.
        """
        from spacy.tokenizer import Tokenizer
        from spacy.vocab import Vocab

        t, live = self.settings, []
        prefix, suffix = affixes.fast_prefix(t["prefix_search"]), affixes.fast_suffix(t["suffix_search"])
        infix = affixes.fast_infix(t["infix_finditer"])
        gated = lambda f, none: lambda s: f(s) if live else none  # noqa: E731
        full = Tokenizer(Vocab(), **{**t, "prefix_search": prefix, "suffix_search": suffix, "infix_finditer": infix})
        first_pass = Tokenizer(full.vocab, **{**t, "prefix_search": gated(prefix, None),
                                              "suffix_search": gated(suffix, None), "infix_finditer": gated(infix, ())})
        live.append(True)
        return full, first_pass

    def _cross_run_pairs(self) -> int:
        """Index the pairs (a, b) of neighbouring tokens in spaCy's multi-token special cases; return
        the most tokens in one special case.

        A special case matched across runs (even one that changes nothing, but blocks an overlapping
        special case inside a run) has such a pair at some single space between runs: a the last
        token of the run before, b the first of the run after, as spaCy's first pass cut them. No
        special case has a whitespace token among others: none spans other whitespace.
        """
        from spacy.tokenizer import Tokenizer
        from spacy.vocab import Vocab

        rules = self.settings["rules"]
        plain = Tokenizer(Vocab(), **{**self.settings, "rules": {}})
        reach, pairs, cases, self._rule_patterns = 1, set(), [], set()
        for rule, case in rules.items():
            toks = [x.text for x in plain(rule)]
            assert len(toks) == 1 or all(x.strip() for x in toks), f"special case {rule!r} has a whitespace token"
            reach = max(reach, len(toks))
            pairs.update(zip(toks, toks[1:]))
            cases.append([d.get(ORTH, d.get("ORTH")) for d in case])
            if toks != cases[-1]:  # the tokens its match would change
                self._rule_patterns.add(tuple(toks))
        self._rule_keys = set(rules)
        self._rule_strings = self._rule_keys | {"".join(p) for p in self._rule_patterns}  # a cheap first test
        self._rule_firsts, self._rule_lasts = {c[0] for c in cases}, {c[-1] for c in cases}
        self._lefts = {a: i for i, a in enumerate(sorted({a for a, _ in pairs}))}
        self._rights = {b: i for i, b in enumerate(sorted({b for _, b in pairs}))}
        self._pair_codes = np.array(sorted(self._code(self._lefts[a], self._rights[b]) for a, b in pairs))
        return reach

    def _code(self, left: int, right: int) -> int:
        return left * (len(self._rights) + 1) + right

    # --- tokens -------------------------------------------------------------------------------------

    def _intern(self, token: str) -> int:
        i = self.token_ids.get(token)
        if i is None:
            i = self.token_ids[token] = len(self.token_ids)
            self._pending.append(token)
        return i

    def _rows(self, ids: np.ndarray) -> np.ndarray:
        """TABLE_COLUMNS of the tokens `ids`."""
        if self._pending:
            n, new = len(self.token_ids) - len(self._pending), _token_rows(self._pending)
            if len(self.token_ids) > len(self._table):
                grown = np.zeros((2 * len(self.token_ids), 5), dtype=np.int64)
                grown[:n] = self._table[:n]
                self._table = grown
            self._table[n:len(self.token_ids)] = new
            self._pending = []
        return self._table[ids]

    def _class(self, token: str) -> str:
        """The sentencizer's view of a token: P ends a sentence, N may start one, '' neither."""
        c = self._classes.get(token)
        if c is None:
            c = self._classes[token] = "P" if token in self.punct_chars else "" if self.is_punct(token) else "N"
        return c

    def _entry(self, tokens: list[str]) -> tuple[tuple[int, ...], str]:
        """(ids of the non-whitespace tokens, sentencizer classes of all tokens)."""
        if POISON in tokens:
            return POISONED
        return (tuple(self._intern(t.strip()) for t in tokens if t.strip()),
                "".join(map(self._class, tokens)))

    def _fill(self, runs: list[str]) -> None:
        """Tokenize the runs the memo lacks, in the order they first occur (a whitespace run keyed
        `' '+rest` stands for `rest`)."""
        todo = [r for r in dict.fromkeys(runs) if r not in self.memo]
        if len(self.memo) + len(todo) > self.memo_size or len(self.token_ids) > 4 * self.memo_size:
            self.clear()
            todo = list(dict.fromkeys(runs))
        plain, words, spaces = [], [], []
        for r in todo:
            if self._plain(r):
                plain.append(r)
            elif r[0].isspace():
                spaces.append(r)
            elif (tokens := self._affixed(r)) is None:
                words.append(r)
            else:
                self._add(r, (tuple(map(self._intern, tokens)), "".join(map(self._class, tokens))),
                          (self._lefts.get(tokens[-1], -1), self._rights.get(tokens[0], -1)))
        if plain:  # the commonest runs, added in bulk: one token each, of class N (a word: no punctuation)
            first = len(self.entries)
            self.memo.update(zip(plain, range(first, first + len(plain))))
            self.entries.extend([((i,), "N") for i in map(self._intern, plain)])
            self._codes.extend(zip([self._lefts.get(r, -1) for r in plain], [self._rights.get(r, -1) for r in plain]))
        for lo in range(0, len(words), SPACY_BATCH):
            self._fill_by_spacy(words[lo:lo + SPACY_BATCH])
        for run in spaces:
            self._add(run, self._entry([t.text for t in self.tokenizer(run[1:] if run[0] == " " else run)]))

    def _fill_by_spacy(self, words: list[str]) -> None:
        """Tokenize these runs in one spaCy call per pass (the newline between two runs is one token of
        its own)."""
        full = self._orths(self.tokenizer("\n".join(words)))
        # the last pass changed a run's first (last) token only if that token now ends (starts)
        # some special case's tokens: only those runs need the first pass's own cut
        redo = [k for k, toks in enumerate(full) if self._orth_edges[toks[0]] & 1 or self._orth_edges[toks[-1]] & 2]
        first = list(full)
        for k, toks in zip(redo, self._orths(self.affixes("\n".join(words[k] for k in redo))) if redo else ()):
            first[k] = toks
        for run, tokens, first_pass in zip(words, full, first):
            codes = self._orth_lefts[first_pass[-1]], self._orth_rights[first_pass[0]]
            self._add(run, self._orth_entry(tokens), codes)

    def _plain(self, run: str) -> bool:
        """Whether `run` is one token: ASCII letters or digits only (no affix or infix applies), no special case."""
        return run.isascii() and (run.isalpha() or run.isdigit()) and run not in self._rule_keys

    def _affixed(self, run: str) -> list[str] | None:
        """spaCy's tokens of `run` if it is AFFIXED (or a PERMALINK heading), without asking spaCy; else None.

        spaCy peels prefixes and suffixes off a run until what is left is a special case, then cuts
        that at infixes; later its matcher retokenizes any token sequence that a special case's
        tokens (cut without special cases) form. So the cut stands unless a string holding the
        whole stem is a special case, or some of the tokens form one's tokens, or a '.' would stay
        on its word (spaCy cuts it after a lower-case letter, a digit, two capitals or a closing mark).
        """
        if self._plain(run):
            return [run]
        if POISON in run:  # spaCy's own path tells a poisoned run
            return None
        m = AFFIXED.fullmatch(run)
        if m is None:
            return [run] if PERMALINK.fullmatch(run) and run not in self._rule_keys else None
        pre, stem, possessive, post = m.groups()
        tokens = [pre] if pre else []
        first = len(tokens)
        tokens += INFIX.split(stem) if "-" in stem or "." in stem or "/" in stem else [stem]
        last = len(tokens) - 1  # the stem is tokens[first:last + 1]
        if possessive:
            tokens.append(possessive)
        for k, c in enumerate(post, len(tokens)):
            if c == "." and not (tokens[k - 1] in CLOSERS or tokens[k - 1] != "." and DOT_AFTER.search(tokens[k - 1])):
                return None
            tokens.append(c)
        for i in range(len(tokens)):
            piece = ""
            for j in range(i, len(tokens)):
                piece += tokens[j]
                if piece in self._rule_strings and (i <= first and j >= last and piece in self._rule_keys
                                                     or tuple(tokens[i:j + 1]) in self._rule_patterns):
                    return None
        return tokens

    def _orths(self, doc) -> list[list[int]]:
        """The token orths of newline-joined runs, run by run; every new orth interned."""
        orths = doc.to_array(ORTH).tolist()
        strings = self.tokenizer.vocab.strings
        for o in set(orths).difference(self._orth_ids):
            text = strings[o]
            self._orth_ids[o], self._orth_classes[o] = self._intern(text), self._class(text)
            self._orth_lefts[o], self._orth_rights[o] = self._lefts.get(text, -1), self._rights.get(text, -1)
            self._orth_edges[o] = (text in self._rule_firsts) | (text in self._rule_lasts) << 1
        cuts = [i for i, o in enumerate(orths) if o == self._newline]
        return [orths[lo + 1:hi] for lo, hi in zip([-1, *cuts], [*cuts, len(orths)])]

    def _orth_entry(self, orths: list[int]) -> tuple[tuple[int, ...], str]:
        if self._poison in orths:
            return POISONED
        return tuple(map(self._orth_ids.__getitem__, orths)), "".join(map(self._orth_classes.__getitem__, orths))

    def _add(self, run: str, entry: tuple[tuple[int, ...], str], codes: tuple[int, int] = (-1, -1)) -> None:
        """Remember `run`; `codes`: the first pass's (last token in _lefts, first token in _rights)."""
        self.memo[run] = len(self.entries)
        self.entries.append(entry)
        self._codes.append(codes)

    def _flush(self) -> None:
        """Put the new entries' token ids and pair codes into the columns numpy gathers from."""
        new = self.entries[self._counts.size:]
        if new:
            counts = [len(ids) for ids, _ in new]
            self._starts.extend(list(accumulate(counts, initial=self._flat.size))[:-1])
            self._counts.extend(counts)
            self._flat.extend(list(chain.from_iterable(map(FIRST, new))))
            codes = self._codes[len(self.entries) - len(new):]
            self._lefts_of.extend(list(map(FIRST, codes)))
            self._rights_of.extend(list(map(SECOND, codes)))
            classes = list(map(SECOND, new))
            self._pn.extend([c.count("PN") for c in classes])
            self._head.extend([EDGE_CLASS.get(c[:1], 0) for c in classes])  # 0 for POISONED's, whose
            self._tail.extend([EDGE_CLASS.get(c[-1:], 0) for c in classes])  # texts are counted alone

    def _numbers(self, runs: list[str]) -> np.ndarray:
        """The memo entry numbers of these runs (tokenizing the new ones)."""
        try:
            r = np.fromiter(map(self.memo.__getitem__, runs), dtype=np.int64, count=len(runs))
        except KeyError:
            self._fill(runs)
            r = np.fromiter(map(self.memo.__getitem__, runs), dtype=np.int64, count=len(runs))
        self._flush()
        return r

    def _pairs(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Positions k where runs `left[k]`, `right[k]` may be joined by a special case: the first
        pass's last token of the one and first token of the other are neighbours in one (see
        `_cross_run_pairs`); only there can the matcher join runs."""
        a, b = self._lefts_of.data[left], self._rights_of.data[right]
        both = np.flatnonzero((a >= 0) & (b >= 0))
        if not len(both):
            return both
        codes = self._code(a[both], b[both])
        at = np.minimum(np.searchsorted(self._pair_codes, codes), len(self._pair_codes) - 1)
        return both[self._pair_codes[at] == codes]

    def _may_cross(self, r: np.ndarray) -> bool:
        """Whether a special case may join two of these runs (whitespace runs included: only runs
        with a single space between count)."""
        space = self.memo.get(" ")
        if space is None or len(r) < 3:
            return False
        return bool((r[1:-1][self._pairs(r[:-2], r[2:])] == space).any())

    def _gather(self, r: np.ndarray) -> np.ndarray:
        """Word token ids of the runs numbered `r`, one after the other."""
        counts = self._counts.data[r]
        first = self._starts.data[r] - (np.cumsum(counts) - counts)  # where each run's ids start, less its offset
        return self._flat.data[np.repeat(first, counts) + np.arange(int(counts.sum()))]

    def _windows(self, text: str, r: np.ndarray, pairs: np.ndarray | None = None) -> list[tuple[int, int, int, int]]:
        """Stretches of runs that spaCy must tokenize whole, as (first run, last run + 1, first
        character, last character + 1): `reach` runs to each side of every single space between runs
        a special case may join (`_pairs`), within runs joined by single spaces; stretches that
        overlap or have one ' ' between them merged (so a window holds no whitespace but single
        spaces). `r`: the numbers of the text's non-whitespace runs.

        A match that joins runs lies inside one window, and so does every match that overlaps it (all
        that decide which matches spaCy keeps), so a window's tokens are the text's.
        """
        if pairs is None:
            pairs = self._pairs(r[:-1], r[1:])
        if not len(pairs):
            return []
        starts, ends, single = _run_gaps(text)

        def spaced(j: int) -> bool:  # runs j and j+1 have one ' ' between them
            return bool(single[j])

        spans: list[list[int]] = []  # [first run, last run]
        for j in pairs.tolist():
            if not spaced(j):
                continue
            lo, hi = j, j + 1
            for _ in range(self.reach):
                if lo > 0 and spaced(lo - 1):
                    lo -= 1
                if hi + 1 < len(starts) and spaced(hi):
                    hi += 1
            if spans and (lo <= spans[-1][1] or lo == spans[-1][1] + 1 and spaced(spans[-1][1])):
                spans[-1][1] = max(spans[-1][1], hi)
            else:
                spans.append([lo, hi])
        return [(lo, hi + 1, int(starts[lo]), int(ends[hi])) for lo, hi in spans]

    def _window(self, text: str) -> tuple[tuple[int, ...], str]:
        entry = self._window_memo.get(text)
        if entry is None:
            if len(self._window_memo) >= self.memo_size:
                self._window_memo.clear()
            entry = self._window_memo[text] = self._entry([t.text for t in self.tokenizer(text)])
        return entry

    def _tokens(self, text: str) -> list[tuple[tuple[int, ...], str]]:
        """Entries whose word token ids and sentence classes, in order, are `text`'s (without
        Datatrove's IS_ALPHA retry)."""
        if not text:
            return []
        runs = RUNS.findall(text)
        if runs[0][0].isspace():  # a leading whitespace run is tokenized whole
            runs[0] = " " + runs[0]
        r = self._numbers(runs)
        out = list(map(self.entries.__getitem__, r.tolist()))
        if POISONED not in out and self._may_cross(r):
            off, runs_out, k = int(runs[0][0].isspace()), [], 0  # non-whitespace run j is r[off + 2j]
            for lo, hi, a, b in self._windows(text, r[off::2]):
                runs_out += out[k:off + 2 * lo]
                runs_out.append(self._window(text[a:b]))
                k = off + 2 * hi - 1
            out = runs_out + out[k:]
        if POISONED in out:
            raise _Poisoned
        return out

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
        if POISON in text:
            ids = np.fromiter(chain.from_iterable(map(FIRST, self._retried(text))), dtype=np.int64)
        else:  # whitespace runs hold no word token
            runs, pairs = self._split(text)
            self._runs, r = (text, runs), runs.numbers
            parts, k = [], 0
            for lo, hi, a, b in self._windows(text, r, pairs):
                parts += [self._gather(r[k:lo]), np.array(self._window(text[a:b])[0], dtype=np.int64)]
                k = hi
            ids = np.concatenate([*parts, self._gather(r[k:])]) if parts else self._gather(r)
        rows = self._rows(ids)
        words = Words(ids, rows[:, 0], rows[:, 1].astype(bool), rows[:, 2].astype(bool), (rows[:, 3], rows[:, 4]))
        if len(self._last) >= 4:
            self._last.pop(next(iter(self._last)))
        self._last[text] = words
        return words

    def count_words(self, text: str) -> int:
        """`len(analyze(text))`, without tokenizing again the text `count_sentences_in` just joined
        (C4's kept lines, which FineWeb then reads)."""
        if text and text == self._counted[0]:
            return self._counted[1]
        return len(self.analyze(text))

    def count_sentences(self, text: str) -> int:
        """Sentences spaCy's sentencizer finds (1 for a text without tokens, as Datatrove counts).

        A sentence starts at every N token whose previous P-or-N token is a P.
        """
        return 1 + "".join(map(SECOND, self._retried(text))).count("PN")

    def _split(self, text: str) -> tuple[Runs, np.ndarray]:
        """The Runs of `text`, and the positions of neighbours a special case may join (`_pairs`)."""
        r = self._numbers(text.split())
        pairs = self._pairs(r[:-1], r[1:])
        return Runs(r, self._clears, len(pairs) > 0), pairs

    def runs_of(self, text: str) -> Runs:
        """The memo numbers of `text.split()` (those `analyze` took, if `text` was the last it read)."""
        if self._runs[0] == text and self._runs[1].clears == self._clears:
            return self._runs[1]
        return self._split(text)[0]

    def count_sentences_in(self, lines: list[str], runs: Runs | None = None) -> int:
        """`sum(map(count_sentences, lines))`, in one pass over the lines joined by newlines (lines
        holding a line break or surrounding whitespace, which joining would merge, are counted alone).
        `runs`: the lines' runs, if the caller has them (`runs_of(text).select(…)` for lines of `text`).
        """
        alone = [x for x in lines if not x or x[0].isspace() or x[-1].isspace() or "\n" in x]
        joined = [x for x in lines if x and not x[0].isspace() and not x[-1].isspace() and "\n" not in x]
        n = sum(map(self.count_sentences, alone))
        if not joined:
            return n
        text = "\n".join(joined)
        if POISON in text:
            return n + sum(map(self.count_sentences, joined))
        if not has_other_space(text):  # words one ' ' apart: each line's first run starts a line
            if runs is None or runs.clears != self._clears:  # none given, or the memo was emptied since
                runs = Runs(self._numbers(text.split()), self._clears, True)
            r = runs.numbers
            pn, head, tail = self._pn.data[r], self._head.data[r], self._tail.data[r]
            n_words = int(self._counts.data[r].sum())
            # inside a line: the window stands for runs lo..hi-1
            for lo, hi, a, b in self._windows(text, r) if runs.pairs else ():
                ids, classes = self._window(text[a:b])
                n_words += len(ids) - int(self._counts.data[r[lo:hi]].sum())
                pn[lo], head[lo], tail[lo] = classes.count("PN"), EDGE_CLASS[classes[:1]], EDGE_CLASS[classes[-1:]]
                pn[lo + 1:hi], head[lo + 1:hi], tail[lo + 1:hi] = 0, 0, 0  # no classes: skipped
            firsts = np.cumsum([x.count(" ") + 1 for x in joined[:-1]], dtype=np.int64)
            self._counted = (text, n_words)
            return n + len(joined) + self._sentence_starts(pn, np.insert(head, firsts, 3), np.insert(tail, firsts, 3))
        r = self._numbers(RUNS.findall(text))
        if self._may_cross(r):  # the classes of the text's tokens, "|" for a line break
            clears = self._clears
            entries = self._tokens(text)
            if clears != self._clears:  # the memo was emptied meanwhile: no entry to tell breaks by
                return n + sum(map(self.count_sentences, joined))
            newline = self.entries[self.memo["\n"]] if "\n" in self.memo else None
            return n + len(joined) + "".join("|" if e is newline else e[1] for e in entries).count("PN")
        breaks = r == self.memo.get("\n", -1)
        head, tail = self._head.data[r], self._tail.data[r]
        head[breaks], tail[breaks] = 3, 3
        return n + len(joined) + self._sentence_starts(self._pn.data[r], head, tail)

    @staticmethod
    def _sentence_starts(pn: np.ndarray, head: np.ndarray, tail: np.ndarray) -> int:
        """The "PN"s of the classes of runs joined, line breaks (3 in `head`, `tail`) between lines:
        those inside each run (`pn`), plus a P-ending run followed by an N-starting one (runs without
        classes skipped)."""
        kept = head != 0
        head, tail = head[kept], tail[kept]
        return int(pn.sum()) + int(((tail[:-1] == 1) & (head[1:] == 2)).sum())

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
