"""Typed run configuration: one dataclass per component, loaded from a YAML stage file and
`--set section.key=value` overrides, checked in `__post_init__`, saved resolved with every run."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from neobert import NeoBERTConfig
from shards import windows
from shards.mds import HASHES
from shards.masking import Masking

FROM_MANIFEST = ("vocab_size", "pad_token_id")  # model fields the trainer takes from the shards


def _model_section() -> type:
    """The `model:` section: `NeoBERTConfig`'s own fields and defaults, less the two the manifest
    gives, checked by `NeoBERTConfig` itself; `.neobert(vocab_size, pad_token_id)` builds it."""
    hints = typing.get_type_hints(NeoBERTConfig)
    specs = [(f.name, hints[f.name], field(default=f.default))
             for f in dataclasses.fields(NeoBERTConfig) if f.name not in FROM_MANIFEST]

    def neobert(self, vocab_size: int, pad_token_id: int) -> NeoBERTConfig:
        return NeoBERTConfig(**dataclasses.asdict(self), vocab_size=vocab_size, pad_token_id=pad_token_id)

    def check(self) -> None:
        try:
            NeoBERTConfig(**dataclasses.asdict(self))
        except ValueError as e:
            raise ValueError(f"model.{e}") from None

    return dataclasses.make_dataclass("ModelConfig", specs, namespace={"neobert": neobert, "__post_init__": check})


ModelConfig = _model_section()


@dataclass
class DataConfig:
    root: str = "out/sample"  # a pipeline output folder or URL (manifest.json, mds/, mixtures/)
    mixture: str = "stage1"  # name under OUT/mixtures/ or a path to a mixture .json
    cache_dir: str | None = None  # where shards are copied to be read; None: shards.streams.default_cache_dir()
    cache_limit: int | str | None = None  # e.g. "20gb": streaming evicts cached shards beyond it; None: keep all
    validate_hash: str | None = None  # sha1 | xxh64: check each shard file as it enters the cache
    context_length: int = 1024  # longest window, [CLS] and [SEP] included
    long_docs: str = "split"  # split: consecutive windows; truncate: first window only (paper)
    micro_batch_tokens: int = 32768  # token budget of one packed micro-batch
    masking: Masking = field(default_factory=Masking)  # rate, replace ([MASK] / random / keep)
    shuffle: bool = True
    num_workers: int = 1  # 0: pack in the training process; 1: in one DataLoader worker
    read_ahead: int = 65536  # samples read ahead of the packer, so ranks reach epoch ends (see data.py)

    def __post_init__(self):
        windows.check(self.context_length, self.long_docs, "data.")
        if self.micro_batch_tokens < self.context_length:
            raise ValueError(
                f"data.micro_batch_tokens ({self.micro_batch_tokens}) must be >= data.context_length "
                f"({self.context_length}) so that every window fits a micro-batch"
            )
        if self.validate_hash not in (None, *HASHES):
            raise ValueError(f"data.validate_hash must be one of {HASHES} (what the shards record) or null, "
                             f"got {self.validate_hash!r}")
        if self.read_ahead < 1:
            raise ValueError(f"data.read_ahead must be >= 1, got {self.read_ahead}")
        if self.num_workers not in (0, 1):
            raise ValueError(
                f"data.num_workers must be 0 or 1, got {self.num_workers}: one worker packs > 1M tokens/s "
                "(benchmarks/dataloader_throughput.py), and one keeps the packer state exact on resume"
            )


@dataclass
class OptimConfig:
    lr: float = 6e-4  # peak
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.1  # on matrices and embeddings, not on norms or biases
    grad_clip: float = 1.0

    def __post_init__(self):
        self.betas = tuple(float(b) for b in self.betas)


@dataclass
class ScheduleConfig:
    """lr(step) as a fraction of the peak: see training.schedule."""

    kind: str = "cosine"  # cosine | linear: warm-up, then to final_ratio at decay_end, then constant; constant
    warmup_steps: int = 2000
    decay_end: int = 900_000
    final_ratio: float = 0.1

    def __post_init__(self):
        if self.kind not in ("cosine", "linear", "constant"):
            raise ValueError(f"schedule.kind must be 'cosine', 'linear' or 'constant', got {self.kind!r}")
        if self.kind != "constant" and self.decay_end <= self.warmup_steps:
            raise ValueError(
                f"schedule.decay_end ({self.decay_end}) must be > schedule.warmup_steps ({self.warmup_steps})"
            )


@dataclass
class CheckpointConfig:
    every: int = 1000  # steps; also written at the end and on SIGTERM/SIGINT
    keep: int = 3
    resume: str = "auto"  # auto: newest valid checkpoint of run_dir if any; none; or a checkpoint path
    init_from: str | None = None  # weights only (stage 2 from stage 1): a checkpoint or a run folder


@dataclass
class LogConfig:
    every: int = 10
    tensorboard: bool = True
    peak_tflops: float | None = None  # per device, for MFU; None: bf16 dense peak of known GPUs


@dataclass
class PLLConfig:
    """Pseudo-perplexity (`training.pppl`): one forward row per scored position, so these bound its cost."""

    positions: int | str = 8  # a seeded sample of N per position range per window, or "all"; 0: off
    max_documents: int | None = 16  # per rank; None: the whole held-out split
    batch_tokens: int = 32768  # tokens per forward: rows of one window, batch_tokens // its length (>= 1)

    def __post_init__(self):
        if not (self.positions == "all" or isinstance(self.positions, int) and self.positions >= 0):
            raise ValueError(f"pll positions must be 'all' or a count >= 0 per position range (0: off), "
                             f"got {self.positions!r}")
        if self.batch_tokens < 1:
            raise ValueError(f"pll batch_tokens must be >= 1, got {self.batch_tokens}")


@dataclass
class ValidationConfig:
    every: int = 1000  # steps; 0 disables
    context_length: int | None = None  # None: model.max_length, so every position range is scored
    seed: int = 1234  # fixed masks and PLL positions, so validations are comparable across steps and runs
    max_documents: int | None = None
    # Sampled by default, 8 positions per range on 16 documents per rank: a window of L tokens
    # then costs 8 rows of L tokens per range, which keeps the quickstart's validations to seconds
    # on a CPU; the stage YAMLs score 32, `python -m training pppl` more or all positions.
    pll: PLLConfig = field(default_factory=PLLConfig)


@dataclass
class Config:
    run_dir: str = "runs/stage1"
    seed: int = 0
    steps: int = 1_000_000
    global_batch_tokens: int = 2048 * 1024  # reached with gradient accumulation
    distributed: str = "ddp"  # ddp | fsdp2
    compile: bool = False  # compile each block (neobert.compiled) and pad micro-batches to one shape (GPU)
    max_bad_steps: int = 10  # consecutive NaN/inf losses before the run stops
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    log: LogConfig = field(default_factory=LogConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)

    def __post_init__(self):
        if self.distributed not in ("ddp", "fsdp2"):
            raise ValueError(f"distributed must be 'ddp' or 'fsdp2', got {self.distributed!r}")
        if self.data.context_length > self.model.max_length:
            raise ValueError(
                f"data.context_length ({self.data.context_length}) exceeds model.max_length ({self.model.max_length})"
            )
        if (self.validation.context_length or 0) > self.model.max_length:
            raise ValueError(f"validation.context_length ({self.validation.context_length}) exceeds "
                             f"model.max_length ({self.model.max_length})")

    def accumulation_steps(self, world_size: int) -> int:
        per_step = self.data.micro_batch_tokens * world_size
        if self.global_batch_tokens % per_step:
            raise ValueError(
                f"global_batch_tokens ({self.global_batch_tokens}) must be a multiple of "
                f"data.micro_batch_tokens × world size ({self.data.micro_batch_tokens} × {world_size})"
            )
        return self.global_batch_tokens // per_step

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _coerce(value, kind, where: str):
    """YAML reads `1e-2` as a string and `[0.9, 0.95]` as a list: convert to the field's type."""
    try:
        if kind is float and isinstance(value, (int, str)) and not isinstance(value, bool):
            return float(value)
        if kind is int and isinstance(value, str):
            return int(float(value)) if float(value).is_integer() else value
        if typing.get_origin(kind) is tuple and isinstance(value, list):
            return tuple(value)
    except ValueError:
        raise ValueError(f"{where}: {value!r} is not a {kind.__name__}") from None
    return value


def _build(cls, values: dict, where: str):
    known = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
    kwargs = {}
    for name, value in values.items():
        sub = known[name].default_factory if known[name].default_factory is not dataclasses.MISSING else None
        if sub is not None and dataclasses.is_dataclass(sub):
            if not isinstance(value, dict):
                raise ValueError(f"{where}: '{name}' must be a mapping, got {value!r}")
            value = _build(sub, value, f"{where}.{name}")
        kwargs[name] = _coerce(value, hints[name], f"{where}.{name}")
    return cls(**kwargs)


def set_dotted(tree: dict, assignment: str) -> None:
    """Apply one `section.key=value` override; the value is parsed as YAML (numbers, lists, null)."""
    if "=" not in assignment:
        raise ValueError(f"--set expects key=value, got {assignment!r}")
    key, raw = assignment.split("=", 1)
    *parents, leaf = key.strip().split(".")
    node = tree
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ValueError(f"--set {assignment}: '{p}' is not a section")
    node[leaf] = yaml.safe_load(raw)


def load(path: str | Path | None, overrides: list[str] = (), cls: type = Config):
    """`cls` (the run `Config`, or another config dataclass such as GLUE's) from YAML + overrides."""
    tree: dict[str, Any] = {}
    if path is not None:
        with open(path) as f:
            tree = yaml.safe_load(f) or {}
    for assignment in overrides:
        set_dotted(tree, assignment)
    return _build(cls, tree, str(path or "config"))


def from_dict(tree: dict) -> Config:
    return _build(Config, tree, "saved config")
