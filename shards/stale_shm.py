"""Shared memory left by a reader killed with SIGKILL, released so the same command can run again.

Streaming registers every StreamingDataset of a node in `/dev/shm/<prefix>_locals` (the cache
folders it reads into, beside a few other `<prefix>_*` segments) and refuses a new dataset whose
cache folders a registered one names ("Reused local directory"). A reader killed with SIGKILL (the
OOM killer, a preemption without grace, `kill -9`) never unlinks them, and the rerun of the same
command reads into the same cache folders by design (`shards.streams`), so it could be refused.
Streaming's remedy, `clean_stale_shared_memory()`, unlinks every prefix of the node, those of
running jobs included. Invariant: a prefix is released only when its `locals` names one of the
given cache folders and its segments are this user's and mapped by no process (`/proc/*/maps`).
Linux only; where there is no `/dev/shm` there is nothing to do.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from streaming.base.constant import LOCALS, SHM_TO_CLEAN
from streaming.base.shared.prefix import _unpack_locals

SHM = Path("/dev/shm")


def mapped_segments() -> set[str]:
    """Names of the `/dev/shm` files that some process maps (those of other users cannot be read,
    and their segments are skipped as not ours)."""
    names = set()
    for maps in Path("/proc").glob("[0-9]*/maps"):
        try:
            names.update(re.findall(r" /dev/shm/(\S+)", maps.read_text()))
        except OSError:  # exited meanwhile, or another user's
            continue
    return names


def release_stale(cache_folders: list[str]) -> list[str]:
    """Unlink the segments of every stale prefix that names one of `cache_folders` (absolute paths,
    as streaming records them); returns the names unlinked."""
    wanted, prefixes = set(cache_folders), []
    for path in SHM.glob(f"*_{LOCALS}") if SHM.is_dir() else ():
        try:
            if path.stat().st_uid != os.getuid():
                continue
            theirs, _ = _unpack_locals(path.read_bytes())
        except (OSError, ValueError, UnicodeDecodeError):  # gone meanwhile, or not streaming's
            continue
        if wanted & set(theirs):
            prefixes.append(path.name[: -len(LOCALS) - 1])
    if not prefixes:
        return []
    mapped, released = mapped_segments(), []
    for prefix in prefixes:
        names = [f"{prefix}_{name}" for name in SHM_TO_CLEAN if (SHM / f"{prefix}_{name}").exists()]
        if any(name in mapped for name in names):  # a running dataset
            continue
        for name in names:
            (SHM / name).unlink(missing_ok=True)
            released.append(name)
    return released
