"""Checkpoint IO: one place that writes, finds, prunes and reads training checkpoints.

Invariants: a folder `RUN/checkpoints/step_NNNNNNNN/` exists only complete — it is written under a
temporary name, flushed, then renamed (atomic on a POSIX file system), so a write killed midway
leaves the previous checkpoint the newest valid one; loading never unpickles code
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
    for leftover in root.glob(".tmp-*"):
        if not leftover.name.endswith(f"-{os.getpid()}"):  # a writer that died midway
            shutil.rmtree(leftover, ignore_errors=True)
    return final


def valid(root: str | Path) -> list[Path]:
    """Complete checkpoints under `root`, oldest first; temporary folders are never listed."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if _NAME.match(p.name) and (p / STATE).is_file()]
    return sorted(found, key=lambda p: p.name)


def latest(run_dir: str | Path) -> Path | None:
    found = valid(Path(run_dir) / SUBDIR)
    return found[-1] if found else None


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
