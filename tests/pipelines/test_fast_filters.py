"""Datatrove's filters and ours side by side: per document the same keep/drop, reason and C4 text.

Corpora: the bundled sample; >= 20,000 seeded adversarial texts (spaCy special cases, unicode
whitespace, ellipses, bullets, repeats, ("ab","c")/("a","bc") pairs, IS_ALPHA, empty and one-word
texts); French, German, code-heavy and list-heavy pages. Ours runs with a cold memo, a warm one, and
a memo so small that it is emptied again and again.
"""

from __future__ import annotations

import importlib.metadata  # noqa: F401  (datatrove's dependency check needs it imported)
import random
import re
from collections import Counter

import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from datatrove.data import Document
from datatrove.pipeline.filters import C4QualityFilter, FineWebQualityFilter, GopherQualityFilter
from datatrove.pipeline.filters import GopherRepetitionFilter
from datatrove.pipeline.filters.gopher_repetition_filter import find_duplicates as reference_find_duplicates
from datatrove.utils.typeshelper import Languages
from datatrove.utils.word_tokenizers import load_word_tokenizer

from pipelines import words
from pipelines.config import JobConfig
from pipelines.fast_filters import FastC4Quality, FastFineWebQuality, FastGopherQuality, FastGopherRepetition
from pipelines.fast_filters import FastURLFilter, OfflineURLFilter, find_duplicates, split_lines, split_paragraphs
from pipelines.filters import build_filters
from pipelines.ngrams import top_ngram_bound, top_ngram_chars
from shards.layout import SAMPLE_DIR

CHAIN = ("gopher_repetition", "gopher_quality", "c4_quality", "fineweb_quality")


def reference_filters():
    # Datatrove's tokenizer keeps `IS_ALPHA` the first time only (a spaCy memory-zone bug), then
    # retries without it: meet that first time here so every document sees the retry
    load_word_tokenizer(Languages.english).word_tokenize("IS_ALPHA")
    return [GopherRepetitionFilter(), GopherQualityFilter(), C4QualityFilter(filter_no_terminal_punct=False),
            FineWebQualityFilter(), GopherQualityFilter(min_doc_words=1)]


def fast_filters():
    return [FastGopherRepetition(), FastGopherQuality(), FastC4Quality(filter_no_terminal_punct=False),
            FastFineWebQuality(), FastGopherQuality(min_doc_words=1)]


def run(f, text: str):
    """(result, text after the filter); an exception counts as a result, by type."""
    doc = Document(text=text, id="0")
    try:
        res = f.filter(doc)
    except Exception as e:  # Datatrove divides by len(text): compare crashes too
        res = ("error", type(e).__name__)
    return (res if isinstance(res, tuple) else (bool(res), None)), doc.text


def chain(filters, texts):
    """Per text: (name of the dropping filter or 'kept', reason, final text)."""
    out = []
    for text in texts:
        for name, f in zip(CHAIN, filters):
            (kept, reason), text = run(f, text)
            if kept is not True:
                out.append((name, kept, reason, None))
                break
        else:
            out.append(("kept", True, None, text))
    return out


def each(filters, texts):
    """Every filter on every text alone (FineWeb also on C4's rewritten texts; Gopher quality also
    with min_doc_words=1, so that short texts reach its later rules)."""
    ref_c4 = [run(filters[2], t) for t in texts]
    out = [run(f, t) for f in (filters[0], filters[1], filters[3], filters[4]) for t in texts]
    return out + ref_c4 + [run(filters[3], t) for (kept, _), t in ref_c4 if kept is True]


def compare(texts, tiny_memo: int = 0):
    """Reference and ours with a cold memo, then warm, then (on the first `tiny_memo` texts) a memo of
    64 runs, emptied again and again; returns the reference's (chain, each) decisions."""
    ref_f = reference_filters()
    ref = chain(ref_f, texts), each(ref_f, texts)
    for label, memo_size, n in (("cold", 200_000, len(texts)), ("warm", None, len(texts)), ("tiny", 64, tiny_memo)):
        if not n:
            continue
        if memo_size:
            words._shared = words.WordTokenizer(memo_size=memo_size)
        ours_f = fast_filters()
        expect = ref if n == len(texts) else (chain(ref_f, texts[:n]), each(ref_f, texts[:n]))
        ours = chain(ours_f, texts[:n]), each(ours_f, texts[:n])
        for kind, r, o in zip(("chain", "each filter"), expect, ours):
            assert len(r) == len(o)
            diff = [(a, b) for a, b in zip(r, o) if a != b]
            assert not diff, f"{kind}, {label} memo: {len(diff)} differences, first {diff[:3]}"
        if label == "tiny":  # emptied: it holds at most the cap plus one text's runs, far fewer than seen
            runs = [set(words.RUNS.findall(t)) for t in texts[:n]]
            bound = 64 + max(map(len, runs)) + 1
            assert len(words._shared.memo) <= bound < len(set().union(*runs))
    words._shared = None
    return ref


def reasons(decisions) -> Counter:
    chained, alone = decisions
    return Counter(d[2] for d in chained if d[0] != "kept") + Counter(r for (k, r), _ in alone if k is not True)


# --- corpora ------------------------------------------------------------------------------------------

def sample_texts() -> list[str]:
    rows = [r for f in sorted(SAMPLE_DIR.glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    return [r["content"] for r in rows if r["content"] and r["content"].strip()]


SPECIALS = sorted(words.english_tokenizer()["rules"])
EN = ("the be to of and that have with a in is it for on as was this by not are from at or an they "
      "can you his her we all there their will would about which when one make like time no just him know "
      "take people into year your good some could them see other than then now look only come its over").split()
FR = ("le la les des une été très où à ça être français qu'il l'homme aujourd'hui c'est n'est s'il "
      "déjà après château œuvre naïve garçon forêt île hôtel Noël élève peut-être").split()
DE = ("der die das und ist nicht Straße Größe Mädchen über schön Bücher Fußball gemütlich "
      "Donaudampfschifffahrt z.B. usw. bzw. Dr. Nr. ca. 1.000,50 €").split()
CODE = ("def f(x): return x[i]+1 {} {'a': [1, 2]} a=[b] x==y i++ --flag -> => :: && || != <= >= "
        "#include <stdio.h> printf(\"%d\\n\", n); console.log('hi'); $var @decorator ::= "
        "http://example.com/a?b=c mail@example.org C++ C# .NET node.js 3.14 1e-5 0x1F").split()
PUNCT = [".", "...", "…", "!", "?", "'", '"', "•", "-", "#", ",", ";", ":", "(", ")", "[1]", "[edit]",
         "[citation needed]", "[]", "=", "[", "<", ">", "_", "*", ")-:", ":-)", "'s", "n't", "e.g.", "a.m."]
PHRASES = ["lorem ipsum", "Lorem Ipsum dolor", "javascript", "JavaScript required", "cookie policy",
           "privacy policy", "terms of use", "{", "IS_ALPHA", "xIS_ALPHAy", "(IS_ALPHA)"]
SPACES = [" ", " ", " ", " ", "  ", "\t", "\n", "\n\n", "\n\n\n", "\r\n", "\xa0", "\u2003", "\u3000", "\x0b",
          "\x0c", "\x1c", "\x85", "\u2028", " \n", "\n ", "\t\t"]


def adversarial(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.03:
        return rng.choice(["", " ", "\n", "word", "IS_ALPHA", "...", "a", "Hello.", "\xa0", "’"])
    if kind < 0.08:  # a list of short lines, hashes or ellipses
        item = rng.choice(["{} {}.", "• {} {}", "- {}", "# {} {} #", "{} {}...", "{}…", "{} ... {}",
                           "{} Donaudampfschifffahrtsgesellschaft{}"])
        return "\n".join(item.format(rng.choice(EN), rng.choice(["", "", "", "."] + FR + DE))
                         for _ in range(rng.randint(2, 12)))
    pools = [EN] * 6 + [FR, DE, CODE, PUNCT, SPECIALS, PHRASES]
    toks = []
    for _ in range(rng.choice([1, 3, 6, 12, 25, 50])):
        r = rng.random()
        if r < 0.08 and toks:  # repeat an n-gram
            n = rng.randint(1, 10)
            toks.extend(toks[-n:] if rng.random() < 0.5 else toks[:n])
        elif r < 0.12:  # ("ab", "c") / ("a", "bc")
            w = rng.choice(EN) + rng.choice(EN)
            k = rng.randint(1, len(w) - 1)
            toks.extend([w[:k], w[k:], w])
        elif r < 0.16:  # a special case with spaces between its characters
            s = rng.choice(SPECIALS)
            toks.append(" ".join(s) if rng.random() < 0.5 else s)
        else:
            toks.append(rng.choice(rng.choice(pools)))
    text = ""
    for t in toks:
        text += t + (rng.choice(SPACES) if rng.random() < 0.35 else " ")
    if rng.random() < 0.3:  # repeated lines
        lines = text.split("\n")
        text = "\n".join(lines + rng.choices(lines, k=len(lines)))
    if rng.random() < 0.2:
        text = "\n".join(rng.choice(["• ", "- ", "* ", "1. "]) + line for line in text.split("\n"))
    if rng.random() < 0.2:
        text = rng.choice(SPACES) + text
    return text if rng.random() < 0.5 else text.strip()


def page(rng: random.Random, kind: str) -> str:
    """A longer page of one kind: fr, de, code or list."""
    vocab = {"fr": FR + EN[:20], "de": DE + EN[:20], "code": CODE + EN, "list": EN + PUNCT[:8]}[kind]
    lines = []
    for _ in range(rng.randint(8, 40)):
        n = rng.randint(2, 25)
        line = " ".join(rng.choice(vocab) for _ in range(n))
        if kind == "list":
            line = rng.choice(["• ", "- ", "* ", f"{rng.randint(1, 9)}. "]) + line
        elif kind == "code" and rng.random() < 0.4:
            line = "    " * rng.randint(0, 3) + line
        lines.append(line + rng.choice([".", "", "!", "?", ":", ";", "..."]))
    return rng.choice(["\n", "\n\n"]).join(lines)


def crosses(tok: words.WordTokenizer, text: str) -> bool:
    """Whether a special case may join runs of `text` (so `WordTokenizer` has spaCy tokenize a window)."""
    if not text or words.POISON in text:
        return False
    runs = words.RUNS.findall(text)
    if runs[0][0].isspace():
        runs[0] = " " + runs[0]
    return tok._may_cross(tok._numbers(runs))


# --- tests --------------------------------------------------------------------------------------------

def test_sample_equal():
    texts = sample_texts()
    ref = compare(texts, tiny_memo=40)
    dropped = Counter(d[0] for d in ref[0])
    assert len(texts) >= 150 and dropped["kept"] > 0 and sum(v for k, v in dropped.items() if k != "kept") > 0, dropped


def test_adversarial_equal():
    rng = random.Random(0)
    texts = [adversarial(rng) for _ in range(20_000)]
    ref = compare(texts, tiny_memo=3000)
    seen = reasons(ref)
    # the cases under test occurred: every rule fired, crashes included, and specials spanned runs
    for reason in ("dup_para_frac", "dup_line_frac", "dup_line_char_frac", "top_2_gram", "top_3_gram",
                   "top_4_gram", "duplicated_5_n_grams", "gopher_short_doc", "gopher_below_avg_threshold",
                   "gopher_too_many_hashes", "gopher_too_many_ellipsis", "gopher_too_many_bullets",
                   "gopher_too_many_end_ellipsis", "gopher_enough_stop_words", "gopher_above_avg_threshold",
                   "gopher_below_alpha_threshold", "lorem_ipsum", "curly_bracket", "too_few_sentences",
                   "line_punct_ratio", "short_line_ratio", "char_dup_ratio", "list_ratio", "empty",
                   "ZeroDivisionError"):
        assert seen[reason] > 0, (reason, seen)
    assert sum(1 for (k, _), _t in ref[1] if k is True) > 1000
    tok = words.WordTokenizer()
    assert sum(crosses(tok, t) for t in texts) > 100
    assert sum("IS_ALPHA" in t for t in texts) > 100


@pytest.mark.parametrize("kind", ["fr", "de", "code", "list"])
def test_other_pages_equal(kind):
    rng = random.Random(kind)
    texts = [page(rng, kind) for _ in range(200)]
    ref = compare(texts)
    seen = reasons(ref)
    assert seen and any(k is True for (k, _), _t in ref[1]), seen  # some pages kept, some dropped


def test_top_ngram_bound_holds_and_prunes():
    """The bound never falls below the exact value (else a filter would keep a text Datatrove drops)
    and, on real pages, rules out the exact count for nearly all of them."""
    rng = random.Random(1)
    tok = words.WordTokenizer()
    real = sample_texts()
    checked, pruned = 0, Counter()
    for i, text in enumerate(real + [adversarial(rng) for _ in range(2000)]):
        w = tok.analyze(text)
        for n, frac in GopherRepetitionFilter().top_n_grams:
            if len(w) >= n:
                bound, exact = top_ngram_bound(w, n), top_ngram_chars(w, n)
                assert bound >= exact, (text, n, bound, exact)
                checked += 1
                pruned[i < len(real)] += bound / len(text) <= frac
    assert checked > 3000 and pruned[True] > 0.8 * 3 * len(real) and pruned[False] > 0, (checked, pruned)


@given(st.lists(st.text(alphabet="ab \n", max_size=4), max_size=30))
def test_find_duplicates_equal(elements):
    assert find_duplicates(elements) == reference_find_duplicates(elements)


@given(st.text(alphabet="ab \n\r", max_size=40))
def test_line_and_paragraph_splits_equal(text):
    assert split_lines(text) == re.split(r"\n+", text)
    assert split_paragraphs(text.strip()) == re.split(r"\n{2,}", text.strip())


def test_url_filter_equal():
    rows = [r for f in sorted(SAMPLE_DIR.glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    urls = [r["url"] for r in rows] + [
        "http://pornhub.com/x", "https://www.xvideos.com/a", "http://sub.xhamster.com/", "http://1.2.3.4/x",
        "http://example.com/free-sex-cam", "https://shop.example.co.uk/casino/poker-bonus", "http://localhost/",
        "https://example.org/porn", "https://example.org/a/b?q=sexy+girls+nude"]
    ref, ours = OfflineURLFilter(extra_domains=["example.co.uk"]), FastURLFilter(extra_domains=["example.co.uk"])
    expect = [ref.filter(Document("x", "0", metadata={"url": u})) for u in urls]
    got = [ours.filter(Document("x", "0", metadata={"url": u})) for u in urls]
    assert got == expect
    assert {r[1] for r in expect if r is not True} >= {"domain", "soft_blacklisted", "hard_blacklisted"}, expect


def test_build_filters_picks_implementation(tmp_path):
    fast = dict(build_filters(JobConfig(output=str(tmp_path))))
    slow = dict(build_filters(JobConfig(output=str(tmp_path), filter_impl="datatrove")))
    assert isinstance(fast["gopher_repetition"], FastGopherRepetition)
    assert type(slow["gopher_repetition"]) is GopherRepetitionFilter
    with pytest.raises(ValueError, match="filter_impl"):
        JobConfig(output=str(tmp_path), filter_impl="numba")
    with pytest.raises(ValueError, match="language"):
        FastGopherQuality(language="fra")


def test_c4_line_stats_equal():
    """C4's per-line stats (added up per document in ours) are Datatrove's: totals, counts, means."""
    rng = random.Random(2)
    texts = sample_texts() + [adversarial(rng) for _ in range(2000)]
    ref, ours = C4QualityFilter(filter_no_terminal_punct=False), FastC4Quality(filter_no_terminal_punct=False)
    for f in (ref, ours):
        for text in texts:
            run(f, text)
    expect = {label: vars(stat) for label, stat in ref.stats.stats.items()}
    assert {label: vars(stat) for label, stat in ours.stats.stats.items()} == expect
    assert ours.stats.to_dict()["stats"] == ref.stats.to_dict()["stats"]
    assert expect["line-total"]["n"] > 10_000 and {"line-kept", "line-filter-too_few_words"} <= set(expect)
