"""A GLUE fine-tuning run's settings: one dataclass whose defaults are the published protocol
(NeoBERT's GLUE launcher), one YAML per task (`training/configs/glue/<task>.yaml`) for what differs,
`--set key=value` on top, as for the trainer."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from neobert.config import BACKENDS
from training import config as run_config
from training.glue import tasks
from training.glue.grid import Grid, Point

CONFIGS = Path(__file__).parent.parent / "configs" / "glue"
LAYOUTS = ("packed", "padded")


@dataclass
class GlueConfig:
    task: str = "cola"  # a name of training.glue.tasks.TASKS
    run_dir: str = "runs/glue"  # results.json, results.md and TASK/best/ (the best fine-tune) go here
    point: Point = field(default_factory=Point)  # the one point run without --grid
    grid: Grid = field(default_factory=Grid)  # what --grid runs
    seed: int = 0
    epochs: int = 10
    eval_every: int = 1000  # steps; at least once an epoch (as published), and at the last step
    early_stopping: int = 15  # stop after this many evaluations without a better score; 0: never
    warmup: float = 0.06  # fraction of the steps
    decay_end: float = 0.9  # fraction of the steps where the linear decay reaches final_ratio × lr
    final_ratio: float = 0.1
    classifier_dropout: float = 0.1
    max_length: int = 1024  # tokens per example, [CLS]/[SEP] included (longest-first truncation)
    layout: str = "packed"  # packed: documents back to back (varlen attention); padded: (B, L) rows
    attention_backend: str | None = None  # packed batches: None picks the fastest (neobert.attention)
    eval_batch_size: int = 64
    init_from: str | None = None  # a task name (its best fine-tune in run_dir), a checkpoint, or None: CHECKPOINT
    tokenizer: str | None = None  # a tokenizer.json or its folder; None: the checkpoint's

    def __post_init__(self):
        tasks.get(self.task)
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.attention_backend is not None and self.attention_backend not in BACKENDS:
            raise ValueError(f"attention_backend must be one of {BACKENDS} or null, got {self.attention_backend!r}")
        if not 0 <= self.warmup < self.decay_end <= 1:
            raise ValueError(f"need 0 <= warmup < decay_end <= 1 (fractions of the steps), got "
                             f"warmup={self.warmup}, decay_end={self.decay_end}")
        for name in ("epochs", "eval_every", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_length < 3:
            raise ValueError(f"max_length must be >= 3 ([CLS] a [SEP] b [SEP]), got {self.max_length}")
        if self.init_from == self.task:
            raise ValueError(f"init_from: {self.task} names the task itself; name another task or a checkpoint")


def config_path(task: str) -> Path:
    return CONFIGS / f"{task}.yaml"


def load(task: str, overrides: list[str] = (), path: str | Path | None = None) -> GlueConfig:
    """`path` (default: the task's YAML) with `--set` overrides; the task is the YAML's."""
    path = Path(path) if path else config_path(task)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no GLUE config for task {task!r}; write one like {config_path('cola')}")
    cfg = run_config.load(path, overrides, cls=GlueConfig)
    if cfg.task != task:
        raise ValueError(f"{path} is the config of task {cfg.task!r}, not {task!r}")
    return cfg
