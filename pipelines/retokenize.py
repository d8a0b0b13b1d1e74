"""Re-tokenize a finished pipeline output with another tokenizer, into a separate output.

    refinedweb tokenize --from FROM --output NEW --tokenizer OTHER [--tasks N --workers W]
    python -m pipelines.retokenize FROM --output NEW --tokenizer OTHER   (the same)

Reads `FROM/filtered/` as it is (no download, no filters, no dedup rerun) and runs the `tokenize`
and `mix` steps of `pipelines.refinedweb` into NEW with the settings recorded in FROM's manifest
(bucket edges, validation fraction, stage-2 choices), except the tokenizer. Ids are `uint32` when
OTHER's vocabulary exceeds 65,535 (see `pipelines.tokenizer`).

Invariants: FROM is never written to; NEW's manifest records OTHER (name, sha256, vocab size,
special ids), the filter and dedup counts of the run that made the documents (their Datatrove
stats are copied into NEW/logs/), FROM's source, and `retokenized_from: FROM`. Rerunning the same
command resumes like any pipeline step.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import fsspec

from pipelines.config import JobConfig
from pipelines.mix import summary
from shards import manifest as manifest_io
from shards.layout import FILTERED, LOGS, join


def job_config(source: str, source_manifest: dict, output: str, tokenizer: str, tasks: int,
               workers: int) -> JobConfig:
    """FROM's job settings, reading FROM's documents, with NEW's output, tokenizer and parallelism."""
    fields = {f.name for f in dataclasses.fields(JobConfig)}
    recorded = {k: v for k, v in source_manifest["config"].items() if k in fields}
    return JobConfig(**{**recorded, "output": output, "tokenizer": tokenizer, "logging_dir": None,
                        "filtered": join(source, FILTERED),
                        "executor": "local", "tasks": tasks, "workers": workers, "materialize": 0})


def copy_filter_stats(source_logs: str, cfg: JobConfig) -> None:
    """The filter-side stage stats of FROM, which `mix` turns into the manifest's filter counts."""
    for stage in ("filter", "dedup_filter"):
        src = join(source_logs, stage, "stats")
        fs, path = fsspec.core.url_to_fs(src)
        if not fs.exists(path):
            if stage == "filter" or cfg.dedup != "none":
                raise FileNotFoundError(f"{src} not found: FROM's filter logs are needed for the manifest's counts")
            continue
        out_fs, out = fsspec.core.url_to_fs(join(cfg.logs(stage), "stats"))
        out_fs.makedirs(out, exist_ok=True)
        for file in fs.glob(f"{path}/*.json"):
            with fs.open(file, "rb") as f, out_fs.open(f"{out}/{file.rsplit('/', 1)[-1]}", "wb") as g:
                g.write(f.read())


def retokenize(source: str, output: str, tokenizer: str, tasks: int = 2, workers: int = -1) -> dict:
    source, output = source.rstrip("/"), output.rstrip("/")
    if source == output:
        raise ValueError("--output must differ from FROM: re-tokenization writes a separate output")
    src = manifest_io.read(source)
    cfg = job_config(source, src, output, tokenizer, tasks, workers)
    copy_filter_stats(src["config"].get("logging_dir") or join(source, LOGS), cfg)
    from pipelines.refinedweb import build  # the same stages as `refinedweb tokenize` + `mix`

    build(cfg, ("tokenize", "mix")).run()
    manifest = manifest_io.read(output)
    manifest["source"] = src["source"]
    manifest["retokenized_from"] = {"root": source, "tokenizer": src["tokenizer"], "created": src.get("created")}
    manifest_io.write(output, manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    p = argparse.ArgumentParser(prog="python -m pipelines.retokenize", description=__doc__.split("\n\n")[0])
    p.add_argument("source", metavar="FROM", help="a finished pipeline output (its filtered/ and manifest.json)")
    p.add_argument("--output", "-o", required=True, help="the new output folder or URL (NEW)")
    p.add_argument("--tokenizer", required=True, help="tokenizer.json path or Hub name")
    p.add_argument("--tasks", type=int, default=2)
    p.add_argument("--workers", type=int, default=-1, help="tasks run at once (default: --tasks)")
    a = p.parse_args(argv)
    try:
        manifest = retokenize(a.source, a.output, a.tokenizer, a.tasks, a.workers)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    tok = manifest["tokenizer"]
    print("\n" + summary(manifest, a.output))
    was = manifest["retokenized_from"]["tokenizer"]["name"]
    print(f"tokenizer: {tok['name']}  vocab {tok['vocab_size']:,}  {tok['dtype']}  (was {was})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
