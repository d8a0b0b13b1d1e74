"""Datatrove's URL, Gopher repetition, Gopher quality, C4 quality and FineWeb quality filters, made fast.

Each subclasses Datatrove's filter (same constructor arguments, name, stats, drop reasons and
exclusion writer) and overrides only `filter`. Invariant: for every document the decision, the drop
reason and C4's rewritten text equal Datatrove 0.9's (`tests/pipelines/test_fast_filters.py`).
Where they differ is how: every filter asks the one per-process tokenizer (`pipelines.words`),
which tokenizes each text once, and n-gram statistics run on token arrays in numpy.
"""

from __future__ import annotations

import os

import numpy as np
import xxhash
from datatrove.data import Document
from datatrove.pipeline.filters import C4QualityFilter, FineWebQualityFilter, GopherQualityFilter, URLFilter
from datatrove.pipeline.filters import GopherRepetitionFilter
from datatrove.pipeline.filters.c4_filters import CITATION_REGEX, ELLIPSIS, END_PUNCTUATION, POLICY_SUBSTRINGS
from datatrove.pipeline.filters.url_filter import get_list, normalize, normalizer
from datatrove.utils.typeshelper import Languages

from pipelines import words
from pipelines.ngrams import duplicated_chars, repeated_ngrams, top_ngram_bound, top_ngram_chars


class OfflineURLFilter(URLFilter):
    """URLFilter whose tldextract uses the public-suffix snapshot shipped with tldextract: no network."""

    def __init__(self, **kwargs):
        from tldextract import TLDExtract

        super().__init__(**kwargs)
        self.tldextractor = TLDExtract(suffix_list_urls=(), cache_dir=None)


def _english_only(language: str) -> None:
    if language != Languages.english:
        raise ValueError(f"the fast filters tokenize English only, got language={language!r}; "
                         f"use --filters datatrove for other languages")


def find_duplicates(x: list[str]) -> tuple[int, int]:
    """Datatrove's `find_duplicates` (elements, and their characters, equal to an earlier one) by
    sets: every element past the first of its value is a duplicate."""
    unique = set(x)
    return len(x) - len(unique), sum(map(len, x)) - sum(map(len, unique))


def split_paragraphs(text: str) -> list[str]:
    """`re.split(r"\n{2,}", text)` for a stripped `text`, by str.split (5x faster): splitting at every
    "\n\n" leaves empty pieces, and one leading "\n" on a piece after an odd number of line breaks."""
    if "\n\n" not in text:
        return [text]
    return [p[1:] if p[:1] == "\n" else p for p in text.split("\n\n") if p and p != "\n"]


def split_lines(text: str) -> list[str]:
    """`re.split(r"\n+", text)` by str.split (5x faster): the empty pieces between line breaks go,
    those before the first and after the last stay."""
    parts = text.split("\n")
    return parts if len(parts) < 3 else [parts[0], *filter(None, parts[1:-1]), parts[-1]]


def _domain_hash(domain: str) -> int:
    return xxhash.xxh3_64_intdigest(domain)


class FastURLFilter(OfflineURLFilter):
    """The URL filter with its 4.5M blocked domains as a sorted array of 64-bit hashes, cached next to
    Datatrove's extracted lists: a task loads it in milliseconds instead of building a set for seconds
    (a false match needs a 64-bit collision). Domains passed as `extra_domains` stay a set.
    """

    def download_data(self):
        if self._downloaded or not self.use_integrated_lists:
            return
        import tarfile

        from datatrove.io import safely_create_file
        from datatrove.utils._import_utils import ASSETS_PATH
        from huggingface_hub import cached_assets_path

        folder = cached_assets_path(library_name="datatrove", namespace="filters", subfolder="url_filter")
        archive = "url_filterblacklistsv0_3_0.tar.gz"  # Datatrove's lock name, so the two share the extraction

        def extract():
            with tarfile.open(os.path.join(ASSETS_PATH, archive), "r:gz") as tar:
                tar.extractall(folder)

        def hash_domains():
            domains = get_list(folder, "domains", set(), do_normalize=False)
            np.save(cache, np.unique(np.fromiter(map(_domain_hash, domains), dtype=np.uint64, count=len(domains))))

        cache = os.path.join(folder, "domains.xxh3_64.npy")
        safely_create_file(os.path.join(folder, archive), extract)
        safely_create_file(cache, hash_domains)
        self._domain_hashes = np.load(cache)
        self.block_listed_url = get_list(folder, "urls", self.block_listed_url, do_normalize=False)
        self.banned_words = get_list(ASSETS_PATH, "banned_words.txt", self.banned_words)
        self.banned_subwords = get_list(ASSETS_PATH, "banned_subwords.txt", self.banned_subwords)
        self.soft_banned_words = get_list(ASSETS_PATH, "soft_banned_words.txt", self.soft_banned_words)
        for word in self.banned_subwords:
            self.banned_subwords_automaton.add_word(word, len(self.banned_subwords_automaton))
        self.banned_subwords_automaton.make_automaton()
        self._downloaded = True

    def _blocked_domain(self, domain: str) -> bool:
        if domain in self.block_listed_domains:
            return True
        h = np.uint64(_domain_hash(domain))
        i = int(np.searchsorted(self._domain_hashes, h))
        return i < len(self._domain_hashes) and self._domain_hashes[i] == h

    def filter(self, document: Document) -> bool | tuple[bool, str]:
        self.download_data()
        url = document.metadata.get("url")
        assert url, "Document does not have url in its metadata"
        url_info = self.tldextractor(url)
        if self._blocked_domain(url_info.registered_domain):
            return False, "domain"
        if self._blocked_domain(url_info.fqdn):
            return False, "subdomain"
        if url in self.block_listed_url:
            return False, "url"
        url_words = set(normalizer.split(url))
        if not url_words.isdisjoint(self.banned_words):
            return False, "hard_blacklisted"
        if len(url_words & self.soft_banned_words) >= self.soft_word_threshold:
            return False, "soft_blacklisted"
        if self.banned_subwords and next(self.banned_subwords_automaton.iter(normalize(url)), False):
            return False, "blacklisted_subword"
        return True


class FastGopherRepetition(GopherRepetitionFilter):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _english_only(self.language)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        text = doc.text
        paragraphs = split_paragraphs(text.strip())  # self.paragraph_exp's split
        paragraphs_duplicates, char_duplicates = find_duplicates(paragraphs)
        if self.dup_para_frac and paragraphs_duplicates / len(paragraphs) > self.dup_para_frac:
            return False, "dup_para_frac"
        if self.dup_para_char_frac and char_duplicates / len(text) > self.dup_para_char_frac:
            return False, "dup_para_char_frac"
        lines = split_lines(text)  # self._line_splitter's split
        line_duplicates, char_duplicates = find_duplicates(lines)
        if self.dup_line_frac and line_duplicates / len(lines) > self.dup_line_frac:
            return False, "dup_line_frac"
        if self.dup_line_char_frac and char_duplicates / len(text) > self.dup_line_char_frac:
            return False, "dup_line_char_frac"

        w = words.shared().analyze(text)
        for n, n_frac in self.top_n_grams:
            if len(w) < n or top_ngram_bound(w, n) / len(text) <= n_frac:  # rules out almost every text
                continue
            if top_ngram_chars(w, n) / len(text) > n_frac:
                return False, f"top_{n}_gram"
        repeated = repeated_ngrams(w, [n for n, _ in self.dup_n_grams])
        for n, n_frac in self.dup_n_grams:
            if (duplicated_chars(w, n, *repeated[n]) if n in repeated else 0) / len(text) > n_frac:
                return False, f"duplicated_{n}_n_grams"
        return True


class FastGopherQuality(GopherQualityFilter):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _english_only(self.language)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        text = doc.text
        tokenizer = words.shared()
        w = tokenizer.analyze(text)
        n_words = len(w)
        n_non_symbol = int(w.non_symbol.sum())
        if self.min_doc_words and n_non_symbol < self.min_doc_words:
            return False, "gopher_short_doc"
        if self.max_doc_words and n_non_symbol > self.max_doc_words:
            return False, "gopher_long_doc"

        avg_n_words = int(w.lengths[w.non_symbol].sum()) / n_non_symbol if n_non_symbol else float("nan")
        if self.min_avg_word_length and avg_n_words < self.min_avg_word_length:
            return False, "gopher_below_avg_threshold"
        if self.max_avg_word_length and avg_n_words > self.max_avg_word_length:
            return False, "gopher_above_avg_threshold"

        if self.max_symbol_word_ratio and text.count("#") / n_words > self.max_symbol_word_ratio:
            return False, "gopher_too_many_hashes"
        ellipses = text.count("...") + text.count("…")
        if self.max_symbol_word_ratio and ellipses / n_words > self.max_symbol_word_ratio:
            return False, "gopher_too_many_ellipsis"

        lines = text.splitlines()  # no line starts with a bullet (ends with an ellipsis) the text lacks
        if (
            self.max_bullet_lines_ratio
            and ("•" in text or "-" in text)
            and sum(s.lstrip().startswith("•") or s.lstrip().startswith("-") for s in lines) / len(lines)
            > self.max_bullet_lines_ratio
        ):
            return False, "gopher_too_many_bullets"
        if (
            self.max_ellipsis_lines_ratio
            and ellipses
            and sum(s.rstrip().endswith("...") or s.rstrip().endswith("…") for s in lines) / len(lines)
            > self.max_ellipsis_lines_ratio
        ):
            return False, "gopher_too_many_end_ellipsis"

        if self.max_non_alpha_words_ratio and int(w.has_alpha.sum()) / n_words < self.max_non_alpha_words_ratio:
            return False, "gopher_below_alpha_threshold"

        if self.min_stop_words:
            stops = tokenizer.ids_of(self.stop_words)
            if int(np.isin(stops, w.ids).sum()) < self.min_stop_words:
                return False, "gopher_enough_stop_words"
        return True


C4_LINE_STATS = ("line-total", "line-filter-too_long_word", "line-filter-no_terminal_punc", "line-filter-too_few_words",
                 "line-filter-javascript", "line-filter-policy", "line-kept")


class FastC4Quality(C4QualityFilter):
    """C4's line rules; counts the sentences of all kept lines in one pass of the shared tokenizer, and
    looks for a phrase in each line only when the whole text holds it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _english_only(self.language)
        if not self.split_paragraph:
            raise ValueError("FastC4Quality implements split_paragraph=True only; use --filters datatrove")

    def _count(self, counts: dict[str, int]) -> None:
        """Datatrove's stats after `k` calls of `stat_update(label)` per label (updates of 1 keep the
        mean at 1 and add no variance: past the first, each adds 1 to total and n)."""
        for label, k in counts.items():
            if k:
                stat = self.stats[label]
                stat.update(1)
                stat.total += k - 1
                stat.n += k - 1

    def _phrases(self, text: str) -> tuple[bool, bool, bool, bool]:
        """Which line checks can ever hold on `text`'s lines: "lorem ipsum", "javascript", "{", a
        policy phrase. A line is part of one line of the text (the phrases hold no line break) once
        its citations are removed, which can join a phrase, so the phrases are looked for in the whole
        text with its citations removed; lower() maps character by character but for sigma's final
        form, which no phrase holds."""
        lowered = (CITATION_REGEX.sub("", text) if self.remove_citations and "[" in text else text).lower()
        return (self.filter_lorem_ipsum and "lorem ipsum" in lowered,
                self.filter_javascript and "javascript" in lowered,
                self.filter_curly_bracket and "{" in text,
                self.filter_policy and any(p in lowered for p in POLICY_SUBSTRINGS))

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        tokenizer = words.shared()
        lorem, javascript, curly, policy = self._phrases(doc.text)
        lower = lorem or javascript or policy
        counts = dict.fromkeys(C4_LINE_STATS, 0)  # stat_update per line, added up per document
        num_sentences = 0
        kept_lines, counted_later = [], []
        line_runs, counted, rewritten = [], [], False  # per line: its runs, whether counted later
        try:
            for line in doc.text.splitlines():
                line = line.strip()
                words_ = line.split()
                line_runs.append(len(words_))
                counted.append(False)
                counts["line-total"] += 1
                if self.max_word_length != -1 and words_ and max(map(len, words_)) > self.max_word_length:
                    counts["line-filter-too_long_word"] += 1
                    continue
                cited = 0  # citations removed
                if self.remove_citations and "[" in line:
                    line, cited = CITATION_REGEX.subn("", line)
                if self.filter_no_terminal_punct and (not line.endswith(END_PUNCTUATION) or line.endswith(ELLIPSIS)):
                    counts["line-filter-no_terminal_punc"] += 1
                    continue
                if len(words_) < self.min_words_per_line:
                    counts["line-filter-too_few_words"] += 1
                    continue
                line_l = line.lower() if lower else ""
                if lorem and "lorem ipsum" in line_l:
                    return False, "lorem_ipsum"
                if javascript and "javascript" in line_l:
                    counts["line-filter-javascript"] += 1
                    continue
                if curly and "{" in line:
                    return False, "curly_bracket"
                if policy and any(p in line_l for p in POLICY_SUBSTRINGS):
                    counts["line-filter-policy"] += 1
                    continue
                if self.min_num_sentences != -1:
                    if words.POISON in line:  # its retry may raise: where Datatrove's does
                        num_sentences += tokenizer.count_sentences(line)
                    else:
                        counted_later.append(line)
                        counted[-1] = True
                        rewritten |= cited > 0  # its runs are no longer the text's
                kept_lines.append(line)
                counts["line-kept"] += 1
        finally:
            self._count(counts)
        # the counted lines' runs are some of the text's (line.split() of its lines), unless citations went
        runs = None if rewritten or not counted_later else tokenizer.runs_of(doc.text).select(line_runs, counted)
        num_sentences += tokenizer.count_sentences_in(counted_later, runs)
        if num_sentences < self.min_num_sentences:
            return False, "too_few_sentences"
        doc.text = "\n".join(kept_lines).strip()
        return True


class FastFineWebQuality(FineWebQualityFilter):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _english_only(self.language)

    def filter(self, doc) -> bool | tuple[bool, str]:
        lines = [line for line in doc.text.split("\n") if line.strip() != ""]
        if len(lines) == 0:
            return False, "empty"
        ratio = sum(1 for line in lines if line.endswith(self.stop_chars)) / len(lines)
        if ratio < self.line_punct_thr and not (ratio == 0 and self.line_punct_exclude_zero):
            return False, "line_punct_ratio"
        ratio = sum(1 for line in lines if len(line) <= self.short_line_length) / len(lines)
        if ratio > self.short_line_threshold:
            return False, "short_line_ratio"
        ratio = find_duplicates(lines)[1] / len(doc.text.replace("\n", ""))
        if ratio > self.char_duplicates_ratio:
            return False, "char_dup_ratio"
        if doc.text.count("\n") / words.shared().count_words(doc.text) > self.new_line_ratio:
            return False, "list_ratio"
        return True
