"""A lock created by one thread while streaming attaches shared memory in another (the race that
failed the FSDP2 test: tqdm's first bar against the read-ahead thread) is created and tracked."""

import multiprocessing
from multiprocessing import resource_tracker

import shards.streams  # noqa: F401  (applies the repair)
from streaming.base.shared.memory import SharedMemory


def test_lock_created_while_streaming_patch_is_active():
    shm = SharedMemory(name=None, create=True, size=64, auto_cleanup=False)
    try:
        original = resource_tracker.register
        resource_tracker.register = shm.fix_register  # what streaming's attach does, process-wide
        try:
            lock = multiprocessing.get_context("spawn").RLock()  # a semaphore: forwarded to the tracker
            assert lock.acquire(timeout=1)
            lock.release()
            shm.fix_register("/psm_not_tracked", "shared_memory")  # still skipped
        finally:
            resource_tracker.register = original
    finally:
        shm.cleanup()
