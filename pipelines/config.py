"""Settings of one RefinedWeb job: the only place for their defaults and help, the command line
generated from them, and which of them each stage's output depends on.

A rerun resumes a stage only when the settings its output depends on are unchanged: they are
saved next to the stage's logs, and a mismatch is a loud error instead of a silently mixed output.
What is compared is content, not spelling: the tokenizer by the sha256 of its normalised
`tokenizer.json`, a re-tokenization's source by a hash of its manifest's document settings and
counts, bundled paths relative to the checkout; so the same OUT resumes from another clone, with
the tokenizer copied elsewhere or named on the Hub.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import typing
from dataclasses import asdict, dataclass, field

import fsspec

from shards import atomic, mixture
from shards import manifest as manifest_io
from shards.layout import BERT_TOKENIZER, DEFAULT_EDGES, FILTERED, LOGS, SAMPLE_DIR, SETTINGS, join, portable
from shards.tokenizer import content_sha256

PIPELINE_VERSION = "1"

DEFAULT_FILTERS = ("url", "token_length", "gopher_repetition", "gopher_quality", "c4_quality", "fineweb_quality")
OPTIONAL_FILTERS = ("language", "c4_badwords")  # download models/word lists at run time: opt-in
REFINEDWEB = "hf://datasets/tiiuae/falcon-refinedweb/data"
EXECUTORS = ("local", "ray")
DEDUP_METHODS = ("exact", "minhash", "none")
FILTER_IMPLS = ("fast", "datatrove")
BAD_FILE_ACTIONS = ("stop", "skip")


def setting(default, help: str, *, group: str, **cli):
    """A JobConfig field with its help text and command-line option (`cli`: `flag`, `short`,
    `choices`, `metavar`, `steps` = the subcommands that take it; `flag=None`: no option).

    `group` says what the setting shapes: `documents` (download and filters, fixed for a
    re-tokenization), `run` (where and how the tasks run, free at every invocation), `shards`."""
    return field(default=default, metadata={"help": help, "group": group, **cli})


@dataclass
class JobConfig:
    output: str = setting(None, "output folder or URL (OUT)", group="run", short="-o")
    input: str = setting(REFINEDWEB, "source parquet folder, any fsspec URL (local, s3://, hf://); 'sample' = the "
                         "bundled 160-document sample", group="documents")
    glob: str = setting("**/*.parquet", "source files to take, relative to --input", group="documents")
    limit_files: int = setting(-1, "take only the first N source files (try-out)", group="documents")
    on_bad_file: str = setting("stop", "a source file that is not a readable RefinedWeb parquet: stop the job "
                               "naming it, or skip it (counted in the manifest, listed in OUT/removed/bad_files/)",
                               group="documents", choices=BAD_FILE_ACTIONS, steps=("filter", "all"))
    # execution
    executor: str = setting("local", "local: a process pool on this machine; ray: the Ray cluster the job runs on",
                            group="run", choices=EXECUTORS)
    tasks: int = setting(2, "tasks per stage (files are spread over them)", group="run")
    workers: int = setting(-1, "tasks run at once (-1: --tasks)", group="run")
    logging_dir: str | None = setting(None, "Datatrove logs and completion markers (default OUT/logs)", group="run")
    force_unlock: bool = setting(False, "take the lease of OUT from the driver named in it (pipelines/lease.py): "
                                 "only when that driver is not running any more", group="run")
    cpus_per_task: int = setting(1, "ray: CPUs reserved per task", group="run")
    mem_per_cpu_gb: float = setting(2.0, "ray: memory reserved per CPU of a task", group="run")
    ray_address: str | None = setting(None, "ray: cluster to join (default: $RAY_ADDRESS, else the one running on "
                                      "this machine; 'local' starts a one-off instance)", group="run")
    # filter (`--disable`/`--enable` set `filters`; see `parse_args`)
    filters: tuple[str, ...] = setting(DEFAULT_FILTERS, "filters that run", group="documents", flag=None)
    min_tokens: int = setting(16, "drop documents shorter than this ([CLS] and [SEP] included)", group="documents")
    max_tokens: int = setting(100_000, "drop documents longer than this", group="documents")
    dedup: str = setting("exact", "exact (normalised content), minhash (near duplicates, opt-in) or none",
                         group="documents", choices=DEDUP_METHODS)
    dedup_tasks: int = setting(1, "tasks that find duplicates, each over one hash range of the signatures "
                               "(minhash: of each of 14 buckets) and, for minhash, that cluster them, each for "
                               "the filter ranks r = task mod N (memory: README, Pipeline)", group="documents")
    filter_impl: str = setting("fast", "filter implementation: fast (the same decisions, pipelines/fast_filters.py) "
                               "or datatrove (Datatrove's own filters, the reference)", group="documents",
                               flag="--filters", choices=FILTER_IMPLS)
    # tokenize
    retokenize_from: str | None = setting(
        None, "re-tokenize the filtered documents of the finished output FROM into --output (no download, no "
        "filters; FROM's document, bucket, validation and mixture settings unless given)", group="run",
        flag="--from", metavar="FROM", steps=("tokenize",))
    filtered: str | None = setting(None, "documents to tokenize (OUT/filtered, or FROM/filtered)", group="run",
                                   flag=None)
    tokenizer: str = setting(str(BERT_TOKENIZER), "tokenizer.json path, a folder holding one, or a Hub name, "
                             "pinned as NAME@REVISION (a Hub name's default revision: the fixed commit for "
                             "bert-base-uncased, else main, resolved to its commit at start; default: the bundled "
                             "bert-base-uncased)", group="shards")
    batch_size: int = setting(512, "documents per encode_batch call", group="shards")
    bucket_edges: tuple[int, ...] = setting(DEFAULT_EDGES, "token-count bucket edges", group="shards")
    val_fraction: float = setting(0.001, "share of documents held out in mds/val", group="shards")
    shard_size: str = setting("64mb", "MDS shard size limit (uncompressed)", group="shards")
    # mix (`--stage2` sets `stage2_choices`; see `parse_args`)
    stage2_choices: tuple[tuple[int, float], ...] = setting(mixture.STAGE2_CHOICES, "stage-2 (min tokens, "
                                                            "probability) choices", group="shards", flag=None)
    materialize: int = setting(0, "also write each mixture as a physical MDS set of N tokens "
                               "(OUT/mds/materialized/)", group="run", metavar="N")
    seed: int = setting(0, "seed of --materialize", group="run")

    def __post_init__(self):
        if not self.output:
            raise ValueError("--output is required: the folder or URL the job writes (OUT)")
        self.output = self.output.rstrip("/")
        if self.input == "sample":
            self.input = str(SAMPLE_DIR)
        self.filters = tuple(self.filters)
        self.bucket_edges = tuple(int(e) for e in self.bucket_edges)
        self.stage2_choices = tuple((int(t), float(p)) for t, p in self.stage2_choices)
        unknown = set(self.filters) - set(DEFAULT_FILTERS) - set(OPTIONAL_FILTERS)
        if unknown:
            raise ValueError(f"unknown filter(s) {sorted(unknown)}; choose from {DEFAULT_FILTERS + OPTIONAL_FILTERS}")
        for name, allowed in (("executor", EXECUTORS), ("dedup", DEDUP_METHODS), ("filter_impl", FILTER_IMPLS),
                              ("on_bad_file", BAD_FILE_ACTIONS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{flag(name)} (JobConfig.{name}) must be one of {allowed}, "
                                 f"got {getattr(self, name)!r}")
        if self.tasks < 1 or self.dedup_tasks < 1:
            raise ValueError(f"--tasks and --dedup-tasks must be >= 1, got {self.tasks}, {self.dedup_tasks}")
        if self.cpus_per_task < 1 or self.mem_per_cpu_gb <= 0:
            raise ValueError(f"need --cpus-per-task >= 1 and --mem-per-cpu-gb > 0, got {self.cpus_per_task}, "
                             f"{self.mem_per_cpu_gb}")
        if not 0 < self.min_tokens < self.max_tokens:
            raise ValueError(f"need 0 < --min-tokens < --max-tokens, got {self.min_tokens}, {self.max_tokens}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        bad = [t for t, _ in self.stage2_choices if t != 0 and t not in self.bucket_edges]
        if bad:
            raise ValueError(
                f"stage-2 thresholds {bad} are not bucket edges {self.bucket_edges}; add them to --bucket-edges"
            )
        if self.batch_size < 1 or self.materialize < 0:
            raise ValueError("--batch-size must be >= 1 and --materialize >= 0")
        if self.retokenize_from is not None:
            self.retokenize_from = self.retokenize_from.rstrip("/")
            if self.retokenize_from == self.output:
                raise ValueError("--output must differ from --from: re-tokenization writes a separate output")
        if self.logging_dir is None:
            self.logging_dir = join(self.output, LOGS)
        if self.filtered is None:
            self.filtered = join(self.retokenize_from or self.output, FILTERED)

    def logs(self, stage: str) -> str:
        return join(self.logging_dir, stage)

    def to_dict(self) -> dict:
        return asdict(self)


FIELDS = {f.name: f for f in dataclasses.fields(JobConfig)}
HINTS = typing.get_type_hints(JobConfig)


def fields_in(group: str) -> tuple[str, ...]:
    return tuple(name for name, f in FIELDS.items() if f.metadata["group"] == group)


def flag(name: str) -> str | None:
    return FIELDS[name].metadata.get("flag", "--" + name.replace("_", "-"))


def add_options(parser: argparse.ArgumentParser, step: str) -> None:
    """One option per JobConfig field (its help and default from the field); values the user does
    not give are left out of the namespace (`SUPPRESS`), so callers know what was given."""
    for name, f in FIELDS.items():
        meta = f.metadata
        if flag(name) is None or step not in meta.get("steps", (step,)):
            continue
        kind = HINTS[name]
        args = {"help": f"{meta['help']} (default: {f.default})" if f.default not in (None, "") else meta["help"]}
        if kind is bool:
            args.update(action="store_true", help=meta["help"])
        elif typing.get_origin(kind) is tuple:
            args.update(nargs="+", type=typing.get_args(kind)[0])
        else:
            base = [t for t in typing.get_args(kind) if t is not type(None)] or [kind]
            args["type"] = base[0]
        for key in ("choices", "metavar"):
            if key in meta:
                args[key] = meta[key]
        names = [flag(name)] + ([meta["short"]] if "short" in meta else [])
        parser.add_argument(*names, dest=name, default=argparse.SUPPRESS, required=name == "output", **args)


def stage2_choices(probabilities, edges: tuple[int, ...]) -> tuple[tuple[int, float], ...]:
    """`--stage2 P_ALL P_GE1 P_GE2`: the probabilities of {all, >= first edge, >= second edge}."""
    if len(edges) < 2:
        raise ValueError(f"--stage2 needs two bucket edges (thresholds 0, edge 1, edge 2), got {tuple(edges)}")
    return tuple(zip((0, edges[0], edges[1]), probabilities))


def resolve(given: dict, base: dict | None = None) -> JobConfig:
    """The JobConfig of `base` (recorded settings) with `given` (command-line values) on top;
    `given["stage2"]` holds `--stage2`'s probabilities, turned into choices at the final edges."""
    values = {**(base or {}), **given}
    probabilities = values.pop("stage2", None)
    if probabilities is not None:
        values["stage2_choices"] = stage2_choices(probabilities, values.get("bucket_edges", DEFAULT_EDGES))
    return JobConfig(**values)


# The settings each stage's output depends on (besides those of the stages before it). `filter_impl`
# is not one: both implementations make the same decisions (tests/pipelines/test_fast_filters.py).
STAGE_SETTINGS: dict[str, tuple[str, ...]] = {
    "download": ("input", "glob", "limit_files", "tasks"),
    "filter": ("filters", "min_tokens", "max_tokens", "tokenizer", "tasks", "dedup", "dedup_tasks"),
    "tokenize": ("tokenizer", "bucket_edges", "val_fraction", "shard_size", "tasks"),
}


# Settings added after outputs were first written: what such an output was made with.
UNRECORDED = {"dedup_tasks": 1}
# A name compared only where the recorded settings lack the hash of what it names (older outputs).
CONTENT = {"tokenizer": "tokenizer_sha256", "source": "source_sha256"}


def recorded(cfg: JobConfig, stage: str) -> dict:
    """The settings a stage saved when it first ran in this OUT (`check_resumable`), or {} before that."""
    fs, path = fsspec.core.url_to_fs(join(cfg.logs(stage), SETTINGS))
    if not fs.exists(path):
        return {}
    with fs.open(path, "r") as f:
        return json.load(f)


def source_sha256(root: str) -> str:
    """What a re-tokenization's documents depend on: its FROM manifest's document settings and counts."""
    manifest = manifest_io.read(root)
    config = manifest["config"]
    record = {"config": {k: portable(config.get(k)) for k in fields_in("documents")},
              **{k: manifest.get(k) for k in ("documents", "filters", "dedup")}}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def settings_of(cfg: JobConfig, stage: str) -> dict:
    """The settings a stage's output depends on, as recorded: no path of this checkout, and the
    content hash of what a name points to beside the name."""
    settings = {k: portable(getattr(cfg, k)) for k in STAGE_SETTINGS[stage]}
    if "tokenizer" in settings:
        settings["tokenizer_sha256"] = content_sha256(cfg.tokenizer)
    if stage == "tokenize":
        settings["source"] = cfg.retokenize_from
        settings["source_sha256"] = source_sha256(cfg.retokenize_from) if cfg.retokenize_from else None
    return json.loads(json.dumps(settings))  # tuples -> lists, as read back


def check_resumable(cfg: JobConfig, stage: str) -> None:
    """Save the stage's settings on first run; on a rerun, refuse settings that differ (those the
    record holds: an older record lacks some, see `UNRECORDED` and `CONTENT`)."""
    settings = settings_of(cfg, stage)
    saved = recorded(cfg, stage)
    if saved:
        saved = {**UNRECORDED, **saved}
        changed = {k: (saved[k], v) for k, v in settings.items()
                   if k in saved and not (k in CONTENT and CONTENT[k] in saved) and portable(saved[k]) != v}
        if changed:
            named = {h: n for n, h in CONTENT.items()}  # a hash is shown with the names it was taken of
            desc = ", ".join(f"{k}: {old!r} ({saved.get(named[k])}) -> {new!r} ({settings[named[k]]})" if k in named
                             else f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise ValueError(
                f"{cfg.output} already holds `{stage}` output made with other settings ({desc}; recorded in "
                f"{join(cfg.logs(stage), SETTINGS)}); rerun with the original settings to resume, or use a new --output"
            )
        return
    atomic.write_text(join(cfg.logs(stage), SETTINGS), json.dumps(settings, indent=2))
