"""SIGKILL at a random moment, rerun, compare: a crash of the pipeline or the trainer loses, duplicates
and changes nothing.

    python -m benchmarks.chaos [--pipeline 20] [--training 10] [--seed 0] [--input sample] [--workdir DIR]

Pipeline: one uninterrupted reference run of the README's `refinedweb all --input INPUT --output REF
--val-fraction 0.05` (with `--tasks 2 --workers 2`, so several tasks and processes exist). Each trial
starts the same command on a fresh OUT in its own process group, SIGKILLs the whole group after a
seeded random delay drawn from [0, the reference's wall time) (the row names the stage that was
running, from `OUT/logs/<stage>/`: the last one that started, and its completed tasks), waits until
no process of the group is left, reruns the same command to completion (the rerun must take over the
dead driver's lease, `pipelines.lease`, when one was left), and compares OUT with REF:
  * the multiset of `(id, input_ids)` over every bucket and the validation split: lost = reference
    documents missing, duplicated = copies beyond the reference's, different = an id whose tokens
    differ or that the reference does not have;
  * the manifest, every field but the run-specific ones: `created` (a timestamp) and the paths that
    name OUT (`config.output`, `config.logging_dir`, `config.filtered`); its `files` section (sha256
    of every index.json and mixture) makes this a byte comparison of those files too;
  * `python -m shards verify OUT` exits 0.
Training: one reference run of `training/configs/quickstart.yaml` on REF (12 steps, a checkpoint
every 3, no validation). Each trial starts it in a fresh run folder (and stream cache), SIGKILLs the
group at a random moment of the reference's wall time, reruns the same command (it resumes from the
newest valid checkpoint) and compares the per-step training losses of `metrics.jsonl` with the
reference's: identical floats, every step once.

Prints a row per trial and one summary line; exits 1 on any difference or failed rerun. Everything
is written under `--workdir` (default: a temporary folder, removed when every trial passed).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from shards import manifest as manifest_io
from shards import mds
from shards.layout import join
from training.metrics import read as read_metrics

# the stages `refinedweb all` runs (exact dedup, the default), in order
STAGES = ("download", "filter", "dedup_find", "dedup_filter", "tokenize", "merge", "mix")
RUN_SPECIFIC = (("created",), ("config", "output"), ("config", "logging_dir"), ("config", "filtered"))
QUICKSTART = Path(__file__).parents[1] / "training" / "configs" / "quickstart.yaml"
TRAIN_STEPS = 12
TRAIN_SETS = (f"steps={TRAIN_STEPS}", "checkpoint.every=3", "validation.every=0", "log.tensorboard=false")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false"}


def pipeline_cmd(source: str, out: Path) -> list[str]:
    return [sys.executable, "-m", "pipelines.refinedweb", "all", "--input", source, "--output", str(out),
            "--val-fraction", "0.05", "--tasks", "2", "--workers", "2"]


def train_cmd(root: Path, run_dir: Path) -> list[str]:
    sets = [f"data.root={root}", f"run_dir={run_dir}", f"data.cache_dir={run_dir}-cache", *TRAIN_SETS]
    return [sys.executable, "-m", "training", "--config", str(QUICKSTART), *(a for s in sets for a in ("--set", s))]


def run_to_end(cmd: list[str], log: Path) -> tuple[float, int, str]:
    """(wall seconds, exit status, output) of `cmd` run to completion, its output also in `log`."""
    t = time.perf_counter()
    with log.open("w") as f:
        rc = subprocess.run(cmd, env=ENV, stdout=f, stderr=subprocess.STDOUT).returncode
    return time.perf_counter() - t, rc, log.read_text()


def reference_run(cmd: list[str], log: Path) -> float:
    wall, rc, text = run_to_end(cmd, log)
    if rc:
        sys.exit(f"the reference run {' '.join(cmd)} failed ({rc}); its output: {log}\n{text[-3000:]}")
    return wall


def last_line(text: str, rc: int) -> str:
    return f"exit {rc}: " + next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "")


def group_alive(pgid: int) -> list[int]:
    """Processes of the group `pgid` that still run (zombies excluded), from /proc (Linux)."""
    alive = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            state, _, group = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:3]
        except OSError:  # exited meanwhile
            continue
        if int(group) == pgid and state != "Z":
            alive.append(int(pid))
    return alive


def kill_after(cmd: list[str], delay: float, log: Path) -> bool:
    """Start `cmd` in its own process group, SIGKILL the whole group after `delay` seconds and wait
    until none of it is left; False when it had finished before the kill."""
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, env=ENV, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        pass
    finished = proc.poll() is not None
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # children outlive a finished driver only by accident
    except ProcessLookupError:
        pass
    proc.wait()
    deadline = time.time() + 60
    while group_alive(proc.pid):
        if time.time() > deadline:
            sys.exit(f"processes {group_alive(proc.pid)} of the killed group {proc.pid} survived SIGKILL for 60 s")
        time.sleep(0.05)
    return not finished


def stage_at(out: Path) -> str:
    """The stage a killed `all` was in: the last one that started (its `executor.json`, written when its
    tasks launch) and its completed tasks; `start-up` before the first."""
    started = [s for s in STAGES if (out / "logs" / s / "executor.json").exists()]
    if not started:
        return "start-up"
    stage = started[-1]
    world = json.loads((out / "logs" / stage / "executor.json").read_text())["world_size"]
    done = len(list((out / "logs" / stage / "completions").glob("*")))
    return f"{stage} {done}/{world}"


def documents(root: Path, reference: dict) -> collections.Counter:
    """Multiset of (id, input_ids) of every bucket and the validation split the reference manifest names."""
    got = collections.Counter()
    for section in (*reference["buckets"].values(), reference["validation"]):
        folder = join(str(root), section["path"])
        for shard in mds.read_index(folder)["shards"]:
            got.update((s["id"], tuple(s["input_ids"].tolist()))
                       for s in mds.iter_samples(folder, shard, mds.read_shard(folder, shard)))
    return got


def compare_documents(want: collections.Counter, got: collections.Counter) -> tuple[int, int, int]:
    """(lost, duplicated, different) of `got` against `want` (see the module docstring)."""
    want_ids = collections.Counter(i for i, _ in want.elements())
    got_ids = collections.Counter(i for i, _ in got.elements())
    lost = sum(n - got_ids[i] for i, n in want_ids.items() if n > got_ids[i])
    duplicated = sum(n - want_ids[i] for i, n in got_ids.items() if i in want_ids and n > want_ids[i])
    tokens = collections.defaultdict(set)
    for (i, ids) in want:
        tokens[i].add(ids)
    different = sum(1 for (i, ids) in got if ids not in tokens.get(i, ()))
    return lost, duplicated, different


def comparable(manifest: dict) -> dict:
    """The manifest without its run-specific fields (RUN_SPECIFIC)."""
    manifest = json.loads(json.dumps(manifest))
    for *parents, key in RUN_SPECIFIC:
        node = manifest
        for p in parents:
            node = node.get(p, {})
        node.pop(key, None)
    return manifest


def differing_keys(a, b, where: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [k for key in sorted(set(a) | set(b), key=str)
                for k in differing_keys(a.get(key), b.get(key), f"{where}.{key}" if where else str(key))]
    return [] if a == b else [where or "(root)"]


@dataclass
class PipelineTrial:
    delay: float
    stage: str
    lease: str
    lost: int = 0
    duplicated: int = 0
    different: int = 0
    manifest: list[str] = field(default_factory=list)
    verify: str = "ok"
    error: str = ""  # the rerun failed: its exit status and last line

    @property
    def failed(self) -> bool:
        return bool(self.lost or self.duplicated or self.different or self.manifest or self.verify != "ok"
                    or self.lease == "not taken over" or self.error)


def pipeline_trial(n: int, delay: float, source: str, ref: Path, want: collections.Counter, ref_manifest: dict,
                   work: Path) -> PipelineTrial:
    out, cmd = work / f"pipeline_{n:02d}", pipeline_cmd(source, work / f"pipeline_{n:02d}")
    killed = kill_after(cmd, delay, work / f"pipeline_{n:02d}.killed.log")
    stage = stage_at(out) if killed else "finished"
    left = (out / "logs" / "lease.json").exists()
    _, rc, text = run_to_end(cmd, work / f"pipeline_{n:02d}.rerun.log")
    lease = ("taken over" if "took over the lease" in text else "not taken over") if left else "none left"
    trial = PipelineTrial(delay, stage, lease)
    if rc:
        trial.error = last_line(text, rc)
        return trial
    trial.lost, trial.duplicated, trial.different = compare_documents(want, documents(out, ref_manifest))
    trial.manifest = differing_keys(comparable(ref_manifest), comparable(manifest_io.read(str(out))))
    check = subprocess.run([sys.executable, "-m", "shards", "verify", str(out)], env=ENV, capture_output=True,
                           text=True)
    if check.returncode:
        trial.verify = (check.stderr.strip().splitlines() or [f"exit {check.returncode}"])[-1]
    return trial


def train_losses(run_dir: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in read_metrics(run_dir) if r["kind"] == "train"]


@dataclass
class TrainingTrial:
    delay: float
    reached: int  # last step logged before the kill
    resumed: str
    different: int = 0
    error: str = ""  # the rerun failed: its exit status and last line

    @property
    def failed(self) -> bool:
        return bool(self.different or self.error)


def training_trial(n: int, delay: float, ref: Path, want: list[tuple[int, float]], work: Path) -> TrainingTrial:
    run_dir = work / f"training_{n:02d}"
    cmd = train_cmd(ref, run_dir)
    killed = kill_after(cmd, delay, work / f"training_{n:02d}.killed.log")
    reached = max((s for s, _ in train_losses(run_dir)), default=0) if (run_dir / "metrics.jsonl").exists() else 0
    _, rc, text = run_to_end(cmd, work / f"training_{n:02d}.rerun.log")
    resumed = next((line.split("resumed from ", 1)[1].split()[0] for line in text.splitlines()
                    if "resumed from " in line), None)
    trial = TrainingTrial(delay, reached, Path(resumed).name if resumed else ("finished" if not killed else "fresh"))
    if rc:
        trial.error = last_line(text, rc)
        return trial
    got, expected = train_losses(run_dir), dict(want)
    steps = collections.Counter(s for s, _ in got)
    trial.different = (sum(1 for s, loss in got if expected.get(s) != loss)  # other loss, or a step the ref lacks
                       + sum(n - 1 for n in steps.values())  # a step logged twice
                       + sum(1 for s in expected if s not in steps))  # a step missing
    return trial


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pipeline", type=int, default=20, help="pipeline trials")
    p.add_argument("--training", type=int, default=10, help="training trials")
    p.add_argument("--seed", type=int, default=0, help="seeds the kill delays")
    p.add_argument("--input", default="sample", help="the pipeline's --input")
    p.add_argument("--workdir", help="keep every OUT, run folder and log here (default: a temporary folder)")
    a = p.parse_args()
    work = Path(a.workdir or tempfile.mkdtemp(prefix="chaos_"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(a.seed)
    ref = work / "reference"
    if ref.exists():
        sys.exit(f"{ref} exists: give an empty --workdir")
    print(f"workdir {work}")
    wall = reference_run(pipeline_cmd(a.input, ref), work / "reference.log")
    ref_manifest = manifest_io.read(str(ref))
    want = documents(ref, ref_manifest)
    print(f"pipeline reference: {wall:.0f} s, {sum(want.values())} documents")
    failed = False

    pipeline = []
    if a.pipeline:
        print(f"{'trial':>5} {'kill s':>7}  {'stage at kill':<16} {'lease':<14} {'lost':>4} {'dup':>4} {'diff':>4}  "
              f"{'manifest':<8} verify")
    for n in range(1, a.pipeline + 1):
        t = pipeline_trial(n, rng.uniform(0, wall), a.input, ref, want, ref_manifest, work)
        pipeline.append(t)
        failed |= t.failed
        result = (f"rerun failed, {t.error}" if t.error else
                  f"{t.lost:>4} {t.duplicated:>4} {t.different:>4}  "
                  f"{'same' if not t.manifest else 'DIFFERS: ' + ', '.join(t.manifest):<8} {t.verify}")
        print(f"{n:>5} {t.delay:>7.1f}  {t.stage:<16} {t.lease:<14} {result}", flush=True)

    training = []
    if a.training:
        wall = reference_run(train_cmd(ref, work / "training_reference"), work / "training_reference.log")
        expected = train_losses(work / "training_reference")
        assert [s for s, _ in expected] == list(range(1, TRAIN_STEPS + 1)), expected
        print(f"training reference: {wall:.0f} s, {TRAIN_STEPS} steps")
        print(f"{'trial':>5} {'kill s':>7}  {'last step':>9}  {'resumed from':<14} {'steps different':>15}")
    for n in range(1, a.training + 1):
        t = training_trial(n, rng.uniform(0, wall), ref, expected, work)
        training.append(t)
        failed |= t.failed
        result = f"rerun failed, {t.error}" if t.error else f"{t.different:>15}"
        print(f"{n:>5} {t.delay:>7.1f}  {t.reached:>9}  {t.resumed:<14} {result}", flush=True)

    print(f"pipeline: {len(pipeline)} trials, {sum(t.lost for t in pipeline)} lost, "
          f"{sum(t.duplicated for t in pipeline)} duplicated, {sum(t.different for t in pipeline)} different, "
          f"{sum(bool(t.manifest) for t in pipeline)} manifests differ, "
          f"{sum(t.verify != 'ok' for t in pipeline)} verify failures, "
          f"{sum(bool(t.error) for t in pipeline)} reruns failed, "
          f"{sum(t.lease == 'taken over' for t in pipeline)} leases taken over; "
          f"training: {len(training)} trials, {sum(t.different for t in training)} steps different of "
          f"{len(training) * TRAIN_STEPS}, {sum(bool(t.error) for t in training)} reruns failed, "
          f"{sum(t.resumed.startswith('step_') for t in training)} resumed from a checkpoint")
    if failed:
        sys.exit(f"differences found: the outputs are kept in {work}")
    if not a.workdir:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
