"""A RefinedWeb-schema corpus of a requested size, for measuring the pipeline at scale.

    python -m benchmarks.scale_corpus N_TOKENS OUT [--file-mb 100] [--seed 0]
    python -m benchmarks.scale_corpus 10_000_000 /tmp/scale/1x --small-files 2000   # listing / task assignment

Documents recombine real text: paragraphs of the bundled sample, and seeded sentences built from
its vocabulary (so the text is not only the sample's 160 pages). Lengths are drawn from a
lognormal in bert-base-uncased tokens (median ~400, long tail past 4096, capped at 32k), and the
document is cut at a paragraph or word boundary near that length. A set share of documents are
exact copies of an earlier one (`--exact-dup`) or near copies (`--near-dup`: ~3 % of the words
replaced), as MinHash and exact dedup would find them. Files are ~`--file-mb` MB of parquet
(RefinedWeb's are ~100 MB), or `--small-files K` files of equal share.

Memory is bounded: rows are written a batch at a time, and the duplicate sources are a fixed-size
reservoir of earlier documents. Prints documents, tokens (counted with the tokenizer), length
percentiles, duplicate shares, files and bytes.
"""

from __future__ import annotations

import argparse
import re
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tokenizers import Tokenizer

from shards.layout import BERT_TOKENIZER, SAMPLE_DIR

SCHEMA = pa.schema([("content", pa.string()), ("url", pa.string()), ("timestamp", pa.timestamp("ms")),
                    ("dump", pa.string()), ("segment", pa.string()), ("image_urls", pa.list_(pa.list_(pa.string())))])
BATCH = 512  # rows per write
CHARS_PER_TOKEN = 4.3  # bert-base-uncased on English web text: the first guess of a cut, then measured
RESERVOIR = 2048  # earlier documents kept as sources of duplicates


def sample_paragraphs() -> list[str]:
    texts = [t for f in sorted(SAMPLE_DIR.glob("*.parquet")) for t in pq.read_table(f, columns=["content"])["content"]
             .to_pylist() if t and t.strip()]
    return [p.strip() for t in texts for p in re.split(r"\n+", t) if len(p.strip()) > 20]


def sentence(words: list[str], rng: np.random.Generator) -> str:
    n = int(rng.integers(6, 28))
    text = " ".join(words[i] for i in rng.integers(0, len(words), n))
    return text[0].upper() + text[1:] + rng.choice([".", ".", ".", "?", "!"])


def document(tokens: int, paragraphs: list[str], words: list[str], rng: np.random.Generator) -> str:
    """About `tokens` bert tokens: sample paragraphs and generated ones (2:1), cut near the length."""
    target, parts, size = int(tokens * CHARS_PER_TOKEN), [], 0
    while size < target:
        if rng.random() < 2 / 3:
            part = paragraphs[int(rng.integers(len(paragraphs)))]
        else:
            part = " ".join(sentence(words, rng) for _ in range(int(rng.integers(2, 7))))
        parts.append(part)
        size += len(part) + 2
    text = "\n\n".join(parts)
    if len(text) > target:
        cut = text.rfind(" ", 0, target)
        text = text[: cut if cut > target // 2 else target]
    return text


def near_copy(text: str, rng: np.random.Generator, words: list[str]) -> str:
    tokens = text.split(" ")
    for i in rng.choice(len(tokens), max(1, len(tokens) // 33), replace=False):
        tokens[i] = words[int(rng.integers(len(words)))]
    return " ".join(tokens)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("tokens", type=lambda s: int(s.replace("_", "")), help="bert-base-uncased tokens to write")
    p.add_argument("out", help="folder for the parquet files (created)")
    p.add_argument("--file-mb", type=float, default=100.0, help="parquet file size (RefinedWeb: ~100 MB)")
    p.add_argument("--small-files", type=int, default=0, metavar="K", help="instead: K files of equal share")
    p.add_argument("--median", type=float, default=400.0, help="median document length, tokens")
    p.add_argument("--sigma", type=float, default=1.1, help="sigma of log-length (1.1: ~6 %% of documents > 4096)")
    p.add_argument("--exact-dup", type=float, default=0.03, help="share of exact copies of an earlier document")
    p.add_argument("--near-dup", type=float, default=0.02, help="share of near copies (~3 %% of words replaced)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    paragraphs = sample_paragraphs()
    words = sorted({w for para in paragraphs for w in re.findall(r"[A-Za-z][a-z]{2,}", para)})
    tok = Tokenizer.from_file(str(BERT_TOKENIZER))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    tokens_per_file = a.tokens / a.small_files if a.small_files else a.file_mb * 1e6 / (CHARS_PER_TOKEN * 0.55)
    written, lengths, dups, near, files, reservoir = 0, [], 0, 0, [], []
    start = datetime(2023, 1, 1)
    writer, in_file, rows = None, 0.0, []

    def flush(final: bool = False):
        nonlocal writer, in_file, rows
        if rows:
            if writer is None:
                files.append(out / f"part-{len(files):05d}.parquet")
                writer = pq.ParquetWriter(files[-1], SCHEMA, compression="zstd")
            writer.write_table(pa.Table.from_pylist(rows, schema=SCHEMA))
            rows = []
        if writer is not None and (final or in_file >= tokens_per_file):
            writer.close()
            writer, in_file = None, 0.0

    while written < a.tokens:
        batch = []
        for _ in range(BATCH):
            u = rng.random()
            if reservoir and u < a.exact_dup:
                batch.append(reservoir[int(rng.integers(len(reservoir)))])
                dups += 1
            elif reservoir and u < a.exact_dup + a.near_dup:
                batch.append(near_copy(reservoir[int(rng.integers(len(reservoir)))], rng, words))
                near += 1
            else:
                n = int(np.clip(rng.lognormal(np.log(a.median), a.sigma), 20, 32_000))
                batch.append(document(n, paragraphs, words, rng))
                if len(reservoir) < RESERVOIR:
                    reservoir.append(batch[-1])
                else:
                    reservoir[int(rng.integers(RESERVOIR))] = batch[-1]
        for text, enc in zip(batch, tok.encode_batch_fast(batch, add_special_tokens=False)):
            n = len(enc.ids) + 2
            lengths.append(n)
            rows.append({"content": text, "url": f"https://scale.example/{len(lengths)}", "dump": "CC-MAIN-2023-06",
                         "timestamp": start + timedelta(seconds=len(lengths)), "segment": f"{a.seed}.{len(lengths)}",
                         "image_urls": []})
            written += n
            in_file += n
            if in_file >= tokens_per_file:
                flush()
            if written >= a.tokens:
                break
        flush()
        print(f"\r{written / a.tokens:6.1%}  {len(lengths):,} documents, {len(files)} files", end="", flush=True)
    flush(final=True)
    q = np.percentile(lengths, [50, 90, 99])
    size = sum(f.stat().st_size for f in files)
    print(f"\nwrote {out}: {len(lengths):,} documents, {written:,} tokens ([CLS]+[SEP] included), {len(files)} files, "
          f"{size / 1e6:,.1f} MB")
    print(f"length tokens: median {q[0]:,.0f}, p90 {q[1]:,.0f}, p99 {q[2]:,.0f}, "
          f"> 1024: {np.mean(np.array(lengths) > 1024):.1%}, > 4096: {np.mean(np.array(lengths) > 4096):.1%}")
    print(f"duplicates: exact {dups / len(lengths):.1%}, near {near / len(lengths):.1%}")


if __name__ == "__main__":
    main()
