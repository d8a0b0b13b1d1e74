"""Checkpoint IO: one place that writes, finds, prunes and reads training checkpoints, and the
versioned schema of what a training checkpoint holds.

Invariants: a folder `RUN/checkpoints/step_NNNNNNNN/` exists only complete — it is written under a
temporary name, flushed, then renamed (atomic on a POSIX file system), so a write killed midway
leaves the previous checkpoint the newest valid one; the same step saved again swaps the complete
old copy aside (`.old-step_N-<pid>`) before the new one takes its name, and a crash between those
renames is undone by the next look-up (`valid` renames the old copy back); loading never unpickles code
(`torch.load(weights_only=True)`: the state holds only tensors and plain containers).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import torch

SUBDIR = "checkpoints"
STATE = "state.pt"
_NAME = re.compile(r"^step_(\d{8})$")
_OLD = re.compile(r"^\.old-(step_\d{8})-\d+$")
VERSION = 1  # of the training state below; another version is refused on resume


def training_state(*, step: int, tokens: int, skipped: int, model: dict, optimizer: dict, rng: list[dict],
                   loader: list[dict], config: dict, model_config: dict) -> dict:
    """What resuming needs: unsharded model and optimizer states, per-rank RNG and loader states
    (rank order), counters, the run config and the model's published config (for `export`)."""
    return {"version": VERSION, "step": step, "tokens": tokens, "skipped": skipped, "model": model,
            "optimizer": optimizer,
            "rng": {"torch": [r["torch"] for r in rng], "cuda": [r["cuda"] for r in rng if r["cuda"] is not None]},
            "loader": loader, "config": config, "model_config": model_config}


def rng_state(device: torch.device) -> dict:
    return {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state() if device.type == "cuda" else None}


def restore_rng(state: dict, rank: int, device: torch.device) -> None:
    torch.set_rng_state(state["rng"]["torch"][rank])
    if device.type == "cuda" and state["rng"]["cuda"]:
        torch.cuda.set_rng_state(state["rng"]["cuda"][rank])


def load_weights(model: torch.nn.Module, spec: str | Path) -> Path:
    """Initialise `model` from a checkpoint's weights only (stage 2 from stage 1); returns the source."""
    source = resolve(spec)
    try:
        model.load_state_dict(load(source)["model"])
    except RuntimeError as e:
        raise ValueError(f"{source}: its weights do not fit this model config ({e}); "
                         "use the model section the checkpoint was trained with") from None
    return source


def check_resumable(state: dict, world: int, model_section: dict, runtime: tuple[str, ...]) -> None:
    """Refuse a checkpoint this run cannot continue exactly: another schema, world size or model."""
    if state.get("version", VERSION) != VERSION:
        raise ValueError(f"checkpoint state version {state['version']}, this code reads {VERSION}")
    if len(state["loader"]) != world:
        raise ValueError(f"the checkpoint was written by {len(state['loader'])} ranks, this run has "
                         f"{world}: resume with the same number of processes")
    saved, now = ({k: v for k, v in m.items() if k not in runtime} for m in (state["config"]["model"], model_section))
    if saved != now:
        raise ValueError(f"the checkpoint's model section {saved} differs from this config's {now}; "
                         "resume with the same model section")


def check_same_resume(found: list[tuple[int | None, str | None]]) -> None:
    """Every rank resumes from the same step, or every rank starts afresh. Each rank resolves
    `checkpoint.resume` on its own file system (`found`: its (step, checkpoint), in rank order), and
    ranks continuing from different steps would train on from different data positions unnoticed."""
    ranks: dict[int | None, list[int]] = {}
    for rank, (step, _) in enumerate(found):
        ranks.setdefault(step, []).append(rank)
    if len(ranks) > 1:
        where = "; ".join(
            f"rank(s) {', '.join(map(str, rs))}: " + (f"step {step} ({found[rs[0]][1]})" if step is not None
                                                       else "no checkpoint")
            for step, rs in ranks.items())
        raise ValueError(
            f"the ranks resolve checkpoint.resume to different steps ({where}); every rank must resume from the "
            "same checkpoint: put run_dir on storage every node sees, or set checkpoint.resume to one "
            "checkpoint every rank can read"
        )


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(run_dir: str | Path, step: int, state: dict, keep: int) -> Path:
    """Write `state` as the checkpoint of `step`, then keep only the newest `keep` (call on one rank)."""
    root = Path(run_dir) / SUBDIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:08d}"
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    torch.save(state, tmp / STATE)
    _fsync(tmp / STATE)
    if final.exists():  # the same step saved again (e.g. at the end after a resume): swap it out
        old = root / f".old-{final.name}-{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old)
    else:
        os.replace(tmp, final)
    _fsync(root)
    for stale in sorted(valid(root))[:-keep] if keep > 0 else []:
        shutil.rmtree(stale, ignore_errors=True)
    for leftover in [*root.glob(".tmp-*"), *root.glob(".old-*")]:
        if not leftover.name.endswith(f"-{os.getpid()}"):  # a writer that died midway
            shutil.rmtree(leftover, ignore_errors=True)
    return final


def valid(root: str | Path) -> list[Path]:
    """Complete checkpoints under `root`, oldest first; temporary folders are never listed. A same-step
    swap killed between its renames left only the complete old copy: it gets its name back first."""
    root = Path(root)
    if not root.is_dir():
        return []
    for old in root.glob(".old-step_*"):
        name = _OLD.match(old.name)
        final = root / name.group(1) if name else None
        if final is not None and not final.exists() and (old / STATE).is_file():
            os.replace(old, final)
    found = [p for p in root.iterdir() if _NAME.match(p.name) and (p / STATE).is_file()]
    return sorted(found, key=lambda p: p.name)


def latest(run_dir: str | Path) -> Path | None:
    found = valid(Path(run_dir) / SUBDIR)
    return found[-1] if found else None


def to_resume(spec: str, run_dir: str | Path) -> Path | None:
    """`checkpoint.resume`: auto (the newest valid checkpoint of run_dir, if any), none, or a path."""
    if spec == "none":
        return None
    return latest(run_dir) if spec == "auto" else resolve(spec)


def resolve(spec: str | Path) -> Path:
    """A checkpoint folder, or a run folder (its newest valid checkpoint)."""
    path = Path(spec)
    if (path / STATE).is_file():
        return path
    newest = latest(path)
    if newest is None:
        raise FileNotFoundError(
            f"{path} is neither a checkpoint (no {STATE}) nor a run folder with a complete checkpoint "
            f"under {SUBDIR}/; point at RUN_DIR or RUN_DIR/{SUBDIR}/step_NNNNNNNN"
        )
    return newest


def load(path: str | Path) -> dict:
    return torch.load(Path(path) / STATE, map_location="cpu", weights_only=True)


def step_of(path: str | Path) -> int:
    m = _NAME.match(Path(path).name)
    assert m, f"{path} is not a checkpoint folder"
    return int(m.group(1))
