"""Datatrove per-task stats (`<logging_dir>/stats/<rank>.json`), summed over the completed tasks.

Read per task rather than the executor's merged `stats.json`, which after a resumed run covers only
the tasks of the last invocation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import fsspec

from shards.layout import join


@dataclass
class StepStats:
    name: str
    seconds: float = 0.0
    counters: dict[str, float] = field(default_factory=dict)

    def get(self, key: str) -> int:
        return int(self.counters.get(key, 0))


def _total(value) -> float:
    return value["total"] if isinstance(value, dict) else value


def add(steps: list[StepStats], file_steps: list[dict]) -> list[StepStats]:
    """`steps` with one task's stats file (its parsed JSON) added, step by step."""
    for i, step in enumerate(file_steps):
        if i == len(steps):
            steps.append(StepStats(step["name"]))
        s = steps[i]
        s.seconds += _total(step["time_stats"])
        for key, value in step["stats"].items():
            s.counters[key] = s.counters.get(key, 0) + _total(value)
    return steps


def stats_file(logging_dir: str, rank: int) -> str:
    return join(logging_dir, "stats", f"{rank:05d}.json")


def task_stats(logging_dir: str, rank: int) -> list[StepStats] | None:
    """One task's stats (one entry per pipeline step), or None when it left no stats file."""
    try:
        with fsspec.open(stats_file(logging_dir, rank), "r") as f:
            return add([], json.load(f))
    except FileNotFoundError:
        return None


def stage_stats(logging_dir: str) -> list[StepStats]:
    """One entry per pipeline step (in pipeline order), summed over the stage's tasks."""
    fs, path = fsspec.core.url_to_fs(join(logging_dir, "stats"))
    files = sorted(fs.glob(f"{path}/*.json")) if fs.exists(path) else []
    if not files:
        raise ValueError(f"no task stats under {logging_dir}/stats: run that stage first")
    steps: list[StepStats] = []
    for file in files:
        with fs.open(file, "r") as f:
            add(steps, json.load(f))
    return steps
