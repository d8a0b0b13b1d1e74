"""The one place that turns a list of Datatrove steps into an executor, and joins the Ray cluster.

Every stage of every job goes through `make_executor`: `local` runs the tasks in a process pool on
this machine, `ray` runs each task as an actor on the Ray cluster `connect_ray` joined. A stage
given as `Rounds` runs as one ordinary stage per round until its output is stable.

Invariants of the Ray path: the job joins a running cluster and never starts one it was not asked
for (`--ray-address local` asks); when tasks can run on another node, the output and Datatrove's
completion markers are on storage every node sees (a URL such as s3://…), else the job refuses to
start; a stage whose tasks did not all finish raises `StageFailed` (Datatrove's executor only logs
a warning, and a stage depending on it would wait forever); no forwarded secret is written to a
file (executor.json, Ray's logs) or printed; jobs sharing a cluster share no file on its nodes.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile

from datatrove.executor import LocalPipelineExecutor, RayPipelineExecutor
from datatrove.executor.base import ExecutorJSONEncoder, PipelineExecutor
from datatrove.io import file_is_local, get_datafolder

from pipelines.config import JobConfig
from shards.layout import join

# Ray workers inherit the environment of the node's raylet, not the job's: what the tasks need to
# reach storage and the Hub travels with them (credentials included: prefer instance roles on AWS).
FORWARDED_ENV = (
    "AWS_ENDPOINT_URL", "S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "HF_TOKEN", "HF_HUB_OFFLINE", "TOKENIZERS_PARALLELISM",
)
FORWARDED_PREFIX = "FSSPEC_"  # fsspec's per-protocol options, e.g. FSSPEC_S3_ENDPOINT_URL
# The forwarded variables whose values executor.json may show; any other may be a secret.
PUBLIC_ENV = ("AWS_ENDPOINT_URL", "S3_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE",
              "HF_HUB_OFFLINE", "TOKENIZERS_PARALLELISM")
REDACTED = "<redacted>"


class StageFailed(RuntimeError):
    """Some tasks of a stage did not finish; the message names them and where their logs are."""


def forwarded_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in FORWARDED_ENV or k.startswith(FORWARDED_PREFIX)}


class RedactingEncoder(ExecutorJSONEncoder):
    """Datatrove's executor.json encoder, with the values of forwarded secrets replaced."""

    def default(self, o):
        data = super().default(o)
        if isinstance(o, RayExecutor):
            data["env"] = {k: v if k in PUBLIC_ENV else REDACTED for k, v in o.env.items()}
        return data


class RayExecutor(RayPipelineExecutor):
    """Datatrove's Ray executor that raises `StageFailed` when a task did not finish.

    `env` is set in each task's process: it travels inside the pickled executor, not in Ray's
    runtime_env, which Ray writes to its logs and shows on the dashboard."""

    def __init__(self, *args, env: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.env = dict(env or {})

    def __repr__(self) -> str:  # how Datatrove names a stage in "Launching dependency job …"
        return f"ray stage {self.logging_dir.resolve_paths('')}"

    def save_executor_as_json(self, indent: int = 4):
        with self.logging_dir.open("executor.json", "w") as f:
            json.dump(self, f, cls=RedactingEncoder, indent=indent)

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1):
        """Datatrove's task with the job's `env`, in a temporary folder of its own on the node (removed
        after): Datatrove logs to `{tempfile.gettempdir()}/ray_logs/…`, which every job would share."""
        os.environ.update(self.env)
        scratch = tempfile.mkdtemp(prefix="datatrove-task-")
        tempfile.tempdir = scratch
        try:
            return super()._run_for_rank(rank, local_rank, node_rank)
        finally:
            tempfile.tempdir = None
            shutil.rmtree(scratch, ignore_errors=True)

    def run(self):
        if not self.skip_completed and self.logging_dir.exists("completions"):
            # a stage rerun in full every time: only this run's completion markers may count
            self.logging_dir.rm("completions", recursive=True)
        super().run()
        if failed := self.get_incomplete_ranks(skip_completed=True):
            logs = self.logging_dir.resolve_paths("logs")
            raise StageFailed(
                f"{self.logging_dir.resolve_paths('')}: tasks {failed} of {self.world_size} failed "
                f"({last_error(self, failed[0])}); see {logs}/task_<rank>.log, fix the cause and rerun "
                "the same command to resume"
            )


class Rounds:
    """A stage whose tasks run again, round after round, until the rounds' output is stable (e.g.
    connected components found by local steps): the number of rounds depends on the data."""

    limit = 200  # rounds after which the stage stops as failed (a bug, not a data size)

    def pipeline(self, round: int) -> list:
        raise NotImplementedError

    def stable(self, round: int) -> bool:
        """Read after every task of `round` finished: whether it was the last round."""
        raise NotImplementedError


class UntilStable:
    """Executor mixin: runs `Rounds.pipeline(r)` as an ordinary stage in `logging_dir/round_<r>` for
    r = 0, 1, … until `Rounds.stable(r)`. Each round resumes like any stage (its completion markers);
    a stage depending on this one waits for the last round."""

    def __init__(self, rounds: Rounds, *args, logging_dir: str, **kwargs):
        super().__init__(rounds.pipeline(0), *args, logging_dir=join(logging_dir, "round_000"), **kwargs)
        self.rounds, self.rounds_dir = rounds, logging_dir

    def run(self):
        for r in range(self.rounds.limit):
            self.pipeline, self.logging_dir = self.rounds.pipeline(r), get_datafolder(join(self.rounds_dir, f"round_{r:03d}"))
            super().run()
            if self.rounds.stable(r):
                return
        raise StageFailed(f"{self.rounds_dir}: not stable after {self.rounds.limit} rounds; please report this")


class LocalRounds(UntilStable, LocalPipelineExecutor):
    pass


class RayRounds(UntilStable, RayExecutor):
    pass


def last_error(executor: PipelineExecutor, rank: int) -> str:
    """The exception line at the end of a failed task's log, or a hint when it left no log."""
    path = f"logs/task_{rank:05d}.log"
    if not executor.logging_dir.exists(path):
        return f"task {rank} left no log: it was killed; see the Ray dashboard"
    with executor.logging_dir.open(path, "r") as f:
        lines = [line.strip() for line in f if line.strip()]
    errors = [line for line in lines if line.split(":", 1)[0].endswith(("Error", "Exception", "Failed"))]
    return f"task {rank}: {(errors or lines or ['empty log'])[-1]}"


def make_executor(cfg: JobConfig, pipeline: list, *, logging_dir: str, tasks: int,
                  depends: PipelineExecutor | None, skip_completed: bool = True) -> PipelineExecutor:
    """An executor running `pipeline` as `tasks` tasks on `cfg.executor`; `depends` runs (or
    resumes) first. At most `cfg.workers` tasks run at once; on Ray each reserves
    `cfg.cpus_per_task` CPUs and `cfg.mem_per_cpu_gb` GB per CPU.

    `skip_completed=False` is for cheap single-task steps that must see their inputs afresh on
    every run (index merge, manifest), so a rerun with new mixture settings takes effect.
    `pipeline` may be `Rounds`: the stage then runs round after round (`UntilStable`).
    """
    workers = min(cfg.workers if cfg.workers > 0 else tasks, tasks)
    common = dict(tasks=tasks, workers=workers, logging_dir=logging_dir, depends=depends, skip_completed=skip_completed)
    rounds = isinstance(pipeline, Rounds)
    if cfg.executor == "local":
        return (LocalRounds if rounds else LocalPipelineExecutor)(pipeline, **common)
    return (RayRounds if rounds else RayExecutor)(pipeline, cpus_per_task=cfg.cpus_per_task,
                                                  mem_per_cpu_gb=cfg.mem_per_cpu_gb, env=forwarded_env(), **common)


def connect_ray(address: str | None, shared_paths: dict[str, str]) -> None:
    """Join the Ray cluster at `address` (else `RAY_ADDRESS`, else the one running on this machine),
    or reuse the connection this process already has; then check `shared_paths` ({flag: path})."""
    import ray

    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS") or "auto"
        try:
            if address.count(":") == 1 and "://" not in address:  # HOST:PORT: Ray would retry for minutes
                host, port = address.rsplit(":", 1)
                socket.create_connection((host, int(port)), timeout=10).close()
            ray.init(address=address)
        except (ConnectionError, OSError) as e:
            raise ValueError(
                f"--executor ray: no Ray cluster at {address!r} ({e}). Start one first (`ray up ray_cluster.yaml`, "
                "or `ray start --head` on this machine), then pass --ray-address HOST:PORT or set RAY_ADDRESS; "
                "`--ray-address local` starts a one-off instance on this machine instead"
            ) from None
    refuse_local_paths(shared_paths, tasks_leave_this_node())


def tasks_leave_this_node() -> bool:
    """Whether a task may run on another node: several nodes are alive, or this one offers no CPU
    (a launcher head with `CPU: 0`, whose workers the autoscaler adds once tasks wait)."""
    import ray

    alive = [n for n in ray.nodes() if n["Alive"]]
    here = ray.get_runtime_context().get_node_id()
    cpus_here = sum(n["Resources"].get("CPU", 0) for n in alive if n["NodeID"] == here)
    return len(alive) > 1 or cpus_here == 0


def refuse_local_paths(paths: dict[str, str], multi_node: bool) -> None:
    """On a multi-node cluster every task must see the same output and completion markers."""
    local = [f"{flag} {path}" for flag, path in paths.items() if file_is_local(path)]
    if multi_node and local:
        raise ValueError(
            f"{' and '.join(local)} {'is' if len(local) == 1 else 'are'} on this machine's disk, but the Ray "
            "cluster runs tasks on other nodes, which would write shards and Datatrove's completion markers where "
            "no other node sees them; "
            "use shared storage, e.g. --output s3://BUCKET/refinedweb (the logs go under it by default)"
        )
