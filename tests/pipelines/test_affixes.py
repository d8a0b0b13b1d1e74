"""The fast affix searches return what spaCy's own compiled searches return."""

from __future__ import annotations

import random
import re
import string

import pytest
import spacy

from pipelines.affixes import fast_infix, fast_prefix, fast_suffix

TOKENIZER = spacy.blank("en").tokenizer


def _pieces(n: int) -> list[str]:
    """Runs as spaCy splits them: words, numbers, the affix patterns' own characters and mixtures of
    all of these, long dot runs, line breaks (where `$` matters), empty and one-character pieces."""
    rng = random.Random(0)
    special = sorted({c for p in (TOKENIZER.prefix_search, TOKENIZER.suffix_search, TOKENIZER.infix_finditer)
                      for c in p.__self__.pattern if not c.isalnum() and not c.isspace()})
    alphabets = [string.ascii_letters, string.digits, "".join(special), ".", "…'’\"()-,;:!?%$€°",
                 "äöüßéèçñ¶©®°™→★☺", string.ascii_lowercase + ".-/:=<>", "\n.a"]
    out = ["", ".", "..", "a", "\n", "a\n", "...\n", "a." + "." * 40, "a" + "." * 7, "km", "5km", "$5", "5$"]
    for _ in range(n):
        k = rng.choice([1, 2, 3, 5, 8, 13, 40])
        out.append("".join(rng.choice(rng.choice(alphabets)) for _ in range(k)))
        w = "".join(rng.choices(string.ascii_letters + string.digits, k=rng.randint(0, 8)))
        out.append(rng.choice(special) * rng.randint(0, 3) + w + "".join(rng.choices(special, k=rng.randint(0, 4)))
                   + "." * rng.choice([0, 0, 1, 2, 3, 6, 9]))
    return out


def _span(m):
    return None if m is None else m.span()


def test_shortcuts_apply_to_spacy_english():
    """spaCy's English patterns have the shapes the shortcuts read (else the tests below test nothing new)."""
    assert fast_prefix(TOKENIZER.prefix_search) != TOKENIZER.prefix_search
    assert fast_suffix(TOKENIZER.suffix_search) is not TOKENIZER.suffix_search
    assert fast_infix(TOKENIZER.infix_finditer) is not TOKENIZER.infix_finditer


def test_fast_searches_equal_spacys():
    prefix, suffix, infix = (fast_prefix(TOKENIZER.prefix_search), fast_suffix(TOKENIZER.suffix_search),
                             fast_infix(TOKENIZER.infix_finditer))
    pieces = _pieces(15_000)
    found = {"prefix": 0, "suffix": 0, "infix": 0, "long suffix": 0}
    for s in pieces:
        want = _span(TOKENIZER.suffix_search(s))
        assert _span(suffix(s)) == want, s
        found["suffix"] += want is not None
        found["long suffix"] += want is not None and want[1] - want[0] > 5
        want = _span(TOKENIZER.prefix_search(s))
        assert _span(prefix(s)) == want, s
        found["prefix"] += want is not None
        want = [m.span() for m in TOKENIZER.infix_finditer(s)]
        assert [m.span() for m in infix(s)] == want, s
        found["infix"] += bool(want)
    assert min(found.values()) > 500, found  # each kind of match occurred


def _spans(result) -> list | tuple | None:
    """A search's match, or finditer's matches, as spans."""
    return _span(result) if result is None or isinstance(result, re.Match) else [m.span() for m in result]


SUFFIX, INFIX, PREFIX = (fast_suffix, "search", "abcx.\n", 2), (fast_infix, "finditer", "ab-./:xyz1", 3), \
    (fast_prefix, "search", "abxy.\n", 4)  # (builder, method, alphabet of the pieces, seed)


@pytest.mark.parametrize("kind, pattern, shaped", [
    (SUFFIX, r"a$|bc$|\.\.+$", True),
    (SUFFIX, r"(?<=x)a$|b$", True),
    (SUFFIX, r"a+$|b$", True),  # an unbounded run of one character
    (SUFFIX, r"(?:aa)+$|b$", False),  # even runs only: not a run of any length
    (SUFFIX, r"[ab]+$|c$", False),
    (SUFFIX, r"a$|b", False),  # an alternative not anchored at the end
    (INFIX, r"(?<=[a-z])-(?=[a-z])|\.\.+|[/:]", True),
    (INFIX, r"x?y|z", False),  # x? can match nothing: the match may start on y
    (INFIX, r"\d-\d", False),  # a category: not listed
    (INFIX, r"[^a]b", False),
    (PREFIX, r"^a|^ab|^\.\.+|^[xy]b", True),  # which alternative comes first decides the match
    (PREFIX, r"^(?=a)a|^b+|^", True),  # an empty alternative
    (PREFIX, r"^a|b", False),  # an alternative not anchored at the start
    (PREFIX, r"^a|^b", False),  # sre merges single characters into one class: nothing to split
])
def test_other_pattern_shapes(kind, pattern, shaped):
    """Other patterns: the shortcut is taken only where it is exact, and then agrees."""
    build, method, alphabet, seed = kind
    plain = getattr(re.compile(pattern), method)
    fast = build(plain)
    assert (fast is not plain) == shaped
    rng = random.Random(seed)
    for _ in range(3000):
        s = "".join(rng.choices(alphabet, k=rng.randint(0, 12)))
        assert _spans(fast(s)) == _spans(plain(s)), (pattern, s)


def test_multiline_prefix_keeps_search():
    assert fast_prefix(re.compile(r"^a|^bc", re.M).search) == re.compile(r"^a|^bc", re.M).search


def test_tokenizer_with_fast_searches_equals_spacys():
    """spaCy's tokenizer given the fast searches cuts the pieces as spaCy's own does."""
    from spacy.tokenizer import Tokenizer

    t = TOKENIZER
    fast = Tokenizer(t.vocab, rules=t.rules, prefix_search=fast_prefix(t.prefix_search),
                     suffix_search=fast_suffix(t.suffix_search), infix_finditer=fast_infix(t.infix_finditer),
                     token_match=t.token_match, url_match=t.url_match, faster_heuristics=t.faster_heuristics)
    text = " ".join(p for p in _pieces(5_000) if p.strip())
    want = [x.text for x in t(text)]
    assert [x.text for x in fast(text)] == want and len(want) > 20_000
