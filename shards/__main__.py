"""Tools for a pipeline output `OUT`:

    python -m shards inspect OUT                    the manifest as tables
    python -m shards verify OUT                     re-hash every shard, index and mixture, check counts
                                                    (exit 1 naming the bad file)
    python -m shards convert OUT --to FORMAT --output DEST [--validate-hash sha1|xxh64]
                                                    llm-foundry | modernbert | hf | text (see shards.convert)
    python -m shards card OUT                       OUT/README.md, a Hugging Face dataset card, and its PNG
"""

from __future__ import annotations

import argparse
import sys

from shards import manifest as manifest_io
from shards.card import write_card
from shards.convert import FORMATS, convert
from shards.convert import summary as convert_summary
from shards.layout import CARD_HISTOGRAM
from shards.mds import HASHES
from shards.verify import verify


def table(rows: list[list], header: list[str]) -> str:
    """Numbers right-aligned, text left-aligned."""
    numeric = [all(isinstance(r[i], int) or r[i] == "" for r in rows) for i in range(len(header))]
    cells = [header, *[[f"{c:,}" if isinstance(c, int) else str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def fmt(r):
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric)).rstrip()

    return "\n".join([fmt(cells[0]), fmt(["-" * w for w in widths]), *map(fmt, cells[1:])])


def inspect(root: str) -> str:
    m = manifest_io.read(root)
    tok = m["tokenizer"]
    parts = [
        f"{root}  (format {m['format_version']}, pipeline {m.get('pipeline_version', '?')}, created {m.get('created', '?')})",
        f"source: {m.get('source', {}).get('url', '?')}  ({len(m.get('source', {}).get('files', []))} files)",
        f"tokenizer: {tok['name']}  vocab {tok['vocab_size']:,}  {tok['dtype']}  sha256 {tok['sha256'][:12]}…  "
        f"special {tok['special_tokens']}",
    ]
    if "retokenized_from" in m:
        r = m["retokenized_from"]
        parts.append(f"re-tokenized from {r['root']} (tokenizer there: {r['tokenizer']['name']})")
    if "documents" in m:
        d = m["documents"]
        parts.append(f"documents: read {d['read']:,}  kept {d['kept']:,}  removed {d['removed']:,}")
    if m.get("filters"):
        rows = [[n, f["in"], f["kept"], f["removed"], ", ".join(f"{k} {v}" for k, v in f["reasons"].items())]
                for n, f in m["filters"].items()]
        if m.get("dedup", {}).get("enabled"):
            d = m["dedup"]
            rows.append([d.get("removed_to", "dedup").split("/")[-1], d["in"], d["kept"], d["removed"], ""])
        parts.append(table(rows, ["filter", "in", "kept", "removed", "reasons"]))
    rows = [[n, b["path"], b["min_tokens"], "" if b["max_tokens"] is None else b["max_tokens"], b["documents"],
             b["tokens"], b["shards"]] for n, b in m["buckets"].items()]
    v = m["validation"]
    rows.append([f"val ({v['fraction']})", v["path"], "", "", v["documents"], v["tokens"], v["shards"]])
    parts.append(table(rows, ["bucket", "path", "min", "max", "documents", "tokens", "shards"]))
    for name, mix in m.get("mixtures", {}).items():
        line = f"{name}: " + ", ".join(f"{b} {p:.4f}" for b, p in mix["proportions"].items())
        if "materialized" in mix:
            line += f"  (materialized: {mix['materialized']['tokens']:,} tokens in {mix['materialized']['path']})"
        parts.append(line)
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shards", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("inspect", "verify", "convert", "card"):
        sub.add_parser(name).add_argument("root", help="pipeline output folder or URL (OUT)")
    c = sub.choices["convert"]
    c.add_argument("--to", required=True, choices=FORMATS, help="the consumer's layout (see shards.convert)")
    c.add_argument("--output", "-o", required=True, help="destination folder (DEST)")
    c.add_argument("--chunk-length", type=int, default=1024, help="llm-foundry: tokens per sample")
    c.add_argument("--validate-hash", choices=HASHES, help="check every shard file's hash as it is read")
    a = p.parse_args(argv)
    try:
        if a.command == "inspect":
            print(inspect(a.root))
        elif a.command == "card":
            print(f"wrote {write_card(a.root)} and {CARD_HISTOGRAM} next to it")
        elif a.command == "convert":
            print(convert_summary(convert(a.root, a.to, a.output, a.chunk_length, a.validate_hash), a.output))
        else:
            checked = verify(a.root)
            total = sum(c.shards for c in checked.values()), sum(c.documents for c in checked.values())
            for name, c in checked.items():
                print(f"ok  {name:<22} {c.shards:>5} shards {c.documents:>10,} documents {c.tokens:>14,} tokens")
            print(f"verified {total[0]} shards, {total[1]:,} documents, their indexes and the mixtures: "
                  "all hashes and counts match the manifest")
    except (ValueError, FileNotFoundError) as e:
        print(f"{a.command} failed: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
