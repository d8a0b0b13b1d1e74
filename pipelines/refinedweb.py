"""RefinedWeb → filtered documents → length-bucketed MDS shards, manifest and stage mixtures.

    refinedweb all --output OUT [--input URL|sample] [--tasks N --workers W] [--executor ray]
    refinedweb download|filter|tokenize|mix --output OUT …

Stages (each a Datatrove job with its logs and completion markers in OUT/logs/<stage>/; `all`
chains them with `depends=`):
    download      source parquet (any fsspec URL)  → OUT/raw/
    filter        OUT/raw/ → filters → dedup (exact; opt-in minhash) → OUT/filtered/
                  (everything dropped is kept in OUT/removed/<filter>/)
    tokenize      OUT/filtered/ → OUT/mds/<bucket>/, OUT/mds/val/   (+ one merged index.json each)
    mix           OUT/manifest.json, OUT/mixtures/stage1.json, stage2.json

Rerunning the same command after a crash resumes: completed tasks are skipped, unfinished ones
are redone from scratch, and the output equals that of an uninterrupted run. `--executor ray` runs
the same stages on the Ray cluster the job is started on (`ray submit`, `ray job submit`); OUT and
`--logging-dir` may be URLs (s3://…; `S3_ENDPOINT_URL`/`AWS_ENDPOINT_URL` for S3-compatible stores).

Runs as `python -m pipelines.refinedweb`, as the `refinedweb` console script, and as a plain
script (`python pipelines/refinedweb.py`, what `ray submit` ships): imports are absolute, from the
installed package.
"""

from __future__ import annotations

import argparse
import os
import sys

from datatrove.pipeline.readers import ParquetReader
from datatrove.pipeline.writers import ParquetWriter

from pipelines import dedup, retokenize
from pipelines.config import DEFAULT_FILTERS, OPTIONAL_FILTERS, REFINEDWEB, JobConfig, check_resumable
from pipelines.download import MirrorFiles, list_source_files
from pipelines.executors import EXECUTORS, StageFailed, connect_ray, make_executor
from pipelines.filters import build_filters, exclusion_writer, filter_names
from pipelines.mix import BuildManifest, summary
from pipelines.reader import SCHEMA, RefinedWebReader, flat_row
from pipelines.storage import sync_s3_endpoint
from pipelines.tokenize_mds import MergeIndexes, TokenizeToMDS
from shards import manifest as manifest_io
from shards.layout import FILTERED, RAW, SAMPLE_DIR, join

STEPS = ("download", "filter", "tokenize", "mix")


def filtered_writer(folder: str) -> ParquetWriter:
    return ParquetWriter(folder, output_filename="${rank}.parquet", adapter=flat_row, schema=SCHEMA,
                         compression="zstd", max_file_size=-1)


def require(folder: str, glob: str, step: str) -> None:
    """Fail early, naming the step to run, when a stage's input is missing."""
    try:
        list_source_files(folder, glob)
    except ValueError:
        raise ValueError(f"{folder} has no input files: run the `{step}` step (or `all`) first") from None


def build(cfg: JobConfig, steps: tuple[str, ...]):
    """Executors for `steps` (in order), each depending on the previous one; returns the last."""
    out, last = cfg.output, None

    def stage(name, pipeline, tasks=cfg.tasks, **kw):
        nonlocal last
        last = make_executor(cfg.executor, pipeline, logging_dir=cfg.logs(name), tasks=tasks, workers=cfg.workers,
                             depends=last, cpus_per_task=cfg.cpus_per_task, mem_per_cpu_gb=cfg.mem_per_cpu_gb, **kw)

    if "download" in steps:
        check_resumable(cfg, "download")
        stage("download", [MirrorFiles(cfg.input, join(out, RAW), cfg.glob, cfg.limit_files)])
    if "filter" in steps:
        check_resumable(cfg, "filter")
        if "download" not in steps:
            require(join(out, RAW), cfg.glob, "download")
        filters = build_filters(cfg)
        head = [RefinedWebReader(join(out, RAW), doc_progress=True), *(f for _, f in filters)]
        if cfg.dedup != "none":
            candidates = dedup.folders(out)["candidates"]
            stage("filter", [*head, filtered_writer(candidates), dedup.signature_step(out, cfg.dedup)])
            for name, pipeline, tasks in dedup.find_stages(out, cfg.dedup):
                stage(name, pipeline, tasks=tasks)
            removed = exclusion_writer(out, f"{cfg.dedup}_dedup")
            stage("dedup_filter", [*dedup.filter_steps(out, cfg.dedup, removed), filtered_writer(join(out, FILTERED))])
        else:
            stage("filter", [*head, filtered_writer(join(out, FILTERED))])
    if "tokenize" in steps:
        check_resumable(cfg, "tokenize")
        if "filter" not in steps:
            require(cfg.filtered, "*.parquet", "filter")
        stage("tokenize", [
            ParquetReader(cfg.filtered, text_key="text", id_key="id", glob_pattern="*.parquet"),
            TokenizeToMDS(out, cfg.tokenizer, cfg.bucket_edges, cfg.val_fraction, cfg.batch_size, cfg.shard_size),
        ])
        stage("merge", [MergeIndexes(out, cfg.bucket_edges, cfg.logs("tokenize"), cfg.tasks)], tasks=1,
              skip_completed=False)
    if "mix" in steps:
        stage("mix", [BuildManifest(cfg, filter_names(cfg))], tasks=1, skip_completed=False)
    return last


def parse_args(argv: list[str] | None = None) -> tuple[str, JobConfig | argparse.Namespace]:
    """(step, its JobConfig); `tokenize --from FROM` gives ("retokenize", the parsed arguments),
    whose settings come from FROM's manifest instead (see pipelines.retokenize)."""
    p = argparse.ArgumentParser(prog="refinedweb", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="step", required=True)
    for step in (*STEPS, "all"):
        s = sub.add_parser(step, help=f"run {'every step' if step == 'all' else 'the ' + step + ' step'}")
        s.add_argument("--output", "-o", required=True, help="output folder or URL (OUT)")
        s.add_argument("--input", default=REFINEDWEB,
                       help="source parquet folder, any fsspec URL (local, s3://, hf://); 'sample' = the bundled "
                            f"160-document sample (default: {REFINEDWEB})")
        s.add_argument("--glob", default="**/*.parquet", help="source files to take, relative to --input")
        s.add_argument("--limit-files", type=int, default=-1, help="take only the first N source files (try-out)")
        s.add_argument("--executor", choices=EXECUTORS, default="local",
                       help="local: a process pool on this machine; ray: the Ray cluster the job runs on")
        s.add_argument("--tasks", type=int, default=2, help="tasks per stage (files are spread over them)")
        s.add_argument("--workers", type=int, default=-1, help="tasks run at once (default: --tasks)")
        s.add_argument("--logging-dir", default=None, help="Datatrove logs and completion markers (default OUT/logs)")
        s.add_argument("--cpus-per-task", type=int, default=1, help="ray: CPUs reserved per task")
        s.add_argument("--mem-per-cpu-gb", type=float, default=2.0, help="ray: memory reserved per CPU of a task")
        s.add_argument("--ray-address", default=None,
                       help="ray: cluster to join (default: $RAY_ADDRESS, else the one running on this machine; "
                            "'local' starts a one-off instance)")
        s.add_argument("--disable", action="append", default=[], choices=DEFAULT_FILTERS, metavar="FILTER",
                       help=f"switch a default filter off (repeatable): {', '.join(DEFAULT_FILTERS)}")
        s.add_argument("--enable", action="append", default=[], choices=OPTIONAL_FILTERS, metavar="FILTER",
                       help=f"switch an opt-in filter on (downloads its model/list): {', '.join(OPTIONAL_FILTERS)}")
        s.add_argument("--dedup", choices=dedup.METHODS, default="exact",
                       help="exact (normalised content, default), minhash (near duplicates, opt-in) or none")
        s.add_argument("--filters", dest="filter_impl", choices=("fast", "datatrove"), default="fast",
                       help="filter implementation: fast (default) or datatrove (the reference); same decisions")
        s.add_argument("--min-tokens", type=int, default=16)
        s.add_argument("--max-tokens", type=int, default=100_000)
        s.add_argument("--tokenizer", default=str(JobConfig.tokenizer),
                       help="tokenizer.json path or Hub name (default: bundled bert-base-uncased)")
        s.add_argument("--batch-size", type=int, default=512, help="documents per encode_batch call")
        s.add_argument("--bucket-edges", type=int, nargs="+", default=[1024, 2048], help="token-count bucket edges")
        s.add_argument("--val-fraction", type=float, default=0.001, help="share of documents held out in mds/val")
        s.add_argument("--shard-size", default="64mb", help="MDS shard size limit (uncompressed)")
        s.add_argument("--stage2", type=float, nargs=3, default=None, metavar=("P_ALL", "P_GE1", "P_GE2"),
                       help="stage-2 probabilities of {all, >= first edge, >= second edge} (default 0.2 0.4 0.4)")
        s.add_argument("--materialize", type=int, default=0, metavar="N",
                       help="also write each mixture as a physical MDS set of N tokens (OUT/mds/materialized/)")
        s.add_argument("--seed", type=int, default=0, help="seed of --materialize")
        if step == "tokenize":
            s.add_argument("--from", dest="source", default=None, metavar="FROM",
                           help="re-tokenize the filtered documents of the finished output FROM into --output "
                                "(no download, no filters; FROM's bucket, validation and mixture settings)")
    a = p.parse_args(argv)
    if getattr(a, "source", None):
        return "retokenize", a
    edges = tuple(a.bucket_edges)
    stage2 = JobConfig.stage2_choices
    if a.stage2 is not None:
        if len(edges) < 2:
            raise ValueError("--stage2 needs two bucket edges (thresholds 0, edge 1, edge 2)")
        stage2 = tuple(zip((0, edges[0], edges[1]), a.stage2))
    cfg = JobConfig(
        output=a.output.rstrip("/"), input=str(SAMPLE_DIR) if a.input == "sample" else a.input, glob=a.glob,
        limit_files=a.limit_files, executor=a.executor,
        tasks=a.tasks, workers=a.workers, logging_dir=a.logging_dir, cpus_per_task=a.cpus_per_task,
        mem_per_cpu_gb=a.mem_per_cpu_gb, ray_address=a.ray_address,
        filters=tuple(f for f in (*DEFAULT_FILTERS, *OPTIONAL_FILTERS) if f not in a.disable
                      and (f in DEFAULT_FILTERS or f in a.enable)),
        min_tokens=a.min_tokens, max_tokens=a.max_tokens, dedup=a.dedup, filter_impl=a.filter_impl,
        tokenizer=a.tokenizer,
        batch_size=a.batch_size, bucket_edges=edges, val_fraction=a.val_fraction, shard_size=a.shard_size,
        stage2_choices=stage2, materialize=a.materialize, seed=a.seed,
    )
    return a.step, cfg


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # one tokenizer per task; tasks are the parallelism
    try:
        sync_s3_endpoint()
        step, cfg = parse_args(argv)
        if step == "retokenize":  # `tokenize --from FROM`: another tokenizer over FROM/filtered
            return retokenize.main([cfg.source, "--output", cfg.output, "--tokenizer", cfg.tokenizer,
                                    "--tasks", str(cfg.tasks), "--workers", str(cfg.workers)])
        if cfg.executor == "ray":
            connect_ray(cfg.ray_address, {"--output": cfg.output, "--logging-dir": cfg.logging_dir})
        steps = STEPS if step == "all" else (step,)
        build(cfg, steps).run()
        if "mix" in steps:
            print("\n" + summary(manifest_io.read(cfg.output), cfg.output))
    except (ValueError, FileNotFoundError, StageFailed) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
