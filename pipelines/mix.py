"""`mix`: the manifest (`OUT/manifest.json`) and the stage mixtures (`OUT/mixtures/*.json`).

Invariant: every count in the manifest comes from what is on disk (merged MDS indexes) or from the
stats of completed Datatrove tasks, and the two must agree; mixtures are computed exactly from the
manifest's document counts (`shards.mixture`), so no document is copied to build stage 2.
`--materialize N` additionally writes, per mixture, a physical MDS set of about N tokens drawn
deterministically (seeded) in the mixture's exact proportions, streaming (bounded memory), for
consumers that cannot mix streams.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import fsspec
import numpy as np
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from pipelines import retokenize
from pipelines.config import PIPELINE_VERSION, JobConfig
from pipelines.stats import stage_stats
from pipelines.tokenizer import load_tokenizer
from shards import manifest as manifest_io
from shards import atomic, mds, mixture
from shards.layout import (BAD_FILES, MATERIALIZED, MDS, MIXTURES, RAW, REMOVED, VALIDATION, buckets, join,
                           join_within)


def histogram(counters: dict[str, float], prefix: str) -> dict:
    bins = sorted((int(k.rsplit("/", 1)[1]), int(v)) for k, v in counters.items() if k.startswith(f"{prefix}/hist/"))
    return {"bin_upper_edges": [b for b, _ in bins], "counts": [n for _, n in bins]}


def filter_counts(logs: str, names: list[str]) -> tuple[int, dict]:
    """(documents read, {filter: {in, kept, removed, reasons}}) from the filter stage's stats."""
    steps = stage_stats(join(logs, "filter"))
    read = steps[0].get("documents")
    out = {}
    for name, step in zip(names, steps[1 : 1 + len(names)]):
        reasons = {k.removeprefix("dropped_"): int(v) for k, v in step.counters.items() if k.startswith("dropped_")}
        out[name] = {"in": step.get("total"), "kept": step.get("forwarded"), "removed": step.get("dropped"),
                     "reasons": reasons}
    return read, out


def dedup_counts(cfg: JobConfig, logs: str) -> dict:
    if cfg.dedup == "none":
        return {"enabled": False, "method": "none"}
    method = {"exact": "exact, normalised content (NFKC, lower case, whitespace collapsed)",
              "minhash": "MinHash near-duplicates (word 5-grams, 14 buckets x 8 hashes)"}[cfg.dedup]
    step = stage_stats(join(logs, "dedup_filter"))[1]
    return {"enabled": True, "method": method, "removed_to": f"removed/{cfg.dedup}_dedup",
            "in": step.get("total"), "kept": step.get("forwarded"), "removed": step.get("dropped")}


def quarantined(root: str) -> list[dict]:
    """The source files `--on-bad-file skip` skipped ({file, error, documents_read}), in task order."""
    fs, path = fsspec.core.url_to_fs(join(root, REMOVED, BAD_FILES))
    records = []
    for file in sorted(fs.glob(f"{path}/*.json")) if fs.exists(path) else []:
        with fs.open(file, "r") as f:
            records += json.load(f)
    return records


INTERLEAVE_BLOCK = 1 << 16  # draws ordered at once: the order's memory, whatever the size


def quotas(proportions: list[float], mean_tokens: list[float], tokens: int) -> list[int]:
    """Documents to draw per bucket: the mixture's proportions of D documents (largest remainder),
    D the fewest whose expected length (from the manifest's means) reaches `tokens`."""
    expected = sum(p * m for p, m in zip(proportions, mean_tokens))
    total = math.ceil(tokens / expected)
    raw = [p * total for p in proportions]
    counts = [math.floor(x) for x in raw]
    for i in sorted(range(len(raw)), key=lambda i: counts[i] - raw[i])[: total - sum(counts)]:
        counts[i] += 1
    return counts


def draws(folder: str, quota: int, rng: np.random.Generator):
    """A bucket's documents in stored order, each as often as drawn: all of them `quota // n`
    times, plus `quota % n` chosen uniformly without replacement (a hypergeometric share per
    shard, then which ones inside it). Each shard is decoded at most once; one at a time."""
    shards = mds.read_index(folder)["shards"]
    left = sum(s["samples"] for s in shards)
    full, extra = divmod(quota, left)
    for shard in shards:
        n = shard["samples"]
        k = int(rng.hypergeometric(n, left - n, extra)) if extra else 0
        left, extra = left - n, extra - k
        if full == 0 and k == 0:
            continue
        times = np.full(n, full, dtype=np.int64)
        times[rng.choice(n, k, replace=False)] += 1
        wanted = np.flatnonzero(times)
        for i, sample in zip(wanted, mds.iter_samples(folder, shard, mds.read_shard(folder, shard), wanted)):
            for _ in range(times[i]):
                yield sample


def materialize(out: str, name: str, items: list[dict], buckets_info: dict, tokens: int, seed: int,
                dtype: str) -> dict:
    """Mixture `items` written as one MDS set of about `tokens` tokens (the manifest records what
    was written): per-bucket document counts exactly in the mixture's proportions, documents drawn
    uniformly inside each bucket (repeated only when a bucket is drawn past its size), buckets
    interleaved at random. Streams: memory holds one decoded shard per bucket, never a list of
    documents. Deterministic from `seed`; readers shuffle as usual (StreamingDataset(shuffle=True))."""
    from streaming import MDSWriter

    by_path = {b["path"]: b for b in buckets_info.values()}
    items = [i for i in items if float(i["proportion"]) > 0]
    means = [by_path[i["path"]]["tokens"] / by_path[i["path"]]["documents"] for i in items]
    counts = quotas([float(i["proportion"]) for i in items], means, tokens)
    rng = np.random.default_rng(seed)
    mixture_file = join(out, MIXTURES, f"{name}.json")
    streams = [draws(join_within(out, i["path"], mixture_file), n, rng) for i, n in zip(items, counts)]
    left = np.array(counts, dtype=np.int64)
    target = join(out, MDS, MATERIALIZED, name)
    fs, path = fsspec.core.url_to_fs(target)
    if fs.exists(path):
        fs.rm(path, recursive=True)
    written = 0
    with MDSWriter(out=target, columns=mds.columns(dtype), compression=mds.COMPRESSION, hashes=mds.HASHES) as w:
        while left.sum():  # the bucket order, a block at a time: a uniform shuffle of the remaining draws
            block = rng.multivariate_hypergeometric(left, min(int(left.sum()), INTERLEAVE_BLOCK))
            left -= block
            for b in rng.permutation(np.repeat(np.arange(len(block)), block)):
                sample = next(streams[b])
                w.write(sample)
                written += int(sample["num_tokens"])
    return {"path": f"{MDS}/{MATERIALIZED}/{name}", "tokens": written, "documents": int(sum(counts)), "seed": seed,
            "per_bucket": {i["path"]: n for i, n in zip(items, counts)}}


class BuildManifest(PipelineStep):
    """Single task: reads the merged indexes and stage stats, writes manifest and mixtures."""

    name = "📜 manifest + mixtures"
    type = "💾 - WRITER"

    def __init__(self, cfg: JobConfig, filter_names: list[str]):
        super().__init__()
        self.cfg, self.filter_names = cfg, filter_names

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        manifest = build_manifest(self.cfg, self.filter_names)
        manifest_io.write(self.cfg.output, manifest)
        yield from ()


def build_manifest(cfg: JobConfig, filter_names: list[str]) -> dict:
    out = cfg.output
    tok = load_tokenizer(cfg.tokenizer)
    counters = stage_stats(cfg.logs("tokenize"))[1].counters

    def describe(name: str, rel: str) -> dict:
        documents, shards = mds.summary(mds.read_index(join(out, rel)))
        counted = int(counters.get(f"{name}/documents", 0))
        if counted != documents:
            raise ValueError(f"{join(out, rel)}: index lists {documents} documents, tokenize counted {counted}; "
                             "rerun `tokenize` (it rebuilds the index)")
        return {"path": rel, "documents": documents, "tokens": int(counters.get(f"{name}/tokens", 0)),
                "shards": shards, "histogram": histogram(counters, name)}

    bucket_list = buckets(cfg.bucket_edges)
    bucket_info = {b.name: {"min_tokens": b.lo, "max_tokens": b.hi, **describe(b.name, b.path)} for b in bucket_list}
    doc_counts = {b: bucket_info[b.name]["documents"] for b in bucket_list}
    # the documents' own run: this one, or for a re-tokenization the run that filtered FROM
    source = retokenize.source_manifest(cfg) if cfg.retokenize_from else None
    logs = retokenize.filter_logs(source, cfg.retokenize_from) if source else cfg.logging_dir
    read, filters = filter_counts(logs, filter_names)
    bad_files = quarantined(cfg.retokenize_from or out)
    dedup = dedup_counts(cfg, logs)
    kept = dedup["kept"] if dedup["enabled"] else (filters[filter_names[-1]]["kept"] if filter_names else read)
    validation = {"fraction": cfg.val_fraction, **describe(VALIDATION, f"{MDS}/{VALIDATION}")}
    in_shards = sum(doc_counts.values()) + validation["documents"]
    if in_shards != kept:
        raise ValueError(
            f"{out}: {kept} documents were kept by `filter`{' and dedup' if dedup['enabled'] else ''}, but the "
            f"buckets and validation hold {in_shards} ({sum(doc_counts.values())} + {validation['documents']}); "
            "the filtered documents changed after `tokenize` ran, or a stage is incomplete: rerun `tokenize` "
            "(or `filter`, then `tokenize`) with the same settings"
        )

    fs, raw = fsspec.core.url_to_fs(join(out, RAW))
    source_files = sorted(p[len(raw.rstrip("/")) + 1 :] for p in fs.find(raw)) if fs.exists(raw) else []
    mixtures = {}
    for name, proportions in (("stage1", mixture.natural(doc_counts)),
                              ("stage2", mixture.long_context(doc_counts, cfg.stage2_choices))):
        items = mixture.to_json(proportions)
        atomic.write_text(join(out, MIXTURES, f"{name}.json"), json.dumps(items, indent=2))
        mixtures[name] = {"path": f"{MIXTURES}/{name}.json", "proportions": {i["bucket"]: i["proportion"] for i in items}}
        if cfg.materialize:
            mixtures[name]["materialized"] = materialize(out, name, items, bucket_info, cfg.materialize, cfg.seed,
                                                         tok.dtype.name)
    mixtures["stage2"]["choices"] = [
        {"min_tokens": t, "probability": p,
         "documents": sum(n for b, n in doc_counts.items() if b.lo >= t)} for t, p in cfg.stage2_choices
    ]
    manifest = {
        "format_version": manifest_io.FORMAT_VERSION,
        "pipeline_version": PIPELINE_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": source["source"] if source else {"url": cfg.input, "files": source_files},
        "config": cfg.to_dict(),
        "tokenizer": tok.describe(),
        "documents": {"read": read, "kept": kept, "removed": read - kept, "bad_files": len(bad_files)},
        "bad_files": bad_files,
        "filters": filters,
        "dedup": dedup,
        "buckets": bucket_info,
        "validation": validation,
        "mixtures": mixtures,
    }
    if source:
        manifest["retokenized_from"] = {"root": cfg.retokenize_from, "tokenizer": source["tokenizer"],
                                        "created": source.get("created")}
    return manifest


def summary(manifest: dict, out: str) -> str:
    """The end-of-run report: documents in/kept/removed per filter, tokens per bucket, where."""
    docs = manifest["documents"]
    lines = [f"documents read {docs['read']:,}  kept {docs['kept']:,}  removed {docs['removed']:,}"]
    if docs.get("bad_files"):
        lines.append(f"  skipped {docs['bad_files']} bad source file(s) (--on-bad-file skip): "
                     + ", ".join(b["file"] for b in manifest["bad_files"]))
    for name, f in manifest["filters"].items():
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(f["reasons"].items()))
        lines.append(f"  {name:<18} in {f['in']:>9,}  removed {f['removed']:>8,}" + (f"  ({reasons})" if reasons else ""))
    if manifest["dedup"]["enabled"]:
        name = manifest["dedup"]["removed_to"].split("/")[-1]
        lines.append(f"  {name:<18} in {manifest['dedup']['in']:>9,}  removed {manifest['dedup']['removed']:>8,}")
    for name, b in [*manifest["buckets"].items(), ("val", manifest["validation"])]:
        lines.append(f"{name:<12} {b['documents']:>9,} documents {b['tokens']:>13,} tokens "
                     f"{b['shards']:>5} shards  {b['path']}")
    for name, m in manifest["mixtures"].items():
        lines.append(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in m["proportions"].items()))
    tok = manifest["tokenizer"]
    if "retokenized_from" in manifest:
        was = manifest["retokenized_from"]
        lines.append(f"tokenizer: {tok['name']}  vocab {tok['vocab_size']:,}  {tok['dtype']}  "
                     f"(was {was['tokenizer']['name']}, in {was['root']})")
    lines.append(f"output: {out}  (manifest.json, mixtures/, mds/)")
    return "\n".join(lines)
