"""`python -m shards card OUT`: a Hugging Face dataset card (`OUT/README.md`) and its length
histogram (`OUT/token_lengths.png`), written next to the shards.

Every number on the card is read from `OUT/manifest.json` (which the pipeline builds from the
shard indexes and the filter stats), so the card says what the shards hold and nothing else.
"""

from __future__ import annotations

import json

import fsspec
import yaml

from shards import manifest as manifest_io
from shards.layout import BERT_TOKENIZER, CARD, CARD_HISTOGRAM, join
from shards.tokenizer import tokenizer_sha256

REFINEDWEB = "tiiuae/falcon-refinedweb"


def source_dataset(url: str) -> str:
    """The Hub id of the source (`hf://datasets/ORG/NAME/…` → `ORG/NAME`); RefinedWeb otherwise,
    since this pipeline reads RefinedWeb's schema (a local mirror or sample of it)."""
    if url.startswith("hf://datasets/"):
        return "/".join(url.removeprefix("hf://datasets/").split("/")[:2])
    return REFINEDWEB


def size_category(documents: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                        (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")):
        if documents < limit:
            return name
    return "1B<n<10B"


def length_histogram(manifest: dict) -> tuple[list[int], list[int]]:
    """Documents per power-of-two token-length bin, over the buckets and the validation split."""
    counts: dict[int, int] = {}
    for part in (*manifest["buckets"].values(), manifest["validation"]):
        hist = part.get("histogram", {"bin_upper_edges": [], "counts": []})
        for edge, n in zip(hist["bin_upper_edges"], hist["counts"]):
            counts[edge] = counts.get(edge, 0) + n
    edges = sorted(counts)
    return edges, [counts[e] for e in edges]


def plot_histogram(manifest: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges, counts = length_histogram(manifest)
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    ax.bar(range(len(edges)), counts, color="#4878a8")
    ax.set_xticks(range(len(edges)), [f"<{e:,}" for e in edges], rotation=45, ha="right")
    for edge in manifest.get("config", {}).get("bucket_edges", []):
        if edge in edges:  # power-of-two edges fall on a bin's (exclusive) upper end
            ax.axvline(edges.index(edge) + 0.5, color="#c44e52", linestyle="--", linewidth=1)
    ax.set_xlabel("tokens per document ([CLS] and [SEP] included), power-of-two bins")
    ax.set_ylabel("documents")
    ax.set_title("Document lengths (dashed: bucket edges)")
    fig.tight_layout()
    with fsspec.open(path, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)


def _table(header: list[str], rows: list[list]) -> str:
    cells = [[f"{c:,}" if isinstance(c, int) else str(c) for c in row] for row in rows]
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
                      *("| " + " | ".join(r) + " |" for r in cells)])


def span(bucket: dict) -> str:
    hi = bucket["max_tokens"]
    return f"≥ {bucket['min_tokens']:,}" if hi is None else f"{bucket['min_tokens']:,} – {hi - 1:,}"


def render(manifest: dict) -> str:
    tok, val = manifest["tokenizer"], manifest["validation"]
    bundled = tok["sha256"] == tokenizer_sha256(BERT_TOKENIZER)
    tokenizer_line = ("from shards.layout import BERT_TOKENIZER as TOKENIZER" if bundled else
                      f'TOKENIZER = "{tok["name"]}"  # a path or Hub name of the tokenizer.json with the sha256 above')
    parts = [*manifest["buckets"].values(), val]
    documents, tokens = sum(p["documents"] for p in parts), sum(p["tokens"] for p in parts)
    source = manifest.get("source", {})
    header = {
        "license": "odc-by",
        "language": ["en"],
        "task_categories": ["fill-mask"],
        "task_ids": ["masked-language-modeling"],
        "source_datasets": [source_dataset(source.get("url", ""))],
        "size_categories": [size_category(documents)],
        "pretty_name": f"RefinedWeb, filtered and tokenized ({tok['name']})",
        "tags": ["mds", "mosaicml-streaming", "encoder-pretraining"],
    }
    lines = [
        "---", yaml.safe_dump(header, sort_keys=False, allow_unicode=True).strip(), "---", "",
        f"# {header['pretty_name']}", "",
        f"{documents:,} documents and {tokens:,} tokens of [{header['source_datasets'][0]}]"
        f"(https://huggingface.co/datasets/{header['source_datasets'][0]}), filtered, deduplicated and tokenized "
        f"with `{tok['name']}`, stored whole (no truncation) as [MosaicML Streaming](https://docs.mosaicml.com/"
        "projects/streaming/) MDS shards in length buckets, for masked-language-model pretraining of encoders.",
        "",
        "## Source",
        "",
        f"- input: `{source.get('url', '?')}` ({len(source.get('files', [])):,} files)",
        f"- pipeline version {manifest.get('pipeline_version', '?')}, created {manifest.get('created', '?')}",
    ]
    if "retokenized_from" in manifest:
        r = manifest["retokenized_from"]
        lines.append(f"- re-tokenized from `{r['root']}` (tokenized there with `{r['tokenizer']['name']}`)")
    if "filters" in manifest:
        d = manifest["documents"]
        rows = [[n, f["in"], f["kept"], f["removed"], ", ".join(f"{k}: {v:,}" for k, v in f["reasons"].items())]
                for n, f in manifest["filters"].items()]
        if manifest.get("dedup", {}).get("enabled"):
            dd = manifest["dedup"]
            rows.append([f"dedup ({dd['method']})", dd["in"], dd["kept"], dd["removed"], ""])
        lines += ["", "## Filters", "",
                  f"{d['read']:,} documents read, {d['kept']:,} kept, {d['removed']:,} removed (in pipeline order; "
                  "every removed document is kept under `removed/<filter>/` for audit).", "",
                  _table(["filter", "in", "kept", "removed", "reasons"], rows)]
    lines += [
        "", "## Tokenizer", "",
        f"- name: `{tok['name']}`, vocabulary {tok['vocab_size']:,}, ids stored as `{tok['dtype']}`",
        f"- sha256 of `tokenizer.json`: `{tok['sha256']}` (`shards.api.open_dataset` refuses any other)",
        "- special ids: " + ", ".join(f"{k} {v}" for k, v in tok["special_tokens"].items()),
        "- every document is one sample, `[CLS] … [SEP]`; columns `input_ids`, `id`, `num_tokens`",
        "", "## Buckets", "",
        _table(["split", "path", "tokens per document", "documents", "tokens", "shards"],
               [*[[n, f"`{b['path']}`", span(b),
                   b["documents"], b["tokens"], b["shards"]] for n, b in manifest["buckets"].items()],
                [f"validation ({val['fraction']:g})", f"`{val['path']}`", "all", val["documents"], val["tokens"],
                 val["shards"]],
                ["**total**", "", "", documents, tokens, sum(p["shards"] for p in parts)]]),
        "", f"![Document lengths]({CARD_HISTOGRAM})",
    ]
    if manifest.get("mixtures"):
        lines += ["", "## Mixtures", "",
                  "Document proportions per bucket (`streaming.Stream(proportion=…)`), files under `mixtures/`:", ""]
        for name, mix in manifest["mixtures"].items():
            lines.append(f"- `{name}`: " + ", ".join(f"{b} {p:.4f}" for b, p in mix["proportions"].items()))
    lines += [
        "", "## Use", "",
        "```python",
        "from torch.utils.data import DataLoader",
        "from shards.api import Masking, PaddedMLM, open_dataset",
        tokenizer_line,
        "",
        'ds = open_dataset(".", mixture="stage1", context_length=1024, tokenizer=TOKENIZER)',
        "loader = DataLoader(ds, batch_size=32, collate_fn=PaddedMLM(ds.vocab, Masking(rate=0.15, replace=(0.8, 0.1, 0.1))))",
        "```", "",
        "Other layouts: `python -m shards convert . --to {llm-foundry,modernbert,hf,text} --output DEST`.",
        "", "## License", "",
        "[ODC-By 1.0](https://opendatacommons.org/licenses/by/1-0/), as RefinedWeb; the documents remain subject "
        "to the [Common Crawl terms of use](https://commoncrawl.org/terms-of-use).",
        "", "## Pipeline configuration", "",
        "```json", json.dumps(manifest.get("config", {}), indent=2), "```", "",
    ]
    return "\n".join(lines)


def write_card(root: str) -> str:
    """Write `root/README.md` and `root/token_lengths.png`; returns the card's path."""
    manifest = manifest_io.read(root)
    plot_histogram(manifest, join(root, CARD_HISTOGRAM))
    path = join(root, CARD)
    with fsspec.open(path, "w", encoding="utf-8") as f:
        f.write(render(manifest))
    return path
