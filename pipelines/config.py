"""Settings of one RefinedWeb job, and which of them each stage's output depends on.

A rerun resumes a stage only when the settings its output depends on are unchanged: they are
saved next to the stage's logs, and a mismatch is a loud error instead of a silently mixed output.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import fsspec

from shards import mixture
from shards.layout import BERT_TOKENIZER, DEFAULT_EDGES, FILTERED, LOGS, join

PIPELINE_VERSION = "1"

DEFAULT_FILTERS = ("url", "token_length", "gopher_repetition", "gopher_quality", "c4_quality", "fineweb_quality")
OPTIONAL_FILTERS = ("language", "c4_badwords")  # download models/word lists at run time: opt-in
REFINEDWEB = "hf://datasets/tiiuae/falcon-refinedweb/data"


@dataclass
class JobConfig:
    output: str
    input: str = REFINEDWEB
    glob: str = "**/*.parquet"
    limit_files: int = -1
    # execution
    executor: str = "local"
    tasks: int = 2
    workers: int = -1
    logging_dir: str | None = None
    cpus_per_task: int = 1  # ray: CPUs and memory reserved per task
    mem_per_cpu_gb: float = 2.0
    ray_address: str | None = None  # ray: None = RAY_ADDRESS, else the cluster running on this machine
    # filter
    filters: tuple[str, ...] = DEFAULT_FILTERS
    min_tokens: int = 16
    max_tokens: int = 100_000
    dedup: str = "exact"  # exact | minhash | none
    filter_impl: str = "fast"  # fast | datatrove: the same decisions (pipelines/fast_filters.py), datatrove's slower
    # tokenize
    filtered: str | None = None  # documents to tokenize (default OUT/filtered; another output's to re-tokenize)
    tokenizer: str = str(BERT_TOKENIZER)
    batch_size: int = 512
    bucket_edges: tuple[int, ...] = DEFAULT_EDGES
    val_fraction: float = 0.001
    shard_size: str = "64mb"
    # mix
    stage2_choices: tuple[tuple[int, float], ...] = mixture.STAGE2_CHOICES
    materialize: int = 0
    seed: int = 0

    def __post_init__(self):
        self.filters = tuple(self.filters)
        self.bucket_edges = tuple(int(e) for e in self.bucket_edges)
        self.stage2_choices = tuple((int(t), float(p)) for t, p in self.stage2_choices)
        unknown = set(self.filters) - set(DEFAULT_FILTERS) - set(OPTIONAL_FILTERS)
        if unknown:
            raise ValueError(f"unknown filter(s) {sorted(unknown)}; choose from {DEFAULT_FILTERS + OPTIONAL_FILTERS}")
        if self.filter_impl not in ("fast", "datatrove"):
            raise ValueError(f"filter_impl (--filters) must be fast or datatrove, got {self.filter_impl!r}")
        if self.dedup not in ("exact", "minhash", "none"):
            raise ValueError(f"dedup must be exact, minhash or none, got {self.dedup!r}")
        if self.tasks < 1:
            raise ValueError(f"--tasks must be >= 1, got {self.tasks}")
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
        if self.logging_dir is None:
            self.logging_dir = join(self.output, LOGS)
        if self.filtered is None:
            self.filtered = join(self.output, FILTERED)

    def logs(self, stage: str) -> str:
        return join(self.logging_dir, stage)

    def to_dict(self) -> dict:
        return asdict(self)


# The settings each stage's output depends on (besides those of the stages before it).
STAGE_SETTINGS: dict[str, tuple[str, ...]] = {
    "download": ("input", "glob", "limit_files", "tasks"),
    "filter": ("filters", "min_tokens", "max_tokens", "tokenizer", "tasks", "dedup", "filter_impl"),
    "tokenize": ("tokenizer", "bucket_edges", "val_fraction", "shard_size", "tasks"),
}


def check_resumable(cfg: JobConfig, stage: str) -> None:
    """Save the stage's settings on first run; on a rerun, refuse settings that differ."""
    settings = {k: getattr(cfg, k) for k in STAGE_SETTINGS[stage]}
    settings = json.loads(json.dumps(settings))  # tuples -> lists, as read back
    path = join(cfg.logs(stage), "settings.json")
    fs, fs_path = fsspec.core.url_to_fs(path)
    if fs.exists(fs_path):
        with fs.open(fs_path, "r") as f:
            saved = json.load(f)
        changed = {k: (saved.get(k), v) for k, v in settings.items() if saved.get(k) != v}
        if changed:
            desc = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise ValueError(
                f"{cfg.output} already holds `{stage}` output made with other settings ({desc}); "
                f"rerun with the original settings to resume, or use a new --output"
            )
        return
    fs.makedirs(fs._parent(fs_path), exist_ok=True)
    with fs.open(fs_path, "w") as f:
        json.dump(settings, f, indent=2)
