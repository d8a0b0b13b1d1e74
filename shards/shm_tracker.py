"""Repair of streaming 0.13's resource-tracker patch, which breaks every other thread's locks.

To keep the resource tracker from unlinking segments it only attaches to, streaming's
`SharedMemory.__init__` swaps `multiprocessing.resource_tracker.register` for its own
`fix_register` for the duration of the attach. That swap is process-wide, and `fix_register`
forwards non-shared-memory resources with one argument too many (`register(self, name, rtype)`),
so a thread that creates a multiprocessing lock or queue meanwhile (tqdm's first bar, a
DataLoader starting its workers) fails with "ResourceTracker.register() takes 3 positional
arguments but 4 were given" while our read-ahead thread iterates a dataset. The repair forwards
them as the tracker expects; skipping shared memory, the patch's purpose, is kept.
"""

from __future__ import annotations

from multiprocessing import resource_tracker

from streaming.base.shared import memory


def _register(self, name: str, rtype: str):
    if rtype != "shared_memory":
        return resource_tracker._resource_tracker.register(name, rtype)


def _unregister(self, name: str, rtype: str):
    if rtype != "shared_memory":
        return resource_tracker._resource_tracker.unregister(name, rtype)


def repair() -> None:
    """Idempotent; applied on import of `shards.streams`, before any dataset exists."""
    memory.SharedMemory.fix_register = _register
    memory.SharedMemory.fix_unregister = _unregister
