"""The `filter` stage's filters, in order, each keeping what it drops in `OUT/removed/<name>/`.

Invariant: every document the reader yields is either forwarded or dropped by exactly one filter,
with a counted reason (Datatrove stats `dropped_<reason>`) and a copy in the audit folder; so
documents in = kept + Σ removed, per the manifest.
"""

from __future__ import annotations

from datatrove.data import Document
from datatrove.pipeline.filters import (
    C4BadWordsFilter,
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
    LanguageFilter,
)
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.writers import ParquetWriter

from pipelines import length_bounds
from pipelines.config import JobConfig
from pipelines.fast_filters import (
    FastC4Quality,
    FastFineWebQuality,
    FastGopherQuality,
    FastGopherRepetition,
    FastURLFilter,
    OfflineURLFilter,
)
from pipelines.reader import SCHEMA, flat_row
from pipelines.tokenizer import load_tokenizer
from shards.layout import REMOVED, join


class ContentGuard(BaseFilter):
    """Drops the rows the reader marked unusable: null/empty/whitespace-only or invalid UTF-8 content."""

    name = "🛡️ content guard"

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        bad = doc.metadata.pop("bad_input", None)
        return (False, bad) if bad else True


class TokenLengthFilter(BaseFilter):
    """Keeps documents with `min_tokens <= len([CLS] … [SEP]) <= max_tokens` under the job's tokenizer.

    Also the guard against pathological inputs (a 10 MB page) before the slower filters see them.
    A document whose token count is bounded inside the limits without tokenizing
    (`pipelines.length_bounds`, for BERT-style WordPiece tokenizers) is not tokenized: most are not.
    The tokenizer loads lazily in the task, so the pickled pipeline stays light.
    """

    name = "📏 token length"

    def __init__(self, tokenizer: str, min_tokens: int, max_tokens: int, exclusion_writer=None, batch_size: int = 256):
        super().__init__(exclusion_writer, batch_size=batch_size)
        self.tokenizer, self.min_tokens, self.max_tokens = tokenizer, min_tokens, max_tokens
        self._tok, self._bounded = None, False

    def _inside(self, text: str) -> bool:
        """Whether `text` is within the limits for certain, without tokenizing it."""
        return (self._bounded and length_bounds.upper(text) <= self.max_tokens
                and length_bounds.lower(text, self.min_tokens) >= self.min_tokens)

    def filter_batch(self, batch: list[Document]) -> list[bool | tuple[bool, str]]:
        if self._tok is None:
            self._tok = load_tokenizer(self.tokenizer).tokenizer
            self._bounded = length_bounds.applies(self._tok)
        # too short or inside the limits for certain: no tokenizing
        short = {id(d) for d in batch if self._bounded and length_bounds.upper(d.text) < self.min_tokens}
        todo = [d for d in batch if id(d) not in short and not self._inside(d.text)]
        counts = {id(d): len(e.ids) + 2 for d, e in zip(todo, self._tok.encode_batch_fast(
            [d.text for d in todo], add_special_tokens=False))}
        out = []
        for d in batch:
            n = counts.get(id(d))
            if id(d) in short or n is not None and n < self.min_tokens:
                out.append((False, "too_short"))
            else:
                out.append((False, "too_long") if n is not None and n > self.max_tokens else True)
        return out

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return self.filter_batch([doc])[0]


def exclusion_writer(out: str, name: str) -> ParquetWriter:
    return ParquetWriter(join(out, REMOVED, name), adapter=flat_row, schema=SCHEMA, compression="zstd")


ORDER = ("content", "language", "url", "token_length", "gopher_repetition", "gopher_quality", "c4_quality",
         "c4_badwords", "fineweb_quality")


def filter_names(cfg: JobConfig) -> list[str]:
    """The filters that run, in order; the content guard always runs first."""
    return [name for name in ORDER if name == "content" or name in cfg.filters]


def build_filters(cfg: JobConfig) -> list[tuple[str, BaseFilter]]:
    """(name, filter) in `filter_names` order, each with its exclusion writer; `cfg.filter_impl` picks
    Datatrove's URL/Gopher/C4/FineWeb filters or their equal, faster versions (`pipelines.fast_filters`).
    """
    if cfg.filter_impl == "fast":
        C4Quality, FineWebQuality, GopherQuality, GopherRepetition, URL = (
            FastC4Quality, FastFineWebQuality, FastGopherQuality, FastGopherRepetition, FastURLFilter)
    else:
        C4Quality, FineWebQuality, GopherQuality, GopherRepetition, URL = (
            C4QualityFilter, FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter, OfflineURLFilter)
    make = {
        "content": lambda w: ContentGuard(exclusion_writer=w),
        "language": lambda w: LanguageFilter(languages=["en"], exclusion_writer=w),
        "url": lambda w: URL(exclusion_writer=w),
        "token_length": lambda w: TokenLengthFilter(cfg.tokenizer, cfg.min_tokens, cfg.max_tokens, exclusion_writer=w),
        "gopher_repetition": lambda w: GopherRepetition(exclusion_writer=w),
        "gopher_quality": lambda w: GopherQuality(exclusion_writer=w),
        "c4_quality": lambda w: C4Quality(filter_no_terminal_punct=False, exclusion_writer=w),
        "c4_badwords": lambda w: C4BadWordsFilter(default_language="en", exclusion_writer=w),
        "fineweb_quality": lambda w: FineWebQuality(exclusion_writer=w),
    }
    return [(name, make[name](exclusion_writer(cfg.output, name))) for name in filter_names(cfg)]
