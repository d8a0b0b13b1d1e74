"""The one place that turns a list of Datatrove steps into an executor.

Every stage of every job goes through `make_executor`, so adding a backend (the Ray executor is
next) means adding one branch here and one `--executor` choice.
"""

from __future__ import annotations

import multiprocess
from datatrove.executor import LocalPipelineExecutor
from datatrove.executor.base import PipelineExecutor

EXECUTORS = ("local",)
PRELOAD = ["pipelines.refinedweb", "streaming", "tokenizers"]


def make_executor(
    kind: str,
    pipeline: list,
    *,
    logging_dir: str,
    tasks: int,
    workers: int = -1,
    depends: PipelineExecutor | None = None,
    skip_completed: bool = True,
) -> PipelineExecutor:
    """An executor running `pipeline` as `tasks` tasks; `depends` runs (or resumes) first.

    `skip_completed=False` is for cheap single-task steps that must see their inputs afresh on
    every run (index merge, manifest), so a rerun with new mixture settings takes effect.
    """
    if kind == "local":
        # Task processes fork from one server that has the heavy libraries (streaming imports torch)
        # imported once, instead of every task of every stage importing them again.
        multiprocess.set_forkserver_preload(PRELOAD)
        return LocalPipelineExecutor(
            pipeline,
            tasks=tasks,
            workers=min(workers if workers > 0 else tasks, tasks),
            logging_dir=logging_dir,
            depends=depends,
            skip_completed=skip_completed,
        )
    raise ValueError(f"unknown executor {kind!r}; choose one of {EXECUTORS}")
