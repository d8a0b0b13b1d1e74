"""The shared word tokenizer's shortcuts against spaCy itself (the filters' equality tests cover the rest)."""

from __future__ import annotations

import random
import re
import string

import spacy
from datatrove.utils.text import PUNCTUATION_SET

from pipelines.words import (
    AFFIXED,
    OTHER_SPACE,
    POWERS,
    SPACY_BATCH,
    WordTokenizer,
    _run_gaps,
    _token_rows,
    english_tokenizer,
    has_other_space,
)


def test_affixed_runs_are_spacy_tokens():
    """Runs the tokenizer cuts without spaCy (AFFIXED, no special case applying) are cut as spaCy cuts
    them: words, digits, hyphenated, slashed, dotted and underscored stems, brackets, quotes,
    possessives, up to three closing marks, and the special cases' own words (which must fall back
    to spaCy)."""
    tok = WordTokenizer()
    spacy_tokenizer = spacy.blank("en").tokenizer
    rules = spacy_tokenizer.rules
    rng = random.Random(0)
    stems = set(string.ascii_letters) | set(string.digits)
    stems |= {w for k in rules for w in k.replace("-", " ").replace(".", " ").replace("'", " ").split() if w.isalnum()}
    for _ in range(3000):
        alphabet = rng.choice([string.ascii_letters, string.ascii_lowercase, string.ascii_uppercase, string.digits])
        stems.add("".join(rng.choices(alphabet, k=rng.randint(1, 9))))
    letters = sorted(s for s in stems if s.isalpha())
    stems |= {"-".join(rng.choices(letters, k=rng.randint(2, 4))) for _ in range(2000)}
    stems |= {"/".join(rng.choices(letters, k=rng.randint(2, 3))) for _ in range(1000)}
    stems |= {"_".join(rng.choices(letters, k=rng.randint(2, 3))) + rng.choice(["", "", "1", "3", "64"])
              for _ in range(1000)}
    stems |= {rng.choice(letters) + rng.choice(["", "0", "9", "12"]) for _ in range(1000)}
    stems |= {f"{rng.choice(letters)}.{rng.choice(letters)}" for _ in range(2000)}  # a.b, a.Bc, A.b, aB.Cd ...
    stems |= {f"{rng.choice(letters)}.{rng.choice(letters).capitalize()}" for _ in range(1000)}
    stems |= {".".join(w.lower() for w in rng.choices(letters, k=rng.randint(2, 4))) for _ in range(2000)}
    stems |= {rng.choice(".:").join(str(rng.randint(0, 99)) for _ in range(rng.randint(2, 4))) for _ in range(1000)}
    closers = [",", ";", ":", "!", "?", '"', "”", ")", ".", "()", "]", "'", "’"]
    fixed = ["", ",", ";", ":", "!", "?", ")", ").", "),", ".", '"', "'s", "...", "-", "()", "”", "().", "’s"]
    fast = cut = new = 0
    for stem in sorted(stems):
        posts = fixed + [rng.choice(["", "", "'s", "’s", "'S", "’S"])
                         + "".join(rng.choices(closers, k=rng.randint(1, 4))) for _ in range(3)]
        for pre in ("", "(", '"', "'", "[", "“"):
            for post in posts:
                if rng.random() > 0.35:  # a third of the combinations: > 400,000 runs compared
                    continue
                run = pre + stem + post
                got = tok._affixed(run)
                cut += AFFIXED.fullmatch(run) is not None
                if got is not None:
                    fast += 1
                    new += "/" in stem or "'" in run or "’" in run or "[" in pre or len(got) - stem.count("-") > 4
                    assert got == [t.text for t in spacy_tokenizer(run)], run
    assert fast > 300_000 and new > 150_000 and cut > fast, (fast, new, cut)  # special cases take no shortcut
    assert tok._affixed("dont") is None and tok._affixed("Mr.") is None and tok._affixed("(don't") is None
    assert tok._affixed("failure.New") == ["failure", ".", "New"] and tok._affixed("a.New") is None  # "a." is one
    assert tok._affixed("IS_ALPHA") is None and tok._affixed("xIS_ALPHA1,") is None
    assert tok._affixed("FMA.") == ["FMA", "."] and tok._affixed("X.") is None and tok._affixed("1.6.5.") == ["1.6.5", "."]
    assert tok._affixed("it's") is None and tok._affixed("val):") is None and tok._affixed("word..") is None  # "):"
    assert tok._affixed("John's).") == ["John", "'s", ")", "."] and tok._affixed("dogs'") == ["dogs", "'"]
    marked = {rng.choice("aZ5") + "".join(rng.choices("abcXYZ019_()?!;", k=rng.randint(0, 10))) + "¶"
              for _ in range(5000)}
    for run in sorted(marked | {"IS_ALPHA¶", "(word¶", "a-b¶", "os.EX_OK¶", "word¶."}):
        got = tok._affixed(run)
        assert got is None or got == [t.text for t in spacy_tokenizer(run)], run
    assert all(tok._affixed(run) is not None for run in marked) and len(marked) > 3000
    assert tok._affixed("(word¶") is None and tok._affixed("IS_ALPHA¶") is None


def test_token_rows_hash_each_character():
    rng = random.Random(1)
    tokens = ["".join(chr(rng.choice([rng.randint(33, 126), rng.randint(0x80, 0x3000), rng.randint(0x10000, 0x10FFFF)]))
                      for _ in range(rng.randint(1, 30))) for _ in range(2000)] + ["a" * 3000, "...", "é", "IS_ALPHA"]
    rows = _token_rows(tokens)
    for token, row in zip(tokens, rows.tolist()):
        hashes = []
        for powers in POWERS:
            v = 0
            for c in token:
                v = (v * powers.base + ord(c) + 1) % powers.p
            hashes.append(v)
        assert row == [len(token), any(c not in PUNCTUATION_SET for c in token), any(c.isalpha() for c in token),
                       *hashes], token


def test_text_with_many_new_runs():
    """A text whose new runs fill several spaCy calls (SPACY_BATCH runs each), special cases among
    them, gets spaCy's tokens and sentence count, cold and warm."""
    from datatrove.utils.text import split_into_sentences
    from datatrove.utils.typeshelper import Languages
    from datatrove.utils.word_tokenizers import load_word_tokenizer

    rng = random.Random(4)
    tok = WordTokenizer()
    shapes = ["{}¶", "({}.)", "{}’s", "--{}", "{}/{}", "'{}',", "<{}@{}.org>", "{}=None,", "{}).{}", "#{}."]
    runs = [rng.choice(shapes).format(*("".join(rng.choices(string.ascii_letters, k=rng.randint(1, 7)))
                                        for _ in range(2))) for _ in range(6 * SPACY_BATCH)]
    runs += rng.sample(sorted(tok.settings["rules"]), 300)
    rng.shuffle(runs)
    text = " ".join(f"{r}{rng.choice(['', '', '.', '!'])}" for r in runs)
    assert sum(tok._affixed(r) is None for r in set(text.split())) > 3 * SPACY_BATCH  # several spaCy calls
    want = load_word_tokenizer(Languages.english).word_tokenize(text)
    sentences = len(split_into_sentences(text, Languages.english))
    for _ in ("cold", "warm"):
        got = tok.analyze(text).ids.tolist()
        names = {i: t for t, i in tok.token_ids.items()}
        assert [names[i] for i in got] == want
        assert tok.count_sentences(text) == sentences
        tok._last.clear()


def test_has_other_space_is_the_regex():
    rng = random.Random(5)
    spaces = [" ", "  ", "\n", "\t", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0", "\u2028",
              "\u3000"]
    found = 0
    for _ in range(20_000):
        pieces = rng.choices(["a", "b.", "é", "x"] + spaces, weights=[8, 8, 1, 8] + [1] * len(spaces),
                             k=rng.randint(0, 12))
        text = "".join(pieces)
        want = OTHER_SPACE.search(text) is not None
        assert has_other_space(text) == want, repr(text)
        found += want and text.isascii()
    assert found > 1000


def test_english_tokenizer_is_spacy_blank_en():
    """The tokenizer arguments are those of Datatrove's `spacy.blank("en")` tokenizer."""
    t, got = spacy.blank("en").tokenizer, english_tokenizer()
    assert got["rules"] == t.rules and got["token_match"] == t.token_match and got["url_match"] == t.url_match
    for name in ("prefix_search", "suffix_search", "infix_finditer"):
        assert got[name].__self__.pattern == getattr(t, name).__self__.pattern
        assert got[name].__self__.flags == getattr(t, name).__self__.flags
    assert t.faster_heuristics  # the default, which english_tokenizer() leaves to Tokenizer


def test_run_gaps_are_regex_runs():
    rng = random.Random(6)
    alphabet = ["a", "b", " ", "  ", "\n", "\t", "\u3000", "\u3001", "漢", "\U0001F600", "\xa0", "é", "\u2028",
                "\x1f"]
    singles = 0
    for _ in range(20_000):
        text = "".join(rng.choices(alphabet, k=rng.randint(1, 15)))
        starts, ends, single = _run_gaps(text)
        spans = [m.span() for m in re.finditer(r"\S+", text)]
        assert list(zip(starts.tolist(), ends.tolist())) == spans, repr(text)
        want = [a[1] + 1 == b[0] and text[a[1]] == " " for a, b in zip(spans, spans[1:])]
        assert single.tolist() == want, repr(text)
        singles += sum(want)
    assert singles > 1000
