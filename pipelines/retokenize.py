"""Re-tokenization: the settings of `refinedweb tokenize --from FROM --output NEW --tokenizer OTHER`.

The job is the ordinary `tokenize` + `mix` stages of `pipelines.refinedweb`, run over
`FROM/filtered/` as it is (no download, no filters, no dedup rerun). Its `JobConfig` is FROM's
recorded one (documents, buckets, validation, stage-2 choices, batch and shard sizes) with
every option the user gave on top; where and how the tasks run (`--executor`, `--tasks`, …) is
this invocation's. Options that shape the documents (filters, token limits, dedup, the source)
cannot apply to documents already filtered and are refused.

Invariants: FROM is never written to; NEW's manifest (written once, by `mix`) records OTHER, the
filter and dedup counts of the run that made the documents, FROM's source, and
`retokenized_from: FROM`. Ids are `uint32` when OTHER's vocabulary exceeds 65,535.
"""

from __future__ import annotations

import fsspec

from pipelines.config import FIELDS, JobConfig, fields_in, flag, resolve
from shards import manifest as manifest_io
from shards.layout import LOGS, join


def job_config(given: dict) -> JobConfig:
    """FROM's recorded settings, then `given` (what the user passed; `retokenize_from` among them)."""
    source = given["retokenize_from"].rstrip("/")
    refused = sorted(flag(k) or "--disable/--enable" for k in given if k in fields_in("documents"))
    if refused:
        raise ValueError(f"{', '.join(refused)} cannot apply with --from: FROM's documents are already "
                         "downloaded and filtered; drop them, or run `refinedweb all` for a new filtering")
    recorded = manifest_io.read(source)["config"]
    carried = {k: v for k, v in recorded.items() if k in FIELDS and FIELDS[k].metadata["group"] != "run"}
    return resolve(given, carried)


def source_manifest(cfg: JobConfig) -> dict:
    return manifest_io.read(cfg.retokenize_from)


def filter_logs(source: dict, root: str) -> str:
    """Where the run that made FROM's documents kept its stage logs (their stats give the counts)."""
    return source["config"].get("logging_dir") or join(root, LOGS)


def require_filter_stats(cfg: JobConfig) -> None:
    """Fail before any task runs when FROM's filter logs, which give NEW's filter counts, are gone."""
    source = source_manifest(cfg)
    stages = ("filter", "dedup_filter") if source["config"].get("dedup", "none") != "none" else ("filter",)
    for stage in stages:
        stats = join(filter_logs(source, cfg.retokenize_from), stage, "stats")
        fs, path = fsspec.core.url_to_fs(stats)
        if not fs.exists(path):
            raise FileNotFoundError(f"{stats} not found: FROM's filter logs are needed for the manifest's counts")
