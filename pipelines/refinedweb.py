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
are redone from scratch, and the output equals that of an uninterrupted run. One driver writes an
OUT at a time (`pipelines.lease`: a second one refuses, naming the first; `--force-unlock`). A step run alone first
checks that the stage it reads completed every task (its completion markers), naming the missing ones. `--executor ray` runs
the same stages on the Ray cluster the job is started on (`ray submit`, `ray job submit`); OUT and
`--logging-dir` may be URLs (s3://…; `S3_ENDPOINT_URL`/`AWS_ENDPOINT_URL` for S3-compatible stores).

Runs as `python -m pipelines.refinedweb`, as the `refinedweb` console script, and as a plain
script (`python pipelines/refinedweb.py`, what `ray submit` ships): imports are absolute, from the
installed package.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from datatrove.pipeline.readers import ParquetReader
from datatrove.pipeline.writers import ParquetWriter

from pipelines import dedup, lease, retokenize
from pipelines.config import (
    DEFAULT_FILTERS,
    OPTIONAL_FILTERS,
    JobConfig,
    add_options,
    check_resumable,
    recorded,
    resolve,
)
from pipelines.download import MirrorFiles, list_source_files
from pipelines.executors import StageFailed, connect_ray, make_executor
from pipelines.filters import build_filters, exclusion_writer, filter_names
from pipelines.mix import BuildManifest, summary
from pipelines.reader import SCHEMA, RefinedWebReader, flat_row
from pipelines.storage import sync_s3_endpoint
from pipelines.tokenize_mds import MergeIndexes, TokenizeToMDS, completed_tasks
from shards import manifest as manifest_io
from shards.layout import BAD_FILES, FILTERED, RAW, REMOVED, join
from shards.tokenizer import pin

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


def require_complete(cfg: JobConfig, stage: str, step: str) -> None:
    """Fail early when the stage a step reads did not complete every task (Datatrove's completion
    markers in `<logging_dir>/<stage>/completions/`), naming the missing ranks and the step to rerun."""
    settings, done = recorded(cfg, "filter" if stage == "dedup_filter" else stage), completed_tasks(cfg.logs(stage))
    if not settings and not done:
        return  # the stage never ran in this OUT: its files came another way, which `require` checked
    tasks = settings.get("tasks", cfg.tasks)
    missing = sorted(set(range(tasks)) - done)
    if missing:
        raise ValueError(f"`{stage}` did not complete tasks {missing} of {tasks} (no completion marker in "
                         f"{join(cfg.logs(stage), 'completions')}): rerun the `{step}` step with the same settings "
                         "to finish them, then this one")


def build(cfg: JobConfig, steps: tuple[str, ...]):
    """Executors for `steps` (in order), each depending on the previous one; returns the last."""
    out, last = cfg.output, None

    def stage(name, pipeline, tasks=cfg.tasks, skip_completed=True):
        nonlocal last
        last = make_executor(cfg, pipeline, logging_dir=cfg.logs(name), tasks=tasks, depends=last,
                             skip_completed=skip_completed)

    if "download" in steps:
        check_resumable(cfg, "download")
        stage("download", [MirrorFiles(cfg.input, join(out, RAW), cfg.glob, cfg.limit_files)])
    if "filter" in steps:
        check_resumable(cfg, "filter")
        if "download" not in steps:
            require(join(out, RAW), cfg.glob, "download")
            require_complete(cfg, "download", "download")
        filters = build_filters(cfg)
        reader = RefinedWebReader(join(out, RAW), doc_progress=True, on_bad_file=cfg.on_bad_file,
                                  quarantine=join(out, REMOVED, BAD_FILES))
        head = [reader, *(f for _, f in filters)]
        if cfg.dedup != "none":
            candidates = dedup.folders(out)["candidates"]
            stage("filter", [*head, filtered_writer(candidates), dedup.signature_step(out, cfg.dedup, cfg.dedup_tasks)])
            for name, pipeline, tasks in dedup.find_stages(out, cfg.dedup, cfg.dedup_tasks):
                stage(name, pipeline, tasks=tasks)
            removed = exclusion_writer(out, f"{cfg.dedup}_dedup")
            stage("dedup_filter", [*dedup.filter_steps(out, cfg.dedup, removed), filtered_writer(join(out, FILTERED))])
        else:
            stage("filter", [*head, filtered_writer(join(out, FILTERED))])
    if "tokenize" in steps:
        check_resumable(cfg, "tokenize")
        if "filter" not in steps:
            require(cfg.filtered, "*.parquet", "filter")
            if not cfg.retokenize_from:  # FROM is a finished output (its manifest says so)
                require_complete(cfg, "filter", "filter")
                if recorded(cfg, "filter").get("dedup", cfg.dedup) != "none":
                    require_complete(cfg, "dedup_filter", "filter")
        stage("tokenize", [
            ParquetReader(cfg.filtered, text_key="text", id_key="id", glob_pattern="*.parquet"),
            TokenizeToMDS(out, cfg.tokenizer, cfg.bucket_edges, cfg.val_fraction, cfg.batch_size, cfg.shard_size),
        ])
        stage("merge", [MergeIndexes(out, cfg.bucket_edges, cfg.logs("tokenize"), cfg.tasks)], tasks=1,
              skip_completed=False)
    if "mix" in steps:
        if "tokenize" not in steps:
            require_complete(cfg, "tokenize", "tokenize")
        if cfg.retokenize_from:
            retokenize.require_filter_stats(cfg)
        stage("mix", [BuildManifest(cfg, filter_names(cfg))], tasks=1, skip_completed=False)
    return last


def parse_args(argv: list[str] | None = None) -> tuple[str, JobConfig]:
    """(step, its JobConfig). Options come from `JobConfig`'s fields; with `tokenize --from FROM`
    the settings not given are FROM's recorded ones (see `pipelines.retokenize`)."""
    p = argparse.ArgumentParser(prog="refinedweb", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="step", required=True)
    for step in (*STEPS, "all"):
        s = sub.add_parser(step, help=f"run {'every step' if step == 'all' else 'the ' + step + ' step'}")
        add_options(s, step)
        s.add_argument("--disable", action="append", default=argparse.SUPPRESS, choices=DEFAULT_FILTERS,
                       metavar="FILTER", help=f"switch a default filter off (repeatable): {', '.join(DEFAULT_FILTERS)}")
        s.add_argument("--enable", action="append", default=argparse.SUPPRESS, choices=OPTIONAL_FILTERS,
                       metavar="FILTER",
                       help=f"switch an opt-in filter on (downloads its model/list): {', '.join(OPTIONAL_FILTERS)}")
        s.add_argument("--stage2", type=float, nargs=3, default=argparse.SUPPRESS, metavar=("P_ALL", "P_GE1", "P_GE2"),
                       help="stage-2 probabilities of {all, >= first edge, >= second edge} (default 0.2 0.4 0.4)")
    given = vars(p.parse_args(argv))
    step = given.pop("step")
    disable, enable = given.pop("disable", None), given.pop("enable", None)
    if disable is not None or enable is not None:
        given["filters"] = tuple(f for f in (*DEFAULT_FILTERS, *OPTIONAL_FILTERS)
                                 if f not in (disable or ()) and (f in DEFAULT_FILTERS or f in (enable or ())))
    if "retokenize_from" in given:
        return step, retokenize.job_config(given)
    return step, resolve(given)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # one tokenizer per task; tasks are the parallelism
    try:
        sync_s3_endpoint()
        step, cfg = parse_args(argv)
        if cfg.executor == "ray":  # before the lease: a job that cannot start writes nothing into OUT
            connect_ray(cfg.ray_address, {"--output": cfg.output, "--logging-dir": cfg.logging_dir})
        with lease.held(cfg.logging_dir, cfg.output, force=cfg.force_unlock):
            cfg = dataclasses.replace(cfg, tokenizer=pin(cfg.tokenizer))  # every task fetches the same commit
            steps = STEPS if step == "all" else ("tokenize", "mix") if cfg.retokenize_from else (step,)
            build(cfg, steps).run()
        if "mix" in steps:
            print("\n" + summary(manifest_io.read(cfg.output), cfg.output))
    except (ValueError, FileNotFoundError, StageFailed) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
