"""GLUE examples: loaded with `datasets.load_dataset` from the Hub (`nyu-mll/glue`, NAME) or from
local CSV/JSON/parquet files with `run_glue.py`'s column names, encoded as `[CLS] a [SEP] (b [SEP])`,
and batched packed (documents back to back, the pretraining layout) or padded.

Invariants: an example is never split across batches; truncation keeps `max_length` tokens,
cutting the longer sentence first (longest-first, as `run_glue.py`'s tokenizer call); rows labelled
-1 (SNLI's examples without a gold label, GLUE's test splits) are dropped, any other label outside
the task's range is an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from shards.packing import assemble
from training.glue.tasks import Task

FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}  # suffix -> load_dataset builder
LABEL = "label"
NO_LABEL = -1


@dataclass(frozen=True)
class Source:
    """The arguments of the one `datasets.load_dataset(path, name, data_files=…)` call."""

    path: str
    name: str | None
    data_files: dict[str, str] | None
    validation: str  # the split to score

    def describe(self) -> str:
        return ", ".join(self.data_files.values()) if self.data_files else f"{self.path} ({self.name or 'default'})"


def source(task: Task, train_file: str | None = None, validation_file: str | None = None) -> Source:
    """The Hub dataset of `task`, or the local files (both given, one format)."""
    if train_file is None and validation_file is None:
        return Source(*task.hub, None, task.validation)
    if train_file is None or validation_file is None:
        raise ValueError("--train-file and --validation-file go together: give both, or neither for the Hub dataset")
    formats = {FORMATS.get(Path(f).suffix.lower()) for f in (train_file, validation_file)}
    if None in formats or len(formats) > 1:
        raise ValueError(f"--train-file {train_file} / --validation-file {validation_file}: both must be one of "
                         f"{sorted(FORMATS)} (the same format)")
    return Source(formats.pop(), None, {"train": str(train_file), "validation": str(validation_file)}, "validation")


def load_splits(src: Source):
    """(train, validation) `datasets.Dataset`s."""
    import datasets

    try:
        loaded = datasets.load_dataset(src.path, src.name, data_files=src.data_files)
    except (ConnectionError, FileNotFoundError) as e:
        fix = ("check the paths" if src.data_files else
               "it needs the Hub (or its datasets cache); offline, pass local files with --train-file/--validation-file")
        raise ValueError(f"cannot load {src.describe()}: {e}; {fix}") from None
    missing = [s for s in ("train", src.validation) if s not in loaded]
    if missing:
        raise ValueError(f"{src.describe()} has splits {list(loaded)}, not {missing}")
    return loaded["train"], loaded[src.validation]


@dataclass(frozen=True)
class Encoder:
    """A `tokenizers.Tokenizer` (no truncation, no padding) and the ids that frame an example."""

    tokenizer: object
    cls: int
    sep: int
    pad: int

    def encode(self, first: list[str], second: list[str] | None, max_length: int) -> list[np.ndarray]:
        a = self._ids(first)
        b = self._ids(second) if second is not None else [None] * len(a)
        out = []
        for x, y in zip(a, b):
            if y is None:
                x = x[:max_length - 2]
                out.append(np.asarray([self.cls, *x, self.sep], dtype=np.int64))
            else:
                la, lb = fit(len(x), len(y), max_length - 3)
                out.append(np.asarray([self.cls, *x[:la], self.sep, *y[:lb], self.sep], dtype=np.int64))
        return out

    def _ids(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch_fast([t or "" for t in texts], add_special_tokens=False)]


def fit(la: int, lb: int, budget: int) -> tuple[int, int]:
    """Lengths kept of a pair under `budget` tokens, one token at a time from the longer (ties: the second)."""
    if la + lb <= budget:
        return la, lb
    shorter = min(la, lb)
    if shorter <= budget // 2:  # only the longer one is cut
        return (budget - lb, lb) if la > lb else (la, budget - la)
    return (budget + 1) // 2, budget // 2  # both cut to halves; the first keeps the odd token


@dataclass
class Examples:
    ids: list[np.ndarray]
    labels: np.ndarray  # int64 classes or float32 scores

    def __len__(self) -> int:
        return len(self.ids)


def examples(split, task: Task, encoder: Encoder, max_length: int, where: str) -> Examples:
    """Encode one split; `where` names it in errors (a file or the Hub id)."""
    needed = [c for c in (*task.columns, LABEL) if c is not None]
    missing = [c for c in needed if c not in split.column_names]
    if missing:
        raise ValueError(f"{where}: task {task.name} needs columns {needed} (run_glue.py's names), "
                         f"missing {missing}; found {split.column_names}")
    labels = np.asarray(split[LABEL])
    if task.regression:
        if not np.issubdtype(labels.dtype, np.number):
            raise ValueError(f"{where}: {task.name} is a regression task; column {LABEL!r} must hold numbers")
        keep = np.ones(len(labels), dtype=bool)
        labels = labels.astype(np.float32)
    else:
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"{where}: column {LABEL!r} must hold integer class ids 0..{task.num_labels - 1}, "
                             f"got {labels.dtype} (e.g. {labels[:3].tolist()})")
        keep = labels != NO_LABEL
        bad = labels[keep & ((labels < 0) | (labels >= task.num_labels))]
        if len(bad):
            raise ValueError(f"{where}: labels {sorted(set(bad.tolist()))[:5]} are outside 0..{task.num_labels - 1} "
                             f"for {task.name}")
        labels = labels.astype(np.int64)
    rows = np.flatnonzero(keep)
    if not len(rows):
        raise ValueError(f"{where}: no labelled examples (every label is {NO_LABEL})")
    first, second = task.columns
    texts = {c: split[c] for c in task.columns if c is not None}
    ids = encoder.encode([texts[first][i] for i in rows],
                         [texts[second][i] for i in rows] if second else None, max_length)
    return Examples(ids, labels[rows])


def batches(ex: Examples, batch_size: int, layout: str, pad: int, order: np.ndarray | None = None) -> Iterator[dict]:
    """Model inputs plus `labels`, `batch_size` examples at a time, in `order` (default: as stored).

    packed: `input_ids (T,)`, `cu_seqlens`, `max_seqlen`, `position_ids` (shards.packing);
    padded: `input_ids (B, L)` and `attention_mask` (1 = token), L the longest example of the batch.
    """
    order = np.arange(len(ex)) if order is None else order
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        windows = [ex.ids[i] for i in rows]
        labels = torch.from_numpy(ex.labels[rows])
        if layout == "packed":
            p = assemble(windows)
            yield {"input_ids": torch.from_numpy(p.input_ids), "cu_seqlens": torch.from_numpy(p.cu_seqlens),
                   "max_seqlen": p.max_seqlen, "position_ids": torch.from_numpy(p.position_ids), "labels": labels}
        else:
            width = max(len(w) for w in windows)
            ids = torch.full((len(windows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(windows), width), dtype=torch.long)
            for r, w in enumerate(windows):
                ids[r, :len(w)] = torch.from_numpy(w)
                mask[r, :len(w)] = 1
            yield {"input_ids": ids, "attention_mask": mask, "labels": labels}
