"""`python -m shards inspect OUT` prints the manifest as tables; `python -m shards verify OUT` checks the
shards against it (exit 1 with the failing shard named)."""

from __future__ import annotations

import argparse
import sys

from shards import manifest as manifest_io
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
    p = argparse.ArgumentParser(prog="python -m shards", description=__doc__)
    p.add_argument("command", choices=("inspect", "verify"))
    p.add_argument("root", help="pipeline output folder or URL (OUT)")
    a = p.parse_args(argv)
    try:
        if a.command == "inspect":
            print(inspect(a.root))
        else:
            checked = verify(a.root)
            total = sum(c.shards for c in checked.values()), sum(c.documents for c in checked.values())
            for name, c in checked.items():
                print(f"ok  {name:<22} {c.shards:>5} shards {c.documents:>10,} documents {c.tokens:>14,} tokens")
            print(f"verified {total[0]} shards, {total[1]:,} documents: all hashes and counts match the manifest")
    except (ValueError, FileNotFoundError) as e:
        print(f"{a.command} failed: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
